#!/usr/bin/env bash
# Drives real PKCS#11 clients against a fresh token of the built module: OpenSC pkcs11-tool (--test,
# --test-ec, --test-fork, keys, objects), OpenSSL through libengine-pkcs11-openssl (CSR, certificates,
# a token CA, sign, decrypt, CMS and S/MIME), and ssh-keygen. Prints one line per check and a closing
# "N passed, N failed" line; exits non-zero if any check failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME=$work/xdg
unset CRYPTERA_PKCS11_CONFIG
passed=0
failed=0
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
tool() { pkcs11-tool --module "$module" "$@"; }
user() { tool --token-label clients --login --pin 1234 "$@"; }

check "exports only PKCS#11 symbols" bash -c "[ -z \"\$(nm -D --defined-only '$module' | awk '{print \$3}' | grep -v '^C_')\" ] && [ \$(nm -D --defined-only '$module' | grep -c ' C_') -ge 90 ]"
check "pkcs11-tool --init-token" tool --init-token --label clients --so-pin 87654321
check "pkcs11-tool --init-pin" tool --token-label clients --login --login-type so --so-pin 87654321 --init-pin --pin 1234
check "wrong PIN is refused" bash -c "! pkcs11-tool --module '$module' --token-label clients --login --pin 9999 -O"
check "keygen RSA-2048" user --keypairgen --key-type rsa:2048 --id 01 --label rsa
check "keygen RSA-3072" user --keypairgen --key-type rsa:3072 --id 05 --label rsa3072
check "keygen EC P-256" user --keypairgen --key-type EC:prime256v1 --id 02 --label ec256
check "keygen EC P-384" user --keypairgen --key-type EC:secp384r1 --id 03 --label ec384
check "keygen AES-256" user --keygen --key-type AES:32 --id 10 --label aes
check "keygen generic secret" user --keygen --key-type GENERIC:32 --id 11 --label hmac
check "pkcs11-tool --test" user --test
check "pkcs11-tool --test-ec" user --test-ec --keypairgen --id 77 --key-type EC:prime256v1
check "pkcs11-tool --test-fork" user --test-fork
printf 'a data object\n' >"$work/data-object"
check "data object write/read" bash -c "
  pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --write-object '$work/data-object' --type data --label notes --application-label cryptera-tests &&
  pkcs11-tool --module '$module' --token-label clients --read-object --type data --label notes -o '$work/data-object.back' &&
  cmp '$work/data-object' '$work/data-object.back'"
check "list mechanisms" bash -c "pkcs11-tool --module '$module' --token-label clients -M | grep -q ECDSA-SHA256"

printf 'data to sign' >"$work/data"
sign_verify() {
  local id=$1 mech=$2 extra=${3:-}
  user --sign --id "$id" -m "$mech" $extra -i "$work/data" -o "$work/sig.$mech" &&
    user --verify --id "$id" -m "$mech" $extra -i "$work/data" --signature-file "$work/sig.$mech"
}
check "sign/verify SHA256-RSA-PKCS" sign_verify 01 SHA256-RSA-PKCS
check "sign/verify SHA384-RSA-PKCS-PSS" sign_verify 01 SHA384-RSA-PKCS-PSS
check "sign/verify ECDSA-SHA256 P-256" sign_verify 02 ECDSA-SHA256
check "sign/verify ECDSA-SHA384 P-384" sign_verify 03 ECDSA-SHA384
check "sign/verify SHA256-HMAC" sign_verify 11 SHA256-HMAC
check "tampered data fails verification" bash -c "printf x >>'$work/data'; pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --verify --id 02 -m ECDSA-SHA256 -i '$work/data' --signature-file '$work/sig.ECDSA-SHA256' 2>&1 | grep -q 'Invalid signature'"
printf 'data to sign' >"$work/data"
check "RSA-PKCS-OAEP encrypt/decrypt" bash -c "
  pkcs11-tool --module '$module' --token-label clients --read-object --type pubkey --id 01 -o '$work/rsa.der' &&
  openssl pkey -pubin -inform DER -in '$work/rsa.der' -out '$work/rsa.pem' &&
  openssl pkeyutl -encrypt -pubin -inkey '$work/rsa.pem' -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in '$work/data' -out '$work/enc' &&
  pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --decrypt --id 01 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 -i '$work/enc' -o '$work/dec' &&
  cmp '$work/data' '$work/dec'"
check "AES-CBC-PAD encrypt/decrypt" bash -c "
  pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --encrypt --id 10 -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f -i '$work/data' -o '$work/aes.enc' &&
  pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --decrypt --id 10 -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f -i '$work/aes.enc' -o '$work/aes.dec' &&
  cmp '$work/data' '$work/aes.dec'"
check "read public key (EC)" bash -c "pkcs11-tool --module '$module' --token-label clients --read-object --type pubkey --id 02 -o '$work/ec.der' && openssl pkey -pubin -inform DER -in '$work/ec.der' -noout -text | grep -q 'NIST CURVE: P-256'"

# Ed25519 lives on a second token: libp11 0.4.12 (Debian 12's OpenSSL engine) stops enumerating a
# token's keys at the first EdDSA key, so it would hide the RSA and EC keys from OpenSSL below.
check "second token --init-token" tool --slot-index 1 --init-token --label edwards --so-pin 87654321
check "second token --init-pin" tool --token-label edwards --login --login-type so --so-pin 87654321 --init-pin --pin 1234
check "keygen Ed25519" tool --token-label edwards --login --pin 1234 --keypairgen --key-type EC:edwards25519 --id 04 --label ed
check "sign/verify EDDSA" bash -c "
  pkcs11-tool --module '$module' --token-label edwards --login --pin 1234 --sign --id 04 -m EDDSA -i '$work/data' -o '$work/sig.ed' &&
  pkcs11-tool --module '$module' --token-label edwards --login --pin 1234 --verify --id 04 -m EDDSA -i '$work/data' --signature-file '$work/sig.ed' 2>&1 | grep -q 'Signature is valid'"

# OpenSSL through the pkcs11 engine.
export PKCS11_MODULE_PATH=$module
engine_conf=$work/openssl.cnf
cat >"$engine_conf" <<CONF
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
MODULE_PATH = $module
PIN = 1234
init = 0
[req]
distinguished_name = dn
[dn]
CONF
ossl() { OPENSSL_CONF=$engine_conf openssl "$@"; }
for key in rsa:01 ec256:02; do
  label=${key%%:*}
  uri="pkcs11:token=clients;object=$label;type=private"
  check "openssl req CSR ($label)" ossl req -new -engine pkcs11 -keyform engine -key "$uri" -subj "/CN=$label" -out "$work/$label.csr"
  check "openssl CSR self-check ($label)" openssl req -in "$work/$label.csr" -verify -noout
  check "openssl self-signed certificate ($label)" ossl req -new -x509 -days 30 -engine pkcs11 -keyform engine -key "$uri" -subj "/CN=$label" -out "$work/$label.crt"
  check "openssl verify certificate ($label)" openssl verify -CAfile "$work/$label.crt" "$work/$label.crt"
  check "import certificate to token ($label)" bash -c "openssl x509 -in '$work/$label.crt' -outform DER -out '$work/$label.crt.der' && pkcs11-tool --module '$module' --token-label clients --login --pin 1234 --write-object '$work/$label.crt.der' --type cert --id ${key##*:} --label $label"
  check "read certificate back ($label)" bash -c "pkcs11-tool --module '$module' --token-label clients --read-object --type cert --id ${key##*:} -o '$work/$label.back.der' && cmp '$work/$label.crt.der' '$work/$label.back.der'"
  check "openssl dgst -sign ($label)" ossl dgst -sha256 -engine pkcs11 -keyform engine -sign "$uri" -out "$work/$label.dgst.sig" "$work/data"
  check "openssl dgst -verify ($label)" bash -c "openssl x509 -in '$work/$label.crt' -pubkey -noout >'$work/$label.pub' && openssl dgst -sha256 -verify '$work/$label.pub' -signature '$work/$label.dgst.sig' '$work/data'"
  check "openssl pkeyutl -sign ($label)" bash -c "openssl dgst -sha256 -binary '$work/data' >'$work/hash' && OPENSSL_CONF='$engine_conf' openssl pkeyutl -sign -engine pkcs11 -keyform engine -inkey '$uri' -in '$work/hash' -out '$work/$label.pk.sig' -pkeyopt digest:sha256 && openssl pkeyutl -verify -pubin -inkey '$work/$label.pub' -in '$work/hash' -sigfile '$work/$label.pk.sig' -pkeyopt digest:sha256"
done

# The token key as a CA, decryption and CMS/S-MIME through the engine.
ec_uri="pkcs11:token=clients;object=ec256;type=private"
rsa_uri="pkcs11:token=clients;object=rsa;type=private"
check "openssl CA-signed certificate (token EC key as the CA)" bash -c "
  OPENSSL_CONF='$engine_conf' openssl req -new -x509 -days 30 -engine pkcs11 -keyform engine -key '$ec_uri' -subj /CN=token-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out '$work/ca.crt' &&
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '$work/leaf.key' -subj /CN=leaf -out '$work/leaf.csr' &&
  OPENSSL_CONF='$engine_conf' openssl x509 -req -engine pkcs11 -CAkeyform engine -CAkey '$ec_uri' -CA '$work/ca.crt' \
    -in '$work/leaf.csr' -set_serial 5 -days 10 -out '$work/leaf.crt' &&
  openssl verify -CAfile '$work/ca.crt' '$work/leaf.crt'"
printf 'a secret\n' >"$work/secret"
for padding in pkcs1 oaep; do
  opts=""
  [ "$padding" = pkcs1 ] || opts="-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256"
  check "openssl pkeyutl -decrypt ($padding)" bash -c "
    openssl pkeyutl -encrypt -pubin -inkey '$work/rsa.pub' $opts -in '$work/secret' -out '$work/secret.$padding' &&
    OPENSSL_CONF='$engine_conf' openssl pkeyutl -decrypt -engine pkcs11 -keyform engine -inkey '$rsa_uri' $opts \
      -in '$work/secret.$padding' -out '$work/secret.$padding.dec' && cmp '$work/secret' '$work/secret.$padding.dec'"
done
check "openssl cms -sign / -verify (RSA)" bash -c "
  OPENSSL_CONF='$engine_conf' openssl cms -sign -engine pkcs11 -keyform engine -inkey '$rsa_uri' -signer '$work/rsa.crt' \
    -binary -in '$work/data' -outform DER -out '$work/data.p7s' &&
  openssl cms -verify -CAfile '$work/rsa.crt' -binary -inform DER -in '$work/data.p7s' -content '$work/data' -out /dev/null"
check "openssl cms -sign / -verify (ECDSA)" bash -c "
  OPENSSL_CONF='$engine_conf' openssl cms -sign -engine pkcs11 -keyform engine -inkey '$ec_uri' -signer '$work/ca.crt' \
    -binary -in '$work/data' -outform DER -out '$work/data.ec.p7s' &&
  openssl cms -verify -CAfile '$work/ca.crt' -purpose any -binary -inform DER -in '$work/data.ec.p7s' -content '$work/data' -out /dev/null"
check "openssl smime -sign / -verify (RSA)" bash -c "
  OPENSSL_CONF='$engine_conf' openssl smime -sign -engine pkcs11 -keyform engine -inkey '$rsa_uri' -signer '$work/rsa.crt' \
    -in '$work/data' -out '$work/data.smime' && openssl smime -verify -CAfile '$work/rsa.crt' -in '$work/data.smime' -out /dev/null"
check "openssl cms -decrypt (RSA key on the token)" bash -c "
  openssl cms -encrypt -binary -aes256 -in '$work/secret' -outform DER -out '$work/secret.p7' '$work/rsa.crt' &&
  OPENSSL_CONF='$engine_conf' openssl cms -decrypt -engine pkcs11 -keyform engine -inkey '$rsa_uri' -recip '$work/rsa.crt' \
    -inform DER -in '$work/secret.p7' -out '$work/secret.cms.dec' && cmp '$work/secret' '$work/secret.cms.dec'"

check "ssh-keygen -D lists token keys" bash -c "ssh-keygen -D '$module' | grep -q '^ssh-rsa ' && ssh-keygen -D '$module' | grep -q '^ecdsa-sha2-nistp256 '"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
