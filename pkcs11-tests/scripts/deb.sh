#!/usr/bin/env bash
# The system-wide install of docs/CLIENTS.md: cargo-deb (installed from crates.io if missing) packages
# the built module, CLI, header and p11-kit module file; dpkg installs the package (as root, else
# through sudo); p11-kit list-modules, p11-kit-proxy.so and GnuTLS then find the module with no
# configuration, and pkcs11-tool, ssh-agent and the C example use the installed path. The package is
# removed again at exit if it was not installed before.
source "$(dirname "$0")/lib.sh"
cd "$work"
installed=/usr/lib/x86_64-linux-gnu/pkcs11/libcryptera_pkcs11.so
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export PATH=${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH

check "cargo-deb available (cargo install cargo-deb --locked)" bash -c "
  command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet"
check "cargo deb builds the package" bash -c "
  cd '$root' && cargo build --release --quiet -p cryptera-pkcs11 && cargo deb -p cryptera-pkcs11 --no-build --strip -o '$work/'"
deb=$(ls "$work"/cryptera-pkcs11_*.deb 2>/dev/null | head -1)
check "package contents" bash -c "
  dpkg-deb -c '$deb' | tee contents.txt &&
  grep -q ' ./usr/lib/x86_64-linux-gnu/pkcs11/libcryptera_pkcs11.so$' contents.txt &&
  grep -q ' ./usr/bin/cryptera-pkcs11$' contents.txt &&
  grep -q ' ./usr/include/cryptera_pkcs11.h$' contents.txt &&
  grep -q ' ./usr/share/p11-kit/modules/cryptera-pkcs11.module$' contents.txt"

if dpkg-query -W -f='${Status}' cryptera-pkcs11 2>/dev/null | grep -q "install ok installed"; then
  was_installed=yes
else
  was_installed=no
  on_exit "$sudo dpkg -r cryptera-pkcs11"
fi
check "dpkg -i installs the package" $sudo dpkg -i "$deb"
check "dpkg -s shows it installed" bash -c "dpkg -s cryptera-pkcs11 | grep -q '^Status: install ok installed'"
check "the installed module is the built one (stripped)" bash -c "
  [ -f '$installed' ] && nm -D --defined-only '$installed' | grep -q ' C_GetFunctionList$'"

check "p11-kit list-modules shows the module" bash -c "
  p11-kit list-modules | tee modules.txt && grep -q '^cryptera-pkcs11: libcryptera_pkcs11.so' modules.txt &&
  grep -A3 '^cryptera-pkcs11:' modules.txt | grep -q 'library-manufacturer: Cryptera'"
m=$installed
check "pkcs11-tool --module (installed path) --init-token" pkcs11-tool --module "$m" --init-token --label installed --so-pin 87654321
check "pkcs11-tool --init-pin" pkcs11-tool --module "$m" --token-label installed --login --login-type so --so-pin 87654321 --init-pin --pin 1234
check "pkcs11-tool keygen EC P-256" pkcs11-tool --module "$m" --token-label installed --login --pin 1234 --keypairgen --key-type EC:prime256v1 --id 01 --label installed-ec
check "pkcs11-tool keygen RSA-2048" pkcs11-tool --module "$m" --token-label installed --login --pin 1234 --keypairgen --key-type rsa:2048 --id 02 --label installed-rsa
printf 'installed module\n' >data
check "pkcs11-tool sign/verify ECDSA-SHA256" bash -c "
  pkcs11-tool --module '$m' --token-label installed --login --pin 1234 --sign --id 01 -m ECDSA-SHA256 -i data -o sig &&
  pkcs11-tool --module '$m' --token-label installed --login --pin 1234 --verify --id 01 -m ECDSA-SHA256 -i data --signature-file sig"
check "p11-kit list-modules shows the new token" bash -c "p11-kit list-modules | grep -A2 '^cryptera-pkcs11:' >/dev/null && p11-kit list-modules | grep -q 'token: installed'"
proxy=$(find /usr/lib -name p11-kit-proxy.so 2>/dev/null | head -1)
check "pkcs11-tool through p11-kit-proxy.so sees the token" bash -c "pkcs11-tool --module '$proxy' -L | grep -q 'token label *: installed'"
check "GnuTLS p11tool finds it without --provider" bash -c "
  p11tool --list-tokens | grep -q 'token=installed' && GNUTLS_PIN=1234 p11tool --login --list-privkeys 'pkcs11:token=installed' | grep -q 'object=installed-ec'"
check "ssh-agent loads it from the default allow-list" bash -c "
  printf '#!/bin/sh\necho 1234\n' >askpass && chmod 700 askpass &&
  eval \"\$(ssh-agent -a '$work/agent.sock' -s)\" >/dev/null && trap 'kill \$SSH_AGENT_PID' EXIT &&
  SSH_ASKPASS='$work/askpass' SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add -s '$m' </dev/null && ssh-add -l | grep -q ECDSA"
check "C example against the installed header and module" bash -c "
  cc -Wall -Werror -I /usr/include/p11-kit-1 '$root/examples/sign.c' -o sign -ldl && grep -q CRYPTERA_PKCS11 /usr/include/cryptera_pkcs11.h &&
  ./sign '$m' installed 1234 installed-ec && ./sign '$m' installed 1234 installed-rsa"
check "cryptera-pkcs11 audit verify (installed CLI)" bash -c "
  /usr/bin/cryptera-pkcs11 audit verify '$XDG_DATA_HOME/cryptera-pkcs11/audit.jsonl'"
if [ "$was_installed" = no ]; then
  check "dpkg -r removes it again" bash -c "$sudo dpkg -r cryptera-pkcs11 >/dev/null && [ ! -e '$installed' ] && ! p11-kit list-modules | grep -q '^cryptera-pkcs11:'"
fi

done_checks
