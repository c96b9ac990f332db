#!/usr/bin/env bash
# Device certificate provisioning (issue 10) with stock tools, the recipe of docs/devices.md: a device
# key made in a local token, its CSR made by OpenSSL through the pkcs11 engine, enrolled over EST with
# curl (RFC 7030 content types), the certificate written back to the token with the key's CKA_ID by
# pkcs11-tool, then verified with the chain, revoked, and refused by `openssl verify -crl_check`. Then
# the service again over HTTPS: a device renews with its current certificate as the TLS client
# certificate (`curl --cert --key`, EST simplereenroll without an access token, RFC 7030 3.3.2) — once
# with a key file, once with the token's key through the OpenSSL pkcs11 engine.
source "$(dirname "$0")/lib.sh"
source "$root/pkcs11-tests/scripts/service-lib.sh"
cd "$work"
service_port=$(free_port)
base="http://127.0.0.1:$service_port"
check "service set up" service_setup
check "development CAs created" bash -c "'$backend' ca create --org acme --environment development --public-url '$base' >'$work/cas.json'"
factory=$("$backend" token create --org acme --name factory --operation sign --operation read \
  --key-pattern 'line1-*' --environment development --expires-in-days 1 2>/dev/null)
check "service started" service_start
check "local token" new_token factory

engine_conf=$work/engine.cnf
engine_config "$engine_conf" 1234
ossl() { OPENSSL_CONF=$engine_conf openssl "$@"; }
auth="Authorization: Bearer $factory"

check "EST cacerts (application/pkcs7-mime) gives the issuing CA and the root" bash -c "
  curl -sf -D '$work/cacerts.h' -H '$auth' '$base/.well-known/est/cacerts' -o '$work/cacerts.b64' &&
  grep -qi '^content-type: application/pkcs7-mime' '$work/cacerts.h' &&
  openssl base64 -d -in '$work/cacerts.b64' | openssl pkcs7 -inform DER -print_certs -out '$work/cacerts.pem' &&
  [ \$(grep -c 'BEGIN CERTIFICATE' '$work/cacerts.pem') -eq 2 ] &&
  grep -q 'acme Development Root CA' '$work/cacerts.pem'"
# The root is the trust anchor; the issuing CA travels as an untrusted intermediate.
awk '/subject=.*Root CA/{r=1} /subject=.*Issuing CA/{r=0} r' "$work/cacerts.pem" >"$work/root.pem"
awk '/subject=.*Issuing CA/{i=1} /subject=.*Root CA/{i=0} i' "$work/cacerts.pem" >"$work/issuing.pem"

# enrol LABEL ID KEYTYPE: key in the token, CSR via the engine, EST simpleenroll, certificate to the token.
enrol() {
  local label=$1 id=$2 keytype=$3 uri="pkcs11:token=factory;object=$1;type=private"
  tool --token-label factory --login --pin 1234 --keypairgen --key-type "$keytype" --label "$label" --id "$id" &&
    ossl req -new -engine pkcs11 -keyform engine -key "$uri" -subj "/CN=$label" -outform DER -out "$label.csr.der" &&
    openssl base64 -in "$label.csr.der" -out "$label.csr.b64" &&
    curl -sf -D "$label.h" -H "$auth" -H 'Content-Type: application/pkcs10' -H 'Content-Transfer-Encoding: base64' \
      --data-binary "@$label.csr.b64" "$base/.well-known/est/simpleenroll" -o "$label.p7.b64" &&
    grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' "$label.h" &&
    openssl base64 -d -in "$label.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$label.pem" &&
    openssl x509 -in "$label.pem" -outform DER -out "$label.der" &&
    tool --token-label factory --login --pin 1234 --write-object "$label.der" --type cert --id "$id" --label "$label" &&
    tool --token-label factory --login --pin 1234 -O --type cert | grep -A5 "label: *$label" | grep -q "ID: *$id"
}
for key in line1-ec:01:EC:prime256v1 line1-rsa:02:rsa:2048; do
  IFS=: read -r label id type param <<<"$key"
  check "enrol $label: engine CSR, curl EST simpleenroll, pkcs11-tool --write-object with CKA_ID $id" enrol "$label" "$id" "$type:$param"
  check "$label verifies with the chain" openssl verify -CAfile root.pem -untrusted issuing.pem "$label.pem"
  check "$label: a retry returns the same certificate" bash -c "
    curl -sf -H '$auth' -H 'Content-Type: application/pkcs10' --data-binary '@$label.csr.b64' '$base/.well-known/est/simpleenroll' |
      openssl base64 -d | openssl pkcs7 -inform DER -print_certs | openssl x509 -outform DER | cmp - '$label.der'"
done

ca_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cas"][1]["id"])' "$work/cas.json")
admin=$("$backend" token create --org acme --name admin --operation admin --operation read \
  --environment development --expires-in-days 1 2>/dev/null)
check "the CRL before revocation lets the certificate verify" bash -c "
  curl -sf '$base/v1/cas/$ca_id/crl' -o before.crl.der && openssl crl -inform DER -in before.crl.der -out before.crl &&
  openssl verify -crl_check -CRLfile before.crl -CAfile root.pem -untrusted issuing.pem line1-ec.pem"
check "revoke line1-ec (key_compromise)" bash -c "
  curl -sf -H 'Authorization: Bearer $admin' -H 'content-type: application/json' \
    -d '{\"reason\":\"key_compromise\"}' '$base/v1/devices/line1-ec/revoke' | grep -q '\"status\":\"revoked\"'"
check "openssl verify -crl_check rejects the revoked certificate" bash -c "
  curl -sf '$base/v1/cas/$ca_id/crl' -o after.crl.der && openssl crl -inform DER -in after.crl.der -out after.crl &&
  ! openssl verify -crl_check -CRLfile after.crl -CAfile root.pem -untrusted issuing.pem line1-ec.pem >verify.out 2>&1 &&
  grep -q 'certificate revoked' verify.out &&
  openssl verify -crl_check -CRLfile after.crl -CAfile root.pem -untrusted issuing.pem line1-rsa.pem"
check "the certificate names the CRL URL" bash -c "openssl x509 -in line1-ec.pem -noout -ext crlDistributionPoints | grep -q '$base/v1/cas/$ca_id/crl'"
check "the registry exports both devices as JSON lines" bash -c "
  [ \$(curl -sf -H 'Authorization: Bearer $admin' '$base/v1/devices/export' | wc -l) -eq 2 ]"

# Re-enrolment authenticated by the device's current certificate needs TLS: the same service over HTTPS
# (the test-only localhost certificate of backend/tests/fixtures).
fixtures=$root/backend/tests/fixtures
service_stop
scheme=https
check "service restarted with TLS" service_start --tls-cert "$fixtures/localhost-test-cert.pem" --tls-key "$fixtures/localhost-test-key.pem"
tls_base="https://localhost:$service_port"
est_tls() { curl -s --cacert "$fixtures/test-ca-cert.pem" -H 'Content-Type: application/pkcs10' -H 'Content-Transfer-Encoding: base64' "$@"; }
csr_b64() { # KEYFILE CN OUT: a new P-256 key file and its base64 DER CSR
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$1" -subj "/CN=$2" -outform DER -out "$3.der" 2>/dev/null &&
    openssl base64 -in "$3.der" -out "$3"
}
p7_pem() { openssl base64 -d -in "$1" | openssl pkcs7 -inform DER -print_certs -out "$2"; }

check "a key-file device enrols over HTTPS with the access token" bash -c "
  $(declare -f est_tls csr_b64 p7_pem); fixtures='$fixtures'
  csr_b64 soft.key line1-soft soft.csr.b64 &&
  est_tls -f -H '$auth' --data-binary @soft.csr.b64 '$tls_base/.well-known/est/simpleenroll' -o soft.p7.b64 && p7_pem soft.p7.b64 soft.pem"
check "curl --cert --key: simplereenroll with the current certificate, no access token, renews" bash -c "
  $(declare -f est_tls csr_b64 p7_pem); fixtures='$fixtures'
  csr_b64 soft2.key line1-soft soft2.csr.b64 &&
  est_tls -f --cert soft.pem --key soft.key --data-binary @soft2.csr.b64 '$tls_base/.well-known/est/simplereenroll' -o soft2.p7.b64 &&
  p7_pem soft2.p7.b64 soft2.pem && ! cmp -s soft.pem soft2.pem &&
  openssl verify -CAfile root.pem -untrusted issuing.pem soft2.pem"
check "the superseded certificate no longer renews (401, says why)" bash -c "
  $(declare -f est_tls csr_b64); fixtures='$fixtures'
  csr_b64 soft3.key line1-soft soft3.csr.b64 &&
  code=\$(est_tls --cert soft.pem --key soft.key --data-binary @soft3.csr.b64 -o refused.json -w '%{http_code}' '$tls_base/.well-known/est/simplereenroll') &&
  [ \"\$code\" = 401 ] && grep -q superseded refused.json"
check "a certificate renews only its own device (403)" bash -c "
  $(declare -f est_tls csr_b64); fixtures='$fixtures'
  csr_b64 other.key line1-rsa other.csr.b64 &&
  code=\$(est_tls --cert soft2.pem --key soft2.key --data-binary @other.csr.b64 -o other.json -w '%{http_code}' '$tls_base/.well-known/est/simplereenroll') &&
  [ \"\$code\" = 403 ]"
check "simpleenroll still needs the access token (401 with only a certificate)" bash -c "
  $(declare -f est_tls); fixtures='$fixtures'
  code=\$(est_tls --cert soft2.pem --key soft2.key --data-binary @soft3.csr.b64 -o /dev/null -w '%{http_code}' '$tls_base/.well-known/est/simpleenroll') &&
  [ \"\$code\" = 401 ]"
# The token's key as the TLS client key: curl through the OpenSSL pkcs11 engine (libp11).
check "curl --engine pkcs11 --key pkcs11:...: line1-rsa renews with its token key and current certificate" bash -c "
  $(declare -f est_tls p7_pem); fixtures='$fixtures'
  OPENSSL_CONF='$engine_conf' openssl req -new -engine pkcs11 -keyform engine -key 'pkcs11:token=factory;object=line1-rsa;type=private' \
    -subj /CN=line1-rsa -outform DER -out rsa-renew.csr.der 2>/dev/null && openssl base64 -in rsa-renew.csr.der -out rsa-renew.csr.b64 &&
  OPENSSL_CONF='$engine_conf' est_tls -f --engine pkcs11 --key-type ENG --key 'pkcs11:token=factory;object=line1-rsa;type=private' \
    --cert line1-rsa.pem --data-binary @rsa-renew.csr.b64 '$tls_base/.well-known/est/simplereenroll' -o rsa-renew.p7.b64 &&
  p7_pem rsa-renew.p7.b64 rsa-renew.pem && ! cmp -s rsa-renew.pem line1-rsa.pem"
check "the audit and CA signing records name the client-certificate renewals" bash -c "
  [ \$(curl -sf --cacert '$fixtures/test-ca-cert.pem' -H 'Authorization: Bearer $admin' '$tls_base/v1/cas/signing-records' |
    python3 -c 'import json,sys; print(sum(r[\"auth\"] == \"client_certificate\" for r in json.load(sys.stdin)[\"records\"]))') -eq 2 ]"
done_checks
