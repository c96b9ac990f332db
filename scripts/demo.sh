#!/usr/bin/env bash
# The main job, with no configuration: build the module, make (once) a token "demo" in the default
# store (~/.local/share/cryptera-pkcs11), generate a P-256 key on it, sign a file through the module
# and verify the signature with OpenSSL outside the module.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh demo
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release --quiet -p cryptera-pkcs11
module=$PWD/target/release/libcryptera_pkcs11.so
so_pin=${DEMO_SO_PIN:-demo-so-pin}
pin=${DEMO_PIN:-demo-pin}
tool() { pkcs11-tool --module "$module" "$@"; }

if ! tool -L 2>/dev/null | grep -q "token label *: demo *$"; then
  free=$(tool -L | awk '/^Slot [0-9]+ \(0x[0-9a-f]+\)/ {slot=$2} /token state: *uninitialized/ {print slot; exit}')
  tool --slot "$free" --init-token --label demo --so-pin "$so_pin" >/dev/null
  tool --token-label demo --login --login-type so --so-pin "$so_pin" --init-pin --pin "$pin" >/dev/null
  echo "created token 'demo' in slot $free (user PIN: $pin)"
fi
if ! tool --token-label demo --login --pin "$pin" -O --type privkey 2>/dev/null | grep -q "label: *demo-key"; then
  tool --token-label demo --login --pin "$pin" --keypairgen --key-type EC:prime256v1 --label demo-key --id dd01 >/dev/null
  echo "generated P-256 key 'demo-key'"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Hello from the Cryptera PKCS#11 module, $(date -u)" >"$work/message.txt"
tool --token-label demo --login --pin "$pin" --sign --label demo-key -m ECDSA-SHA256 --signature-format openssl \
  -i "$work/message.txt" -o "$work/message.sig" >/dev/null
tool --token-label demo --read-object --type pubkey --label demo-key -o "$work/key.der" >/dev/null
openssl pkey -pubin -inform DER -in "$work/key.der" -out "$work/key.pem"
openssl dgst -sha256 -verify "$work/key.pem" -signature "$work/message.sig" "$work/message.txt"
echo "signed through $module and verified with OpenSSL"
