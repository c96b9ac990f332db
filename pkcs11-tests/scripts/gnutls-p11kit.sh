#!/usr/bin/env bash
# GnuTLS and p11-kit against a fresh token, as docs/CLIENTS.md describes them: p11tool lists tokens and
# objects, generates key pairs, writes and exports certificates and public keys, test-signs; certtool
# makes a self-signed CA with a token key and issues a certificate with it (PKCS#11 URLs); p11-kit
# server and p11-kit remote forward the module to pkcs11-tool through p11-kit-client.so.
# (`p11-kit list-modules` through the packaged .module file is tested by deb.sh, once installed: p11-kit
# reads per-user module files only for non-root users, and CI runs as root.)
source "$(dirname "$0")/lib.sh"
cd "$work"
export GNUTLS_PIN=1234 GNUTLS_SO_PIN=87654321
p11() { p11tool --provider "$module" "$@"; }
token="pkcs11:token=gnutls"

check "token for GnuTLS" new_token gnutls
check "p11tool --list-tokens" bash -c "p11tool --provider '$module' --list-tokens | tee t.txt && grep -q 'URL: pkcs11:.*token=gnutls' t.txt"
check "p11tool --generate-privkey ECDSA P-256" p11 --login --generate-privkey ECDSA --curve secp256r1 --label gnu-ec --id 0a --outfile ec-pub.pem "$token"
check "p11tool --generate-privkey RSA-3072" p11 --login --generate-privkey RSA --bits 3072 --label gnu-rsa --id 0b --outfile rsa-pub.pem "$token"
check "p11tool --list-all --login shows both key pairs" bash -c "
  p11tool --provider '$module' --login --list-all '$token' | tee all.txt &&
  grep -q 'object=gnu-ec;type=private' all.txt && grep -q 'object=gnu-rsa;type=private' all.txt &&
  grep -q 'Type: Private key (RSA-3072)' all.txt && grep -q 'Type: Public key (EC/ECDSA-SECP256R1)' all.txt"
check "p11tool --list-privkeys" bash -c "p11tool --provider '$module' --login --list-privkeys '$token' | grep -c 'type=private' | grep -qx 2"
check "p11tool --export-pubkey matches the generated key" bash -c "
  p11tool --provider '$module' --login --export-pubkey '$token;object=gnu-rsa' --outfile rsa-exported.pem &&
  cmp <(openssl pkey -pubin -in rsa-pub.pem -outform DER) <(openssl pkey -pubin -in rsa-exported.pem -outform DER)"
check "p11tool --test-sign (RSA)" p11 --login --test-sign "$token;object=gnu-rsa"
check "p11tool --test-sign (ECDSA)" p11 --login --test-sign "$token;object=gnu-ec"
check "p11tool --list-mechanisms" bash -c "p11tool --provider '$module' --list-mechanisms '$token' | grep -q CKM_ECDSA_SHA256"

cat >ca.tmpl <<'TMPL'
cn = "Cryptera GnuTLS test CA"
ca
cert_signing_key
crl_signing_key
expiration_days = 3650
TMPL
cat >leaf.tmpl <<'TMPL'
cn = "localhost"
dns_name = "localhost"
tls_www_server
tls_www_client
signing_key
expiration_days = 365
TMPL
check "certtool --generate-self-signed with a token key (ECDSA CA)" \
  certtool --provider "$module" --generate-self-signed --load-privkey "$token;object=gnu-ec;type=private" \
  --template ca.tmpl --outfile ca.pem
check "certtool --generate-request with a token key (RSA)" \
  certtool --provider "$module" --generate-request --load-privkey "$token;object=gnu-rsa;type=private" \
  --template leaf.tmpl --outfile rsa.csr
check "certtool --generate-certificate: the token CA issues for the token RSA key" \
  certtool --provider "$module" --generate-certificate --load-request rsa.csr \
  --load-ca-certificate ca.pem --load-ca-privkey "$token;object=gnu-ec;type=private" \
  --template leaf.tmpl --outfile rsa.pem
check "certtool --verify the chain" bash -c "certtool --verify --load-ca-certificate ca.pem --infile rsa.pem | grep -q 'Verified. The certificate is trusted'"
check "openssl verify the chain" openssl verify -CAfile ca.pem rsa.pem
check "issued certificate carries the token key" bash -c "
  cmp <(openssl x509 -in rsa.pem -pubkey -noout | openssl pkey -pubin -outform DER) <(openssl pkey -pubin -in rsa-pub.pem -outform DER)"
check "p11tool --write a certificate next to its key" p11 --login --write --load-certificate rsa.pem --label gnu-rsa --id 0b "$token"
check "p11tool --export the certificate" bash -c "
  p11tool --provider '$module' --export '$token;object=gnu-rsa;type=cert' --outfile exported.pem &&
  cmp <(openssl x509 -in exported.pem -outform DER) <(openssl x509 -in rsa.pem -outform DER)"
check "p11tool --list-all-certs" bash -c "p11tool --provider '$module' --list-all-certs '$token' | grep -q 'object=gnu-rsa;type=cert'"
# TLS 1.3 with token keys, on 127.0.0.1: gnutls-cli authenticates as a client with the token's RSA key
# (RSA-PSS), and OpenSSL's s_server serves with it (through the pkcs11 engine) to gnutls-cli.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# tls NAME SERVER-ARGS -- CLIENT-ARGS: runs one s_server -rev session; the client must read "olleh".
tls() {
  local port server_pid args=() ok=1
  port=$(free_port)
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  OPENSSL_CONF=$work/engine.cnf openssl s_server -accept "127.0.0.1:$port" "${args[@]}" -rev >"s_server.$port.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q "127.0.0.1:$port" && break; sleep 0.1; done
  echo hello | gnutls-cli --sni-hostname localhost --verify-hostname localhost -p "$port" "$@" 127.0.0.1 | tee cli.log &&
    grep -q '^olleh' cli.log && ok=0
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  return $ok
}
engine_config engine.cnf
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -out server.pem 2>/dev/null
check "gnutls-cli: TLS 1.3 client certificate with the token RSA key" \
  tls -cert server.pem -key server.key -Verify 1 -verify_return_error -CAfile ca.pem -- \
  --provider "$module" --x509cafile server.pem --x509certfile rsa.pem --x509keyfile "$token;object=gnu-rsa;type=private"
check "gnutls-cli verifies an OpenSSL server whose key is on the token" \
  tls -engine pkcs11 -keyform engine -key "$token;object=gnu-rsa;type=private;pin-value=1234" -cert rsa.pem -- \
  --x509cafile ca.pem
check "p11tool --delete the certificate" bash -c "
  p11tool --provider '$module' --login --batch --delete '$token;object=gnu-rsa;type=cert' &&
  ! p11tool --provider '$module' --list-all-certs '$token' | grep -q 'object=gnu-rsa;type=cert'"
check "p11tool with a wrong PIN fails" bash -c "! GNUTLS_PIN=9999 p11tool --provider '$module' --login --test-sign '$token;object=gnu-ec'"

# GnuTLS 3.7 cannot generate Ed25519 on a token (it asks for CKM_EDDSA instead of
# CKM_EC_EDWARDS_KEY_PAIR_GEN, CKR_MECHANISM_INVALID); it signs with a key pkcs11-tool made. After the
# TLS checks: Debian 12's pkcs11 engine stops listing keys at an Ed25519 key (README.md).
check "certtool --generate-self-signed with a token Ed25519 key" bash -c "
  pkcs11-tool --module '$module' --token-label gnutls --login --pin 1234 --keypairgen --key-type EC:edwards25519 --id 0c --label gnu-ed &&
  certtool --provider '$module' --generate-self-signed --load-privkey '$token;object=gnu-ed;type=private' --template ca.tmpl --outfile ed.pem &&
  openssl verify -CAfile ed.pem ed.pem && openssl x509 -in ed.pem -noout -text | grep -q 'Signature Algorithm: ED25519'"

# --- p11-kit forwarding: the client side loads p11-kit-client.so and finds the server through
# P11_KIT_SERVER_ADDRESS (a Unix socket). p11-kit 0.24's RPC forwards only mechanisms whose parameters
# it knows: ECDSA (raw), RSA PKCS#1 v1.5 with a hash, HMAC, digests; not ECDSA-SHA256, PSS, EdDSA, GCM.
client=$(find /usr/lib -name p11-kit-client.so 2>/dev/null | head -1)
printf 'data forwarded through p11-kit\n' >data
openssl dgst -sha256 -binary data >data.sha256
# forwarded_sign: pkcs11-tool through p11-kit-client.so signs with both keys and verifies locally.
forwarded_sign() {
  local c=(pkcs11-tool --module "$client" --token-label gnutls --login --pin 1234)
  "${c[@]}" -L | grep -q 'token label *: gnutls' &&
    "${c[@]}" --sign --id 0a -m ECDSA -i data.sha256 -o ec.sig &&
    "${c[@]}" --verify --id 0a -m ECDSA -i data.sha256 --signature-file ec.sig &&
    "${c[@]}" --sign --id 0b -m SHA256-RSA-PKCS -i data -o rsa.sig &&
    openssl dgst -sha256 -verify <(openssl x509 -in rsa.pem -pubkey -noout) -signature rsa.sig data
}
# In the foreground (-f) as a child of this script, so that the trap can stop and reap it.
p11-kit server -f --provider "$module" --name "$work/server.sock" "$token" >server.env 2>server.err &
server_pid=$!
on_exit "kill $server_pid; wait $server_pid"
for _ in $(seq 50); do [ -S "$work/server.sock" ] && break; sleep 0.1; done
check "p11-kit server prints the client's environment" grep -q "P11_KIT_SERVER_ADDRESS=unix:path=$work/server.sock" server.env
check "pkcs11-tool through p11-kit-client.so to p11-kit server" \
  env P11_KIT_SERVER_ADDRESS="unix:path=$work/server.sock" bash -c "$(declare -f forwarded_sign); client='$client'; forwarded_sign"

# p11-kit remote speaks the same protocol on stdin/stdout; ssh would carry it to another machine
# (`remote: |ssh host p11-kit remote MODULE` in a .module file); socat carries it here.
if command -v socat >/dev/null; then
  socat "UNIX-LISTEN:$work/remote.sock,fork" EXEC:"p11-kit remote $module" &
  socat_pid=$!
  on_exit "kill $socat_pid; wait $socat_pid"
  for _ in $(seq 50); do [ -S "$work/remote.sock" ] && break; sleep 0.1; done
  check "pkcs11-tool through p11-kit-client.so to p11-kit remote" \
    env P11_KIT_SERVER_ADDRESS="unix:path=$work/remote.sock" bash -c "$(declare -f forwarded_sign); client='$client'; forwarded_sign"
else
  skip "p11-kit remote" "socat not installed"
fi

done_checks
