#!/usr/bin/env bash
# Runs the raw-ABI misuse tests (NULL pointers, bogus lengths and handles, length queries, calls
# before C_Initialize and after C_Finalize, unloading) under valgrind's memcheck: any invalid read or
# write, use of uninitialised memory or bad free fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
binaries=$(cargo test --release -p pkcs11-tests --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
wanted = {"misuse", "handles", "interfaces", "lifecycle", "unload"}
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] in wanted:
        print(msg["target"]["name"], msg["executable"])
')
passed=0
failed=0
while read -r name binary; do
  if valgrind --error-exitcode=99 --quiet "$binary" --test-threads=1 >"/tmp/valgrind-$name.log" 2>&1; then
    passed=$((passed + 1)); echo "ok   memcheck clean: $name"
  else
    failed=$((failed + 1)); echo "FAIL memcheck: $name"; tail -40 "/tmp/valgrind-$name.log"
  fi
done <<<"$binaries"
[ $((passed + failed)) -ge 5 ] || { echo "FAIL not every misuse test binary was found"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
