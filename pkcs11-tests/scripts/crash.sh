#!/usr/bin/env bash
# Crash consistency: processes killed with SIGKILL at random moments while they generate keys, create
# objects and change the PIN, with mandatory audit (records written before each call returns). After
# every kill the store must open; at the end every operation a child reported as done must be there —
# its key or object on the token and its record in the audit file — and the audit chain must verify.
# CRASH_ITERATIONS sets the number of kills (default 100).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
cli=${CLI:-$root/target/release/cryptera-pkcs11}
child=${CHILD:-$root/target/release/token-child}
iterations=${CRASH_ITERATIONS:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
export CRYPTERA_PKCS11_MODULE=$module
export CRYPTERA_PKCS11_CONFIG=$work/config.toml
printf 'store_dir = "%s"\nkdf_memory_kib = 64\nkdf_iterations = 1\n[audit]\nmandatory = true\n' "$store" >"$CRYPTERA_PKCS11_CONFIG"
passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$work/out" | tail -15
  fi
}
[ -x "$child" ] || cargo build --release -q -p pkcs11-tests --bin token-child
"$child" init 0 so-pin-1234 crash user-pin-1 >/dev/null || { echo "FAIL token setup"; echo "0 passed, 1 failed"; exit 1; }
pins=(user-pin-1 user-pin-2)
pin=${pins[0]}
: >"$work/committed"
opened=0
for i in $(seq "$iterations"); do
  case $((i % 3)) in
    0) "$child" generate 0 "$pin" "key$i" 1000 >"$work/child.out" 2>/dev/null & ;;
    1) "$child" create 0 "$pin" "obj$i" 1000 >"$work/child.out" 2>/dev/null & ;;
    2) other=${pins[0]}; [ "$pin" = "$other" ] && other=${pins[1]}
       "$child" setpin 0 "$pin" "$other" 1000 >"$work/child.out" 2>/dev/null & ;;
  esac
  pid=$!
  sleep "0.$((RANDOM % 25 + 5))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  grep '^committed ' "$work/child.out" | cut -d' ' -f2 >>"$work/committed"
  if [ $((i % 3)) -eq 2 ]; then
    last=$(grep '^pin ' "$work/child.out" | tail -1 | cut -d' ' -f2)
    [ -n "$last" ] && pin=$last
    # Killed during a change, the new PIN may have landed: the token answers to one of the two.
    if ! pkcs11-tool --module "$module" --token-label crash --login --pin "$pin" -O >/dev/null 2>&1; then
      [ "$pin" = "${pins[0]}" ] && pin=${pins[1]} || pin=${pins[0]}
    fi
  fi
  if pkcs11-tool --module "$module" --token-label crash --login --pin "$pin" -O >/dev/null 2>&1; then
    opened=$((opened + 1))
  else
    echo "store did not open after kill $i"
  fi
done
committed=$(wc -l <"$work/committed")
echo "kills: $iterations, operations reported done before a kill: $committed"
check "the store opens after every kill ($opened of $iterations)" [ "$opened" -eq "$iterations" ]
pkcs11-tool --module "$module" --token-label crash --login --pin "$pin" -O 2>/dev/null | sed -n "s/^ *label: *'\?\([^']*\)'\?$/\1/p" | sort -u >"$work/present"
missing=$(sort -u "$work/committed" | comm -23 - "$work/present" | head -5)
check "every committed key and object is on the token" [ -z "$missing" ]
[ -n "$missing" ] && echo "     missing: $missing"
check "some operations were committed" [ "$committed" -gt 10 ]
grep -o '"key_label":"[^"]*"' "$store/audit.jsonl" | cut -d'"' -f4 | sort -u >"$work/audited"
unaudited=$(sort -u "$work/committed" | comm -23 - "$work/audited" | head -5)
check "every committed operation has its audit record" [ -z "$unaudited" ]
check "the audit chain verifies after $iterations kills" "$cli" audit verify "$store/audit.jsonl"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
