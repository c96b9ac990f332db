#!/usr/bin/env bash
# The remote token against the real Cryptera service on 127.0.0.1: the slot appears from the config,
# the access token is the PIN, the service's keys appear as private/public key objects, and signatures
# made through the module (the digest computed locally, the signature in the service) verify with OpenSSL.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
backend=${BACKEND:-$root/target/release/cryptera-backend}
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
[ -x "$backend" ] || cargo build --release -q -p cryptera-backend
export CRYPTERA_DATA_DIR=$work/service
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
"$backend" init >/dev/null
"$backend" org create --name acme >/dev/null
for key in release-ec:ecdsa_p256 release-ed:ed25519 release-rsa:rsa2048; do
  "$backend" key create --org acme --label "${key%%:*}" --algorithm "${key##*:}" --environment development >/dev/null
done
token=$("$backend" token create --org acme --name ci --operation sign --operation read --operation keygen --key-pattern 'release-*' \
  --environment development --expires-in-days 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$backend" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

export CRYPTERA_PKCS11_CONFIG=$work/module.toml
printf 'store_dir = "%s"\n[[remote]]\nslot = 10\nurl = "http://127.0.0.1:%s"\nlabel = "acme remote"\ntimeout_ms = 3000\napproval_wait_s = 40\n' \
  "$work/store" "$port" >"$CRYPTERA_PKCS11_CONFIG"
tool() { pkcs11-tool --module "$module" --slot 10 "$@"; }
user() { tool --login --pin "$token" "$@"; }
printf 'firmware image' >"$work/data"

check "the remote slot is listed with its configured label" bash -c "pkcs11-tool --module '$module' -L | grep -A1 '(0xa)' | grep -q 'acme remote'"
check "a wrong access token is refused (CKR_PIN_INCORRECT)" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin cryptera_at_bogus -O 2>&1 | grep -q CKR_PIN_INCORRECT"
check "the service's keys appear as private and public key objects" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' -O >'$work/objects' 2>&1 && [ \$(grep -c '^Private Key Object' '$work/objects') -eq 3 ] && [ \$(grep -c '^Public Key Object' '$work/objects') -eq 3 ]"
check "private keys are sensitive and never extractable" bash -c "grep -A4 '^Private Key Object' '$work/objects' | grep -q 'never extractable'"
# pkcs11-tool picks keys by CKA_ID: find each key's from the listing.
key_id() { awk -v want="$1" '$1 == "label:" && $2 == want {found=1} found && $1 == "ID:" {print $2; exit}' "$work/objects"; }
sign_and_verify() {
  local label=$1 mechanism=$2 digest=$3 id
  id=$(key_id "$label")
  user --sign --id "$id" -m "$mechanism" --signature-format openssl -i "$work/data" -o "$work/$label.sig" &&
    user --read-object --type pubkey --id "$id" -o "$work/$label.der" &&
    openssl pkey -pubin -inform DER -in "$work/$label.der" -out "$work/$label.pem" &&
    if [ "$digest" = none ]; then
      openssl pkeyutl -verify -pubin -inkey "$work/$label.pem" -rawin -in "$work/data" -sigfile "$work/$label.sig"
    else
      openssl dgst "-$digest" -verify "$work/$label.pem" -signature "$work/$label.sig" "$work/data"
    fi
}
check "ECDSA-SHA256 signed in the service verifies with OpenSSL" sign_and_verify release-ec ECDSA-SHA256 sha256
check "SHA256-RSA-PKCS signed in the service verifies with OpenSSL" sign_and_verify release-rsa SHA256-RSA-PKCS sha256
check "EdDSA signed in the service verifies in the module" bash -c "id=\$(awk '\$1 == \"label:\" && \$2 == \"release-ed\" {f=1} f && \$1 == \"ID:\" {print \$2; exit}' '$work/objects'); pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --sign --id \$id -m EDDSA -i '$work/data' -o '$work/ed.sig' && pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --verify --id \$id -m EDDSA -i '$work/data' --signature-file '$work/ed.sig' 2>&1 | grep -q 'Signature is valid'"
check "the module's verification of a service signature" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --verify --id \$(awk '\$1 == \"label:\" && \$2 == \"release-ec\" {f=1} f && \$1 == \"ID:\" {print \$2; exit}' '$work/objects') -m ECDSA-SHA256 --signature-format openssl -i '$work/data' --signature-file '$work/release-ec.sig' 2>&1 | grep -q 'Signature is valid'"
check "the local audit file records the remote signature with the service's request id" grep -q '"event":"sign","rv":"CKR_OK".*"key_label":"release-rsa".*"request_id":"req_' "$work/store/audit.jsonl"
check "no access token in the audit file" bash -c "! grep -q '${token##*_}' '$work/store/audit.jsonl'"
generated_key() {
  user --keypairgen --key-type EC:secp384r1 --label release-new >"$work/gen.out" 2>&1 &&
    user -O >"$work/objects2" 2>&1 &&
    id=$(awk '$1 == "label:" && $2 == "release-new" {f=1} f && $1 == "ID:" {print $2; exit}' "$work/objects2") &&
    [ -n "$id" ] &&
    user --sign --id "$id" -m ECDSA-SHA384 -i "$work/data" -o "$work/new.sig" &&
    user --verify --id "$id" -m ECDSA-SHA384 -i "$work/data" --signature-file "$work/new.sig" 2>&1 | grep -q 'Signature is valid' &&
    curl -sf "http://127.0.0.1:$port/v1/keys" -H "authorization: Bearer $token" | grep -q '"label":"release-new","algorithm":"ecdsa_p384","environment":"development"'
}
check "C_GenerateKeyPair makes the key in the service (its environment), and it signs" generated_key

# A key made in the service while a session is logged in shows at the next search (ETag refresh), and
# the handles of the keys already there stay the same.
refresh_test() {
  /usr/bin/python3 - "$module" "$token" "$backend" <<'PY'
import subprocess, sys, time
import PyKCS11
module, token, backend = sys.argv[1:4]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
session = lib.openSession(10, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
session.login(token)
query = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]
def label(handle):
    value = session.getAttributeValue(handle, [PyKCS11.CKA_LABEL])[0]
    return value if isinstance(value, str) else bytes(value).decode()
before = {label(h): h.value() for h in session.findObjects(query)}
subprocess.run([backend, "key", "create", "--org", "acme", "--label", "release-late", "--algorithm", "ecdsa_p256",
                "--environment", "development"], check=True, stdout=subprocess.DEVNULL)
time.sleep(1.2)
after = {label(h): h.value() for h in session.findObjects(query)}
assert "release-late" in after, after
assert all(after[label] == handle for label, handle in before.items()), (before, after)
session.logout()
PY
}
check "a key created in the service appears at the next search; known handles stay" refresh_test

# Approvals: a key needing one approval makes C_Sign wait (saying so once on stderr) until an approver
# approves, then return the service's signature; a denial returns CKR_FUNCTION_REJECTED.
totp() { # base32 secret, time offset in steps
  python3 -c 'import base64, hmac, struct, sys, time
secret = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(secret, struct.pack(">Q", step), "sha1").digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))' "$1" "$2"
}
api() { curl -sf "http://127.0.0.1:$port$1" -H 'content-type: application/json' "${@:2}"; }
enrol_approver() { # username -> prints the TOTP secret
  local password='approver password 1234' session secret
  echo "$password" | "$backend" user add --org acme --username "$1" --role approver >/dev/null 2>&1 || return 1
  session=$(api /v1/login -d "{\"organisation\":\"acme\",\"username\":\"$1\",\"password\":\"$password\",\"environment\":\"development\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])') || return 1
  secret=$(api /v1/users/me/totp -X POST -H "authorization: Bearer $session" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_base32"])') || return 1
  api /v1/users/me/totp/confirm -H "authorization: Bearer $session" -d "{\"code\":\"$(totp "$secret" 0)\"}" >/dev/null || return 1
  echo "$secret"
}
approvals_test() {
  local password='approver password 1234' id request out verdict approver secret
  "$backend" key create --org acme --label release-gated --algorithm ecdsa_p256 --environment development \
    --approvals-required 1 >/dev/null || return 1
  user -O >"$work/objects3" 2>&1
  id=$(awk '$1 == "label:" && $2 == "release-gated" {f=1} f && $1 == "ID:" {print $2; exit}' "$work/objects3")
  # One approver per verdict: each TOTP time step is accepted once per user, the next step early.
  for verdict in approve:alice deny:bob; do
    approver=${verdict#*:}; verdict=${verdict%%:*}
    secret=$(enrol_approver "$approver") || { echo "enrolling $approver failed"; return 1; }
    user --sign --id "$id" -m ECDSA-SHA256 -i "$work/data" -o "$work/gated-$verdict.sig" >"$work/gated-$verdict.out" 2>&1 &
    local signer=$!
    request=""
    for _ in $(seq 100); do
      request=$(api "/v1/signing-requests?status=pending" -H "authorization: Bearer $token" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(r[0]["id"] if r else "")')
      [ -n "$request" ] && break
      sleep 0.2
    done
    [ -n "$request" ] || { echo "no pending request"; return 1; }
    if [ "$verdict" = approve ]; then
      printf '%s\n%s\n' "$password" "$(totp "$secret" 1)" | "$backend" approve --org acme --username "$approver" --request "$request" || return 1
    else
      printf '%s\n%s\n' "$password" "$(totp "$secret" 1)" | "$backend" approve --org acme --username "$approver" --request "$request" --deny "not this build" || return 1
    fi
    wait "$signer"
    out=$(cat "$work/gated-$verdict.out")
    echo "$out" | grep -q "signing request $request waits for approval" || { echo "no waiting notice: $out"; return 1; }
    if [ "$verdict" = approve ]; then
      user --verify --id "$id" -m ECDSA-SHA256 -i "$work/data" --signature-file "$work/gated-approve.sig" 2>&1 | grep -q 'Signature is valid' || return 1
    else
      echo "$out" | grep -q '(0x200)' || { echo "denial not CKR_FUNCTION_REJECTED: $out"; return 1; }
    fi
  done
}
check "approvals: C_Sign waits, an approval completes it, a denial rejects it" approvals_test

kill "$server"; wait "$server" 2>/dev/null; server=""
check "service down: signing fails with CKR_DEVICE_ERROR" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --sign --id \$(awk '\$1 == \"label:\" && \$2 == \"release-ec\" {f=1} f && \$1 == \"ID:\" {print \$2; exit}' '$work/objects') -m ECDSA-SHA256 -i '$work/data' -o '$work/x' 2>&1 | grep -q CKR_DEVICE_ERROR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
