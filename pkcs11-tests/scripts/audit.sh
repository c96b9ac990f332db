#!/usr/bin/env bash
# Audit records through real clients: every event type lands in the chained JSON-lines file, the
# verifier catches each kind of tampering, several processes appending at once keep one chain, and
# the policy command allows, denies, times out and crashes (failing closed).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
cli=${CLI:-$root/target/release/cryptera-pkcs11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
audit=$store/audit.jsonl
export CRYPTERA_PKCS11_CONFIG=$work/config.toml
printf 'store_dir = "%s"\n' "$store" >"$CRYPTERA_PKCS11_CONFIG"
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
tool() { pkcs11-tool --module "$module" "$@"; }
user() { tool --token-label audit --login --pin 1234 "$@"; }
has() { grep -q "$1" "$audit"; }

tool --init-token --label audit --so-pin 87654321 >/dev/null
tool --token-label audit --login --login-type so --so-pin 87654321 --init-pin --pin 1234 >/dev/null
user --keypairgen --key-type EC:prime256v1 --id 01 --label signer >/dev/null
user --keypairgen --key-type rsa:2048 --id 02 --label decrypter >/dev/null
printf 'release artefact' >"$work/data"
user --sign --id 01 -m ECDSA-SHA256 -i "$work/data" -o "$work/sig" >/dev/null 2>&1
tool --token-label audit --login --pin 0000 -O >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" -subj /CN=imp -days 1 -outform DER -out "$work/c.der" 2>/dev/null
openssl pkey -in "$work/k.pem" -outform DER -out "$work/k.der"
user --write-object "$work/k.der" --type privkey --id 03 --label imported >/dev/null 2>&1
user --set-id 04 --id 03 --type privkey >/dev/null 2>&1
user --delete-object --type privkey --id 04 >/dev/null 2>&1
tool --read-object --token-label audit --type pubkey --id 02 -o "$work/rsa.der" >/dev/null 2>&1
openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$work/rsa.der" -in "$work/data" -out "$work/enc"
user --decrypt --id 02 -m RSA-PKCS -i "$work/enc" -o "$work/dec" >/dev/null 2>&1
sleep 0.2

check "token initialisation and PIN setting recorded" bash -c "grep -q '\"event\":\"init_token\",\"rv\":\"CKR_OK\"' '$audit' && grep -q '\"event\":\"init_pin\",\"rv\":\"CKR_OK\"' '$audit'"
check "login success recorded" has '"event":"login","rv":"CKR_OK"'
check "login failure recorded" has '"event":"login","rv":"CKR_PIN_INCORRECT"'
check "logout or session end leaves the chain intact" "$cli" audit verify "$audit"
check "key generation recorded" has '"event":"generate".*"key_label":"signer"'
check "import recorded" has '"event":"import"'
check "attribute change recorded" has '"event":"set_attribute"'
check "destroy recorded" has '"event":"destroy"'
check "decrypt recorded" has '"event":"decrypt".*"rv":"CKR_OK"'
check "signature recorded with the data's SHA-256" has "\"event\":\"sign\".*\"mechanism\":\"CKM_ECDSA_SHA256\".*\"data_sha256\":\"$(sha256sum "$work/data" | cut -d' ' -f1)\""
check "no PIN in the audit file" bash -c "! grep -q -e 1234 -e 87654321 -e 0000 '$audit' || ! grep -q -e '\"1234\"' -e '87654321' '$audit'"
check "verifier summary names the key and program" bash -c "'$cli' audit verify '$audit' | grep -q 'audit / signer' && '$cli' audit verify '$audit' | grep -q pkcs11-tool"

tamper() {
  cp "$audit" "$work/t.jsonl"; cp "$audit.head" "$work/t.jsonl.head"
  eval "$1"
  ! "$cli" audit verify "$work/t.jsonl" >/dev/null
}
check "editing a record is detected" tamper "sed -i '2s/CKR_OK/CKR_NO/' '$work/t.jsonl'"
check "removing a record is detected" tamper "sed -i '3d' '$work/t.jsonl'"
check "reordering records is detected" tamper "awk 'NR==2 {held=\$0; next} NR==3 {print; print held; next} {print}' '$audit' >'$work/t.jsonl'"
check "truncating the file is detected" tamper "head -n 3 '$audit' >'$work/t.jsonl'"

# Several processes appending at once.
before=$(wc -l <"$audit")
for i in 1 2 3 4; do
  (for j in 1 2 3 4 5; do user --sign --id 01 -m ECDSA-SHA256 -i "$work/data" -o "$work/s$i" >/dev/null 2>&1; done) &
done
wait
sleep 0.2
check "4 processes x 5 signatures: no record lost" bash -c "[ \$(grep -c '\"event\":\"sign\"' '$audit') -ge 21 ] && [ \$(wc -l <'$audit') -ge \$(( $before + 40 )) ]"
check "concurrent writers keep one valid chain" "$cli" audit verify "$audit"

# Policy command.
policy() {
  printf 'store_dir = "%s"\n[audit]\npolicy_command = %s\npolicy_timeout_ms = 500\n' "$store" "$1" >"$CRYPTERA_PKCS11_CONFIG"
}
sign() { user --sign --id 01 -m ECDSA-SHA256 -i "$work/data" -o "$work/psig"; }
cat >"$work/allow.sh" <<'P'
#!/bin/sh
cat >"$(dirname "$0")/policy-input.json"
exit 0
P
chmod +x "$work/allow.sh"
policy "[\"$work/allow.sh\"]"
check "policy allows" sign
check "policy sees the event as JSON" grep -q '"event":"sign"' "$work/policy-input.json"
policy '["/bin/false"]'
# pkcs11-tool prints CKR_FUNCTION_REJECTED as "unknown PKCS11 error (0x200)".
rejected() { pkcs11-tool --module "$module" --token-label audit --login --pin 1234 --sign --id 01 -m ECDSA-SHA256 -i "$work/data" -o "$work/psig" 2>&1 | grep -q '(0x200)'; }
check "policy denies (CKR_FUNCTION_REJECTED)" rejected
policy '["/bin/sleep", "5"]'
check "policy timing out rejects" rejected
printf '#!/bin/sh\nkill -SEGV $$\n' >"$work/crash.sh"; chmod +x "$work/crash.sh"
policy "[\"$work/crash.sh\"]"
check "policy crashing rejects" rejected
policy '["/nonexistent/policy"]'
check "missing policy command rejects" rejected
check "rejections are recorded" has '"event":"sign","rv":"CKR_FUNCTION_REJECTED"'

# Syslog: a datagram socket standing in for the syslog daemon receives each record.
syslog_test() {
  printf 'store_dir = "%s"\n[audit]\nsyslog = true\nsyslog_socket = "%s"\n' "$store" "$work/log.sock" >"$CRYPTERA_PKCS11_CONFIG"
  python3 - "$work/log.sock" "$work/syslog.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            data = s.recv(65536).decode()
            out.write(data + "\n")
            out.flush()
            if '"event":"sign"' in data:
                break
    except socket.timeout:
        pass
PY
  local listener=$!
  for _ in $(seq 50); do [ -S "$work/log.sock" ] && break; sleep 0.1; done
  user --sign --id 01 -m ECDSA-SHA256 -i "$work/data" -o "$work/ssig" >/dev/null 2>&1
  wait $listener
  grep -q '^<86>cryptera-pkcs11\[[0-9]*\]: {.*"event":"sign".*"hash":"' "$work/syslog.txt"
}
check "syslog receives each record (authpriv.info)" syslog_test

# Policy callback registered from C.
printf 'store_dir = "%s"\n' "$store" >"$CRYPTERA_PKCS11_CONFIG"
check "C policy callback compiles" cc -Wall -Werror -I "$root/include" -I /usr/include/p11-kit-1 "$root/pkcs11-tests/scripts/policy-callback.c" -o "$work/policy-callback" -ldl
check "C policy callback rejects, allows and is removed" "$work/policy-callback" "$module" audit 1234 signer

# Mandatory audit: an unwritable audit file fails the operation.
printf 'store_dir = "%s"\n[audit]\nmandatory = true\nfile = "/proc/cryptera-no-such-dir/audit.jsonl"\n' "$store" >"$CRYPTERA_PKCS11_CONFIG"
check "mandatory audit: unwritable file fails signing (CKR_DEVICE_ERROR)" bash -c "pkcs11-tool --module '$module' --token-label audit --login --pin 1234 --sign --id 01 -m ECDSA-SHA256 -i '$work/data' -o '$work/psig' 2>&1 | grep -q CKR_DEVICE_ERROR"
printf 'store_dir = "%s"\n[audit]\nfile = "/proc/cryptera-no-such-dir/audit.jsonl"\n' "$store" >"$CRYPTERA_PKCS11_CONFIG"
check "optional audit: unwritable file is reported on stderr, signing works" bash -c "pkcs11-tool --module '$module' --token-label audit --login --pin 1234 --sign --id 01 -m ECDSA-SHA256 -i '$work/data' -o '$work/psig' 2>&1 | grep -q 'audit records cannot be written'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
