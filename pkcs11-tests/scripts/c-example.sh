#!/usr/bin/env bash
# Compiles examples/sign.c against include/ and runs it on a fresh token with an EC and an RSA key.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
module=${MODULE:-$root/target/release/libcryptera_pkcs11.so}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME=$work/xdg
unset CRYPTERA_PKCS11_CONFIG
cc -Wall -Wextra -Werror -I "$root/include" -I /usr/include/p11-kit-1 "$root/examples/sign.c" -o "$work/sign" -ldl
pkcs11-tool --module "$module" --init-token --label ctest --so-pin 87654321 >/dev/null
pkcs11-tool --module "$module" --token-label ctest --login --login-type so --so-pin 87654321 --init-pin --pin 1234 >/dev/null
pkcs11-tool --module "$module" --token-label ctest --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label eckey >/dev/null
pkcs11-tool --module "$module" --token-label ctest --login --pin 1234 --keypairgen --key-type rsa:2048 --label rsakey >/dev/null
passed=0
for key in eckey rsakey; do
  "$work/sign" "$module" ctest 1234 "$key"
  passed=$((passed + 1))
done
if "$work/sign" "$module" ctest 9999 eckey 2>/dev/null; then
  echo "a wrong PIN was accepted"
  exit 1
fi
passed=$((passed + 1))
echo "$passed passed, 0 failed"
