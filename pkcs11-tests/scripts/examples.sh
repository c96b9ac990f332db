#!/usr/bin/env bash
# Runs the language examples of README.md against a fresh token with an EC and an RSA key:
# examples/pykcs11_sign.py (Debian's python3-pykcs11) and examples/rust/cryptoki_sign.rs (the
# cryptoki crate, built as an example of pkcs11-tests). Each signs, verifies on the token and rejects a
# changed message; OpenSSL checks the RSA signatures with the exported public key.
source "$(dirname "$0")/lib.sh"
cd "$work"
user() { tool --token-label examples --login --pin 1234 "$@"; }
python=/usr/bin/python3 # Debian's, which python3-pykcs11 installs into (not a pyenv or venv python3)

check "token for the examples" new_token examples
check "keygen EC P-256" user --keypairgen --key-type EC:prime256v1 --id 01 --label example-ec
check "keygen RSA-2048" user --keypairgen --key-type rsa:2048 --id 02 --label example-rsa
check "export the RSA public key" bash -c "
  pkcs11-tool --module '$module' --token-label examples --read-object --type pubkey --id 02 -o rsa.der &&
  openssl pkey -pubin -inform DER -in rsa.der -out rsa.pem"
# rsa_signature_checks MESSAGE OUTPUT: the hex signature printed by an example verifies with OpenSSL.
rsa_signature_checks() {
  printf '%s' "$1" >message && sed -n 's/.*verified on the token: //p' "$2" | "$python" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >rsa.sig &&
    openssl dgst -sha256 -verify rsa.pem -signature rsa.sig message
}

check "PyKCS11 is installed for Debian's python3" "$python" -c 'import PyKCS11'
for key in example-ec example-rsa; do
  check "Python PyKCS11 example signs and verifies ($key)" bash -c "
    '$python' '$root/examples/pykcs11_sign.py' '$module' examples 1234 $key | tee py.$key.out &&
    grep -q '^$key: .* verified on the token' py.$key.out && grep -q '^CKO_PRIVATE_KEY *$key\$' py.$key.out"
done
check "Python example's RSA signature verifies with OpenSSL" rsa_signature_checks "signed through PyKCS11" py.example-rsa.out
check "Python example fails with a wrong PIN" bash -c "
  ! '$python' '$root/examples/pykcs11_sign.py' '$module' examples 9999 example-ec 2>&1 | tee py.wrong.out; grep -q CKR_PIN_INCORRECT py.wrong.out"

example=$root/target/release/examples/cryptoki-sign
check "Rust cryptoki example builds" bash -c "cd '$root' && cargo build --release --quiet -p pkcs11-tests --example cryptoki-sign"
for key in example-ec example-rsa; do
  check "Rust cryptoki example signs and verifies ($key)" bash -c "
    '$example' '$module' examples 1234 $key | tee rs.$key.out && grep -q '^$key: .* verified on the token' rs.$key.out"
done
check "Rust example's RSA signature verifies with OpenSSL" rsa_signature_checks "signed through cryptoki" rs.example-rsa.out
check "Rust example fails with a wrong PIN" bash -c "! '$example' '$module' examples 9999 example-ec"
check "Rust example fails for a missing key" bash -c "! '$example' '$module' examples 1234 no-such-key"

done_checks
