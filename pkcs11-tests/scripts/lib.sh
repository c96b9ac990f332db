# Shared by the client scripts (sourced, not run): a temp directory that holds this run's token store,
# check() that runs one test and records it, cleanup of background daemons, and the closing
# "N passed, N failed" line. Every script gets its own store: XDG_DATA_HOME points into its temp dir.
# shellcheck shell=bash
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
work=$(mktemp -d)
export XDG_DATA_HOME=$work/xdg
unset CRYPTERA_PKCS11_CONFIG
passed=0
failed=0
skipped=0
cleanups=()

# Runs at exit: every registered cleanup command (daemons this script started), then the temp dir.
finish() {
  local c
  for c in "${cleanups[@]+"${cleanups[@]}"}"; do eval "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap finish EXIT
trap 'exit 130' INT TERM
on_exit() { cleanups+=("$1"); }

# check NAME COMMAND...: runs COMMAND, prints "ok" or "FAIL" and the tail of its output.
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$work/out" | tail -20
  fi
}

# skip NAME WHY: a check that cannot run on this machine (a missing optional tool).
skip() {
  skipped=$((skipped + 1))
  echo "skip $1 ($2)"
}

tool() { pkcs11-tool --module "$module" "$@"; }

# new_token LABEL [SLOT_INDEX]: initialises a token and its user PIN 1234 (SO PIN 87654321).
new_token() {
  tool ${2:+--slot-index "$2"} --init-token --label "$1" --so-pin 87654321 &&
    tool --token-label "$1" --login --login-type so --so-pin 87654321 --init-pin --pin 1234
}

# A minimal PE32+ console program: compiled as ELF, converted to a PE object, linked by GNU ld's
# i386pep emulation (Debian's binutils has it); no timestamp, so the file is reproducible.
make_pe() {
  printf 'int mainCRTStartup(void) { return 0; }\n' >tiny.c &&
    gcc -c -O2 -ffreestanding -fno-asynchronous-unwind-tables -fno-stack-protector tiny.c -o tiny.o &&
    objcopy -O pe-x86-64 -R .comment -R .note.GNU-stack tiny.o tiny.obj &&
    ld -m i386pep --subsystem console --no-insert-timestamp -e mainCRTStartup tiny.obj -o tiny.exe &&
    file tiny.exe | grep -q 'PE32+ executable'
}

# engine_config FILE [PIN]: an OpenSSL config that loads the pkcs11 engine (libp11) with this module,
# the PIN given to the engine when there is one, and an empty [req] section for `openssl req`.
engine_config() {
  {
    printf 'openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n[pkcs11]\n'
    printf 'MODULE_PATH = %s\n' "$module"
    [ -z "${2:-}" ] || printf 'PIN = %s\n' "$2"
    printf 'init = 0\n[req]\ndistinguished_name = dn\n[dn]\n'
  } >"$1"
}

# done_checks: the closing line; the script's exit status is non-zero if any check failed.
done_checks() {
  if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
  else
    echo "$passed passed, $failed failed"
  fi
  [ "$failed" -eq 0 ]
}
