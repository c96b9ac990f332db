#!/usr/bin/env bash
# `cryptera-pkcs11 enroll` and `renew` (issue 10) against the real service on 127.0.0.1: RSA-2048, P-256
# and Ed25519 keys of a local token get device certificates through requests signed in the token; the
# certificate objects carry the key's CKA_ID, the chain is on the token, everything verifies with
# OpenSSL; a second enroll writes nothing, renew replaces the certificate (the old one superseded in
# the service, its object gone), a revoked one fails `openssl verify -crl_check`; wrong PIN, unknown
# key, a key type the profile refuses, a service that is down and a TLS failure each exit non-zero
# with a clear message; a key of a remote Cryptera slot is enrolled the same way.
source "$(dirname "$0")/lib.sh"
source "$root/pkcs11-tests/scripts/service-lib.sh"
cli=${CLI:-$(dirname "$module")/cryptera-pkcs11}
cd "$work"
service_port=$(free_port)
base="http://127.0.0.1:$service_port"
check "service set up (a remote key release-gw)" service_setup release-gw:ecdsa_p256
check "development CAs created" bash -c "'$backend' ca create --org acme --environment development --public-url '$base' >'$work/cas.json'"
"$backend" token create --org acme --name factory --operation sign --operation read --key-pattern 'line1-*' \
  --environment development --expires-in-days 1 2>/dev/null >"$work/factory.token"
chmod 600 "$work/factory.token"
check "service started" service_start
check "local token" new_token factory
for key in line1-rsa:01:rsa:2048 line1-ec:02:EC:prime256v1 line1-ed:03:EC:edwards25519 line1-p521:04:EC:secp521r1; do
  IFS=: read -r label id type param <<<"$key"
  tool --token-label factory --login --pin 1234 --keypairgen --key-type "$type:$param" --label "$label" --id "$id" >/dev/null 2>&1
done

printf '1234\n' >pin
# enroll ARGS...: the command for a key of the local token (the module found beside the program).
enroll() { "$cli" enroll --token-label factory --pin-file pin --service "$base" --access-token-file factory.token "$@"; }
renew() { "$cli" renew --token-label factory --pin-file pin --service "$base" --access-token-file factory.token "$@"; }
# certs: the token's certificate objects as pkcs11-tool lists them (no login: certificates are public).
certs() { tool --token-label factory -O --type cert 2>/dev/null; }
# cert_id LABEL: the CKA_ID of the certificate object LABEL.
cert_id() { certs | awk -v want="$1" '$1 == "label:" {f = ($2 == want)} f && $1 == "ID:" {print $2; exit}'; }
# export ID NAME: the certificate object with CKA_ID ID as NAME.pem.
export_cert() {
  tool --token-label factory --read-object --type cert --id "$1" -o "$2.der" >/dev/null 2>&1 &&
    openssl x509 -inform DER -in "$2.der" -out "$2.pem"
}
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }

enrolled() {
  enroll --device-id "$1" --key-label "$1" >"$1.out" 2>&1 || { cat "$1.out"; return 1; }
  cat "$1.out"
  grep -q 'new certificate, serial' "$1.out" && grep -q 'wrote .* certificate object' "$1.out"
}
for label in line1-rsa line1-ec line1-ed; do
  check "enroll $label: a new certificate, the leaf and the chain written" enrolled "$label"
done
check "the leaf objects carry their key's CKA_ID (01, 02, 03)" [ "$(cert_id line1-rsa) $(cert_id line1-ec) $(cert_id line1-ed)" = '01 02 03' ]
chain_on_token() {
  [ "$(certs | grep -c '^Certificate Object')" -eq 5 ] &&
    [ "$(certs | grep -c 'label: *acme Development Issuing CA')" -eq 1 ] &&
    [ "$(certs | grep -c 'label: *acme Development Root CA')" -eq 1 ] &&
    tool --token-label factory --read-object --type cert --label 'acme Development Root CA' -o root.der &&
    openssl x509 -inform DER -in root.der -out root.pem &&
    tool --token-label factory --read-object --type cert --label 'acme Development Issuing CA' -o issuing.der &&
    openssl x509 -inform DER -in issuing.der -out issuing.pem
}
check "the token holds 5 certificate objects: 3 leaves, the issuing CA and the root, each once" chain_on_token
verifies() {
  export_cert "$1" "$2" && openssl verify -CAfile root.pem -untrusted issuing.pem "$2.pem" &&
    openssl x509 -in "$2.pem" -noout -subject | grep -q "CN *= *$2"
}
for pair in 01:line1-rsa 02:line1-ec 03:line1-ed; do
  check "${pair#*:}: the certificate from the token verifies with the chain from the token" verifies "${pair%%:*}" "${pair#*:}"
done

again() {
  enroll --device-id line1-ec --key-id 02 >again.out 2>&1 || { cat again.out; return 1; }
  cat again.out
  grep -q 'existing certificate' again.out && grep -q 'nothing written' again.out &&
    [ "$(certs | grep -c '^Certificate Object')" -eq 5 ]
}
check "enroll again: the service's existing certificate, no object written" again
not_due() {
  renew --device-id line1-ec --key-label line1-ec >notdue.out 2>&1 || { cat notdue.out; return 1; }
  cat notdue.out
  grep -q 'not renewed' notdue.out && [ "$(certs | grep -c '^Certificate Object')" -eq 5 ]
}
check "renew before it is due: says when it expires, exit 0, nothing changes" not_due
old_serial=$(serial line1-ec.pem)
renewed() {
  renew --device-id line1-ec --key-label line1-ec --force >renew.out 2>&1 || { cat renew.out; return 1; }
  cat renew.out
  grep -q 'removed the old certificate object' renew.out &&
    export_cert 02 renewed && [ "$(serial renewed.pem)" != "$old_serial" ] &&
    [ "$(certs | grep -c '^Certificate Object')" -eq 5 ] &&
    [ "$(certs | awk '$1 == "ID:" && $2 == "02"' | wc -l)" -eq 1 ] &&
    openssl verify -CAfile root.pem -untrusted issuing.pem renewed.pem &&
    api /v1/devices/line1-ec -H "authorization: Bearer $token" >device.json &&
    python3 - "$old_serial" "$(serial renewed.pem)" <<'PY'
import json, sys
certs = {c["serial"].lstrip("0"): c["status"] for c in json.load(open("device.json"))["certificates"]}
print(certs)
assert certs[sys.argv[1]] == "superseded" and certs[sys.argv[2]] == "active"
PY
}
check "renew --force: a new serial written with CKA_ID 02, the old object gone, the old one superseded in the service" renewed

ca_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cas"][1]["id"])' "$work/cas.json")
revoked() {
  api /v1/devices/line1-rsa/revoke -H "authorization: Bearer $token" -d '{"reason":"key_compromise"}' |
    grep -q '"status":"revoked"' &&
    curl -sf "$base/v1/cas/$ca_id/crl" -o crl.der && openssl crl -inform DER -in crl.der -out crl.pem &&
    ! openssl verify -crl_check -CRLfile crl.pem -CAfile root.pem -untrusted issuing.pem line1-rsa.pem >revoked.out 2>&1 &&
    grep -q 'certificate revoked' revoked.out &&
    openssl verify -crl_check -CRLfile crl.pem -CAfile root.pem -untrusted issuing.pem line1-ed.pem
}
check "revoke line1-rsa in the service: openssl verify -crl_check refuses it, line1-ed still verifies" revoked

# fails CODE TEXT COMMAND...: COMMAND exits with CODE and says TEXT on stderr.
fails() {
  local code=$1 text=$2 rc
  shift 2
  "$@" >fail.out 2>&1
  rc=$?
  cat fail.out
  [ "$rc" -eq "$code" ] || { echo "exit $rc, not $code"; return 1; }
  grep -q -- "$text" fail.out
}
check "a wrong PIN: exit 3, 'wrong PIN'" fails 3 'wrong PIN' env CRYPTERA_PIN=9999 "$cli" enroll --token-label factory \
  --service "$base" --access-token-file factory.token --device-id line1-ec --key-label line1-ec
check "an unknown key: exit 4, 'no private key'" fails 4 'no private key with label "line1-nope"' enroll --device-id line1-nope --key-label line1-nope
check "a P-521 key the profile refuses: exit 5 with the service's message" fails 5 'refused the enrolment (HTTP 400).*unsupported curve' \
  enroll --device-id line1-p521 --key-label line1-p521
check "a device id outside the access token's scope: exit 5, refused" fails 5 'refused the enrolment (HTTP 404)' \
  enroll --device-id other-device --key-label line1-ec
down=http://127.0.0.1:$(free_port)
check "the service down: exit 6, 'cannot reach the service'" fails 6 'cannot reach the service' "$cli" enroll --token-label factory \
  --pin-file pin --service "$down" --access-token-file factory.token --device-id line1-ec --key-label line1-ec
check "no access token: exit 2 and how to give one" fails 2 'no access token' env -u CRYPTERA_ACCESS_TOKEN "$cli" enroll \
  --token-label factory --pin-file pin --service "$base" --device-id line1-ec --key-label line1-ec

code_signing() {
  tool --token-label factory --login --pin 1234 --keypairgen --key-type EC:secp384r1 --label line1-cs --id 05 >/dev/null 2>&1 &&
    enroll --device-id line1-cs --key-id 05 --profile code_signing &&
    export_cert 05 line1-cs && openssl x509 -in line1-cs.pem -noout -ext extendedKeyUsage | grep -q 'Code Signing' &&
    openssl verify -CAfile root.pem -untrusted issuing.pem line1-cs.pem
}
check "a P-384 key with --profile code_signing: a code signing certificate (CKM_ECDSA_SHA384)" code_signing

# A key of the remote Cryptera slot (slot 10 of the same module, the access token in the environment:
# protected authentication path, no PIN). The service attaches a certificate to a development key when its
# subject or issuer names the environment: the environment's own issuing CA does ("acme Development
# Issuing CA"), whatever the device id.
remote_enroll() {
  remote_config 'token_env = "CRYPTERA_ACCESS_TOKEN"'
  CRYPTERA_ACCESS_TOKEN=$token "$cli" enroll --slot 10 --service "$base" --device-id release-gw1 \
    --key-label release-gw >remote.out 2>&1 || { cat remote.out; return 1; }
  cat remote.out
  grep -q 'new certificate' remote.out &&
    CRYPTERA_ACCESS_TOKEN=$token rtool -O --type cert >remote-certs 2>&1 &&
    [ "$(grep -c '^Certificate Object' remote-certs)" -eq 3 ] &&
    id=$(awk '$1 == "label:" && $2 == "release-gw" {f=1} f && $1 == "ID:" {print $2; exit}' remote-certs) &&
    CRYPTERA_ACCESS_TOKEN=$token rtool --read-object --type pubkey --id "$id" -o gw-pub.der &&
    CRYPTERA_ACCESS_TOKEN=$token rtool --read-object --type cert --id "$id" -o gw.der &&
    openssl x509 -inform DER -in gw.der -noout -pubkey | openssl pkey -pubin -outform DER | cmp - gw-pub.der &&
    openssl x509 -inform DER -in gw.der -out gw.pem && openssl verify -CAfile root.pem -untrusted issuing.pem gw.pem &&
    api /v1/keys -H "authorization: Bearer $token" |
    python3 -c 'import json,sys; k=[k for k in json.load(sys.stdin)["keys"] if k["label"] == "release-gw"][0]; assert len(k["certificates"]) == 3'
}
check "a remote slot's key: enrolled, the service keeps leaf and chain, the leaf carries the key's CKA_ID" remote_enroll
remote_renew() {
  CRYPTERA_ACCESS_TOKEN=$token "$cli" renew --slot 10 --service "$base" --device-id release-gw1 \
    --key-label release-gw --force >remote-renew.out 2>&1 || { cat remote-renew.out; return 1; }
  cat remote-renew.out
  CRYPTERA_ACCESS_TOKEN=$token rtool -O --type cert >remote-certs2 2>&1 &&
    [ "$(grep -c '^Certificate Object' remote-certs2)" -eq 3 ] &&
    CRYPTERA_ACCESS_TOKEN=$token rtool --read-object --type cert --id "$id" -o gw2.der &&
    ! cmp -s gw.der gw2.der
}
check "a remote slot's key renewed: the new leaf replaces the old one, still 3 certificates" remote_renew
unset CRYPTERA_PKCS11_CONFIG
service_stop

# TLS: the service with the test CA's localhost certificate.
scheme=https
fixtures=$root/backend/tests/fixtures
check "service over TLS" service_start --tls-cert "$fixtures/localhost-test-cert.pem" --tls-key "$fixtures/localhost-test-key.pem"
over_tls() {
  "$cli" enroll --token-label factory --pin-file pin --service "https://localhost:$service_port" --cacert "$fixtures/test-ca-cert.pem" \
    --access-token-file factory.token --device-id line1-ed --key-label line1-ed 2>&1 | tee tls.out
  grep -q 'existing certificate' tls.out
}
check "over TLS with --cacert: the existing certificate again" over_tls
check "TLS failure (the service's CA not trusted): exit 7, 'TLS failure'" fails 7 'TLS failure' "$cli" enroll --token-label factory \
  --pin-file pin --service "https://localhost:$service_port" --access-token-file factory.token --device-id line1-ed --key-label line1-ed
done_checks
