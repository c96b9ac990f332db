#!/usr/bin/env bash
# Multi-process stress (pkcs11-tests/src/bin/stress.rs): STRESS_PROCESSES processes × STRESS_THREADS
# threads for STRESS_SECONDS on one token (defaults 4 × 4 × 30 s: the CI run), creating token objects,
# finding them by label and ID, signing with token keys and destroying, each process logging what it
# created and destroyed. Then: every object reported created and not destroyed exists exactly once,
# nothing reported destroyed exists, no process hung (STRESS_GRACE seconds past the end, default 60,
# is a hang), a full C_FindObjects reads every object back, SQLite's integrity check passes and the
# audit chain that all processes appended to verifies.
# The long run (docs/ROBUSTNESS.md): STRESS_PROCESSES=8 STRESS_THREADS=8 STRESS_SECONDS=1800 bash $0
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
cli=${CLI:-$root/target/release/cryptera-pkcs11}
target=${CARGO_TARGET_DIR:-$root/target}
stress=${STRESS:-$target/release/stress}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
skipped=0
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"; grep '^stress' "$work/out" | sed 's/^/     /' || true
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$work/out" | tail -40
  fi
}
(cd "$root" && cargo build --release -q -p pkcs11-tests --bin stress) || { echo "FAIL build"; echo "0 passed, 1 failed"; exit 1; }
processes=${STRESS_PROCESSES:-4}
threads=${STRESS_THREADS:-4}
seconds=${STRESS_SECONDS:-30}
run=$work/run
check "$processes processes x $threads threads x $seconds s: nothing lost, nothing resurrected, no hang" \
  env CRYPTERA_PKCS11_MODULE="$module" "$stress" run --processes "$processes" --threads "$threads" \
  --seconds "$seconds" --grace "${STRESS_GRACE:-60}" --dir "$run" --keep
token=$(ls "$run"/store/*.token 2>/dev/null | head -1)
if command -v sqlite3 >/dev/null; then
  check "the store passes SQLite's integrity check" bash -c "[ \"\$(sqlite3 '$token' 'PRAGMA integrity_check')\" = ok ]"
else
  skipped=$((skipped + 1)); echo "skip SQLite integrity check (no sqlite3)"
fi
check "the audit chain all processes appended to verifies" "$cli" audit verify "$run/store/audit.jsonl"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
