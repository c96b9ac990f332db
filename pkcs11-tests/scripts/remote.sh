#!/usr/bin/env bash
# The remote token against the real Cryptera service on 127.0.0.1: the slot appears from the config,
# the access token is the PIN, the service's keys appear as private/public key objects, and signatures
# made through the module (the digest computed locally, the signature in the service) verify with OpenSSL.
source "$(dirname "$0")/lib.sh"
source "$root/pkcs11-tests/scripts/service-lib.sh"
cd "$work"
check "service with keys" service_setup release-ec:ecdsa_p256 release-ed:ed25519 release-rsa:rsa2048
check "service started" service_start
remote_config
user() { ruser "$@"; }
printf 'firmware image' >"$work/data"

check "the remote slot is listed with its configured label" bash -c "pkcs11-tool --module '$module' -L | grep -A1 '(0xa)' | grep -q 'acme remote'"
check "a wrong access token is refused (CKR_PIN_INCORRECT)" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin cryptera_at_bogus -O 2>&1 | grep -q CKR_PIN_INCORRECT"
check "the service's keys appear as private and public key objects" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' -O >'$work/objects' 2>&1 && [ \$(grep -c '^Private Key Object' '$work/objects') -eq 3 ] && [ \$(grep -c '^Public Key Object' '$work/objects') -eq 3 ]"
check "private keys are sensitive and never extractable" bash -c "grep -A4 '^Private Key Object' '$work/objects' | grep -q 'never extractable'"
# pkcs11-tool picks keys by CKA_ID: find each key's from the listing.
# key_id LABEL [LISTING]: the CKA_ID of LABEL in a saved `pkcs11-tool -O` listing (default: the first).
key_id() { awk -v want="$1" '$1 == "label:" && $2 == want {found=1} found && $1 == "ID:" {print $2; exit}' "${2:-$work/objects}"; }
ec_id=$(key_id release-ec)
ed_id=$(key_id release-ed)
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
check "EdDSA signed in the service verifies in the module" bash -c "id=$ed_id; pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --sign --id \$id -m EDDSA -i '$work/data' -o '$work/ed.sig' && pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --verify --id \$id -m EDDSA -i '$work/data' --signature-file '$work/ed.sig' 2>&1 | grep -q 'Signature is valid'"
check "the module's verification of a service signature" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --verify --id $ec_id -m ECDSA-SHA256 --signature-format openssl -i '$work/data' --signature-file '$work/release-ec.sig' 2>&1 | grep -q 'Signature is valid'"
check "the local audit file records the remote signature with the service's request id" grep -q '"event":"sign","rv":"CKR_OK".*"key_label":"release-rsa".*"request_id":"req_' "$work/store/audit.jsonl"
check "no access token in the audit file" bash -c "! grep -q '${token##*_}' '$work/store/audit.jsonl'"
generated_key() {
  user --keypairgen --key-type EC:secp384r1 --label release-new >"$work/gen.out" 2>&1 &&
    user -O >"$work/objects2" 2>&1 &&
    id=$(key_id release-new "$work/objects2") &&
    [ -n "$id" ] &&
    user --sign --id "$id" -m ECDSA-SHA384 -i "$work/data" -o "$work/new.sig" &&
    user --verify --id "$id" -m ECDSA-SHA384 -i "$work/data" --signature-file "$work/new.sig" 2>&1 | grep -q 'Signature is valid' &&
    api /v1/keys -H "authorization: Bearer $token" | grep -q '"label":"release-new","algorithm":"ecdsa_p384","environment":"development"'
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
approvals_test() {
  local password=$approver_password id request out verdict approver secret
  "$backend" key create --org acme --label release-gated --algorithm ecdsa_p256 --environment development \
    --approvals-required 1 >/dev/null || return 1
  user -O >"$work/objects3" 2>&1
  id=$(key_id release-gated "$work/objects3")
  # One approver per verdict: each TOTP time step is accepted once per user, the next step early.
  for verdict in approve:alice deny:bob; do
    approver=${verdict#*:}; verdict=${verdict%%:*}
    secret=$(enrol_approver "$approver") || { echo "enrolling $approver failed"; return 1; }
    user --sign --id "$id" -m ECDSA-SHA256 -i "$work/data" -o "$work/gated-$verdict.sig" >"$work/gated-$verdict.out" 2>&1 &
    local signer=$!
    request=$(pending_request) || { echo "no pending request"; return 1; }
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

service_stop
check "service down: signing fails with CKR_DEVICE_ERROR" bash -c "pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --sign --id $ec_id -m ECDSA-SHA256 -i '$work/data' -o '$work/x' 2>&1 | grep -q CKR_DEVICE_ERROR"
done_checks
