#!/usr/bin/env bash
# Real clients on the remote token (slot 10, keys in the Cryptera service on 127.0.0.1), unchanged from
# how they use a local token (docs/CLIENTS.md): pkcs11-tool --test; OpenSSL's pkcs11 engine makes a CSR
# and a self-signed certificate; a CA certifies the key and pkcs11-tool --write-object attaches the
# certificate and the CA to the service key; osslsigncode signs a PE and it verifies with the chain;
# keytool and jarsigner (SunPKCS11) sign a JAR; the service's signing record names the program, the
# host, the CI job and the artifact; with token_env, objects show before login and an empty PIN logs in.
source "$(dirname "$0")/lib.sh"
source "$root/pkcs11-tests/scripts/service-lib.sh"
cd "$work"
cli=${CLI:-$root/target/release/cryptera-pkcs11}
engine=$(find /usr/lib -path '*engines-3/pkcs11.so' 2>/dev/null | head -1)
printf 'firmware image' >data

check "service with keys" service_setup release-rsa:rsa2048 release-ec:ecdsa_p256
check "service started" service_start
remote_config
rsa_id=$(key_id release-rsa)
ec_id=$(key_id release-ec)
rsa_key=$(service_key release-rsa)

# pkcs11-tool's RSA-PKCS test signs a SHA-1 DigestInfo: the service signs SHA-2 digests only, so that one
# is refused (CKR_DATA_INVALID) and is the only error allowed.
check "pkcs11-tool --test on the remote slot (all but SHA-1 pass)" bash -c "
  pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --test >test.out 2>&1; cat test.out
  grep -q 'all 4 digest functions seem to work' test.out && grep -q '^1 errors' test.out &&
  [ \$(grep -c 'ERR:' test.out) -eq 1 ] && grep -q 'RSA-PKCS: *ERR: C_Sign() returned CKR_DATA_INVALID' test.out"

# The access token as the engine's PIN: libp11 takes at most 32 characters in a URI's pin-value.
engine_config engine.cnf "$token"
engine_config engine-nopin.cnf
uri() { echo "pkcs11:token=acme%20remote;object=$1;type=private"; }
check "OpenSSL engine: CSR signed by the remote key" bash -c "
  OPENSSL_CONF=$work/engine.cnf openssl req -new -engine pkcs11 -keyform engine -key '$(uri release-rsa)' \
    -subj '/O=Acme (development)/CN=Cryptera remote release-rsa' -out rsa.csr && openssl req -in rsa.csr -verify -noout"
check "OpenSSL engine: self-signed certificate (EC) verifies" bash -c "
  OPENSSL_CONF=$work/engine.cnf openssl req -new -x509 -days 2 -engine pkcs11 -keyform engine -key '$(uri release-ec)' \
    -subj '/CN=Cryptera remote release-ec' -out ec-self.pem && openssl verify -CAfile ec-self.pem ec-self.pem"
check "OpenSSL engine: dgst -sign verifies with the public key" bash -c "
  OPENSSL_CONF=$work/engine.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine -sign '$(uri release-ec)' -out ec.sig data &&
  pkcs11-tool --module '$module' --slot 10 --login --pin '$token' --read-object --type pubkey --id $ec_id -o ec.pub.der &&
  openssl pkey -pubin -inform DER -in ec.pub.der -out ec.pub && openssl dgst -sha256 -verify ec.pub -signature ec.sig data"
# A CA (a file key) certifies the remote RSA key; the certificate and the CA go to the service.
check "CA certificate" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
  -subj "/CN=Cryptera Test Code Signing CA" -days 30 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >codesign.ext
attach() {
  openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -set_serial 0x0101 -days 30 -extfile codesign.ext -out rsa.pem &&
    openssl x509 -in rsa.pem -outform DER -out rsa.der && openssl x509 -in ca.pem -outform DER -out ca.der &&
    ruser --write-object rsa.der --type cert --id "$rsa_id" --label release-rsa &&
    ruser --write-object ca.der --type cert --label "code signing CA" &&
    api "/v1/keys/$rsa_key" -H "authorization: Bearer $token" |
    python3 -c 'import json,sys; k=json.load(sys.stdin); assert len(k["certificates"]) == 2, k["certificates"]'
}
check "pkcs11-tool --write-object: the certificate and its CA are attached to the service key" attach
check "the chain shows as certificate objects, the leaf with the key's CKA_ID" bash -c "
  pkcs11-tool --module '$module' --slot 10 --login --pin '$token' -O --type cert | tee certs.txt &&
  [ \$(grep -c '^Certificate Object' certs.txt) -eq 2 ] && grep -A5 'Certificate Object' certs.txt | grep -q 'ID: *$rsa_id'"
other_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -subj /CN=stranger -days 2 -outform DER -out o.der 2>/dev/null &&
    ruser --write-object o.der --type cert --label stranger 2>&1 | tee o.out; grep -q CKR_TEMPLATE_INCONSISTENT o.out
}
noenv() {
  OPENSSL_CONF=$work/engine.cnf openssl req -new -engine pkcs11 -keyform engine -key "$(uri release-rsa)" \
    -subj '/CN=no environment' -out noenv.csr &&
    openssl x509 -req -in noenv.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 2 -outform DER -out noenv.der &&
    ruser --write-object noenv.der --type cert --id "$rsa_id" 2>&1 | tee o.out
  grep -q CKR_ATTRIBUTE_VALUE_INVALID o.out && grep -q 'must name the environment' o.out
}
check "a development certificate not naming its environment: refused with the service's reason" noenv
check "a certificate of no service key is refused (CKR_TEMPLATE_INCONSISTENT)" other_cert

check "build a PE32+ executable" make_pe
osslsign() {
  GITHUB_RUN_ID=4242 GITHUB_REPOSITORY=acme/firmware CRYPTERA_ARTIFACT_NAME=tiny.exe \
    osslsigncode sign -pkcs11engine "$engine" -pkcs11module "$module" \
    -pkcs11cert "pkcs11:token=acme%20remote;object=release-rsa;type=cert" -ac ca.pem \
    -key "$(uri release-rsa)" -pass "$token" -h sha256 -n "Cryptera remote test" -in tiny.exe -out tiny-signed.exe
}
check "osslsigncode signs a PE with the remote key and its certificate" osslsign
check "osslsigncode verify passes with the chain" bash -c "
  osslsigncode verify -CAfile ca.pem -in tiny-signed.exe | tee v.out; grep -q 'Signature verification: ok' v.out"
context() {
  api "/v1/signing-requests?status=completed" -H "authorization: Bearer $token" | python3 -c '
import json, sys
requests = [r for r in json.load(sys.stdin)["requests"] if r["artifact"].get("name") == "tiny.exe"]
assert len(requests) == 1, requests
client = requests[0]["artifact"]["client"]
print(client)
assert client["program"].endswith("osslsigncode"), client
assert client["ci"] == {"GITHUB_REPOSITORY": "acme/firmware", "GITHUB_RUN_ID": "4242"}, client
assert client["host"] and client["os_user"] and client["pid"] > 0, client'
}
check "the service's signing record names the program, host, user, CI job and artifact" context

# Java: SunPKCS11 on slot 10, the access token as the keystore password.
printf 'name = CrypteraRemote\nlibrary = %s\nslot = 10\n' "$module" >java.cfg
java_token=(-keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$work/java.cfg" -storepass "$token")
check "keytool -list shows the remote key with its certificate" bash -c "
  keytool -list ${java_token[*]} | tee list.txt && grep -q '^release-rsa, PrivateKeyEntry' list.txt"
mkdir -p jar/app && printf 'hello from a signed jar\n' >jar/app/hello.txt
check "jarsigner signs a JAR with the remote key" bash -c "jar cf app.jar -C jar app/hello.txt &&
  cat rsa.pem ca.pem >chain.pem && jarsigner ${java_token[*]} -certchain chain.pem app.jar release-rsa"
check "jarsigner -verify -strict with the CA" bash -c "
  keytool -importcert -noprompt -alias ca -file ca.pem -keystore trust.p12 -storetype PKCS12 -storepass changeit &&
  jarsigner -verify -strict -keystore trust.p12 -storepass changeit app.jar | tee v.txt && grep -q 'jar verified' v.txt"

# p11-kit server forwards the remote slot; pkcs11-tool signs through p11-kit-client.so (p11-kit 0.24
# forwards raw ECDSA and RSA PKCS#1 with a hash, see docs/CLIENTS.md).
p11kit_remote() {
  local client
  client=$(find /usr/lib -name p11-kit-client.so 2>/dev/null | head -1)
  [ -n "$client" ] || { echo "p11-kit-client.so not installed"; return 1; }
  p11-kit server -f --provider "$module" --name "$work/p11kit.sock" "pkcs11:token=acme%20remote" >p11kit.env 2>p11kit.err &
  local server=$!
  for _ in $(seq 50); do [ -S "$work/p11kit.sock" ] && break; sleep 0.1; done
  openssl dgst -sha256 -binary data >data.sha256
  local c=(pkcs11-tool --module "$client" --token-label "acme remote" --login --pin "$token")
  P11_KIT_SERVER_ADDRESS="unix:path=$work/p11kit.sock" "${c[@]}" --sign --id "$ec_id" -m ECDSA -i data.sha256 -o fwd-ec.sig &&
    P11_KIT_SERVER_ADDRESS="unix:path=$work/p11kit.sock" "${c[@]}" --sign --id "$rsa_id" -m SHA256-RSA-PKCS -i data -o fwd-rsa.sig
  local rv=$?
  kill "$server"; wait "$server" 2>/dev/null
  [ $rv -eq 0 ] &&
    ruser --verify --id "$ec_id" -m ECDSA -i data.sha256 --signature-file fwd-ec.sig | grep -q 'Signature is valid' &&
    openssl dgst -sha256 -verify <(openssl x509 -in rsa.pem -pubkey -noout) -signature fwd-rsa.sig data
}
check "p11-kit server forwards the remote slot: signatures through p11-kit-client.so verify" p11kit_remote

# fork(): the child initialises the module again and signs through a fresh HTTP client of its own,
# while the parent's keeps working.
forked() {
  /usr/bin/python3 - "$module" "$token" <<'PY'
import os, sys
import PyKCS11
module, token = sys.argv[1:3]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
def sign_once(label):
    session = lib.openSession(10)
    try:
        session.login(token)
    except PyKCS11.PyKCS11Error as e:
        if "ALREADY_LOGGED_IN" not in str(e):
            raise
    key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, "release-ec")])[0]
    return bytes(session.sign(key, label.encode(), PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256)))
sign_once("parent before fork")
pid = os.fork()
if pid == 0:
    try:
        # The inherited state is unusable in the child until it initialises the module again.
        lib.lib.C_Initialize()
        ok = len(sign_once("child")) == 64
    except Exception as e:
        print("child:", e)
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, "the child could not sign"
assert len(sign_once("parent after fork")) == 64
print("parent and child signed")
PY
}
check "after fork(), the child signs through its own client and the parent still does" forked

# token_env: objects before login, and login with an empty PIN (CKF_PROTECTED_AUTHENTICATION_PATH).
remote_config 'token_env = "CRYPTERA_TEST_TOKEN"'
check "token_env: public keys and certificates are found before login, private keys are not" bash -c "
  CRYPTERA_TEST_TOKEN='$token' pkcs11-tool --module '$module' --slot 10 -O | tee before.txt &&
  [ \$(grep -c '^Public Key Object' before.txt) -eq 2 ] && grep -q '^Certificate Object' before.txt &&
  ! grep -q '^Private Key Object' before.txt"
check "token_env: the slot says PIN pad (protected authentication path)" bash -c "
  pkcs11-tool --module '$module' -L | grep -A8 '(0xa)' | grep -qi 'PIN pad'"
check "token_env: signing with an empty PIN" bash -c "
  CRYPTERA_TEST_TOKEN='$token' pkcs11-tool --module '$module' --slot 10 --login --sign --id $ec_id -m ECDSA-SHA256 -i data -o env.sig &&
  CRYPTERA_TEST_TOKEN='$token' pkcs11-tool --module '$module' --slot 10 --login --verify --id $ec_id -m ECDSA-SHA256 -i data --signature-file env.sig | grep -q 'Signature is valid'"
check "token_env: OpenSSL engine signs without a pin-value" bash -c "
  CRYPTERA_TEST_TOKEN='$token' OPENSSL_CONF=$work/engine-nopin.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine \
    -sign 'pkcs11:token=acme%20remote;object=release-ec;type=private' -out env2.sig data &&
  openssl dgst -sha256 -verify ec.pub -signature env2.sig data"
check "token_env: ssh-keygen -D lists the remote keys (no PIN typed)" bash -c "
  CRYPTERA_TEST_TOKEN='$token' ssh-keygen -D '$module' | tee ssh.keys &&
  grep -q '^ssh-rsa ' ssh.keys && grep -q '^ecdsa-sha2-nistp256 ' ssh.keys"
check "token_env: GnuTLS p11tool lists the remote private keys and test-signs" bash -c "
  export CRYPTERA_TEST_TOKEN='$token' GNUTLS_PIN='$token'
  p11tool --provider '$module' --login --list-privkeys 'pkcs11:token=acme%20remote' | tee gnutls.txt &&
  grep -q 'object=release-ec' gnutls.txt && grep -q 'object=release-rsa' gnutls.txt &&
  p11tool --provider '$module' --login --test-sign 'pkcs11:token=acme%20remote;object=release-ec' 2>&1 | tee ts.txt &&
  grep -q 'Verifying against public key in the token... ok' ts.txt"
check "token_env: GnuTLS certtool self-signs a certificate with the remote key" bash -c "
  export CRYPTERA_TEST_TOKEN='$token' GNUTLS_PIN='$token'
  printf 'cn = \"Cryptera remote GnuTLS\"\norganization = \"Acme (development)\"\nexpiration_days = 2\nsigning_key\n' >gnutls.tmpl &&
  certtool --provider '$module' --generate-self-signed --load-privkey 'pkcs11:token=acme%20remote;object=release-ec;type=private' \
    --template gnutls.tmpl --outfile gnutls-self.pem && openssl verify -CAfile gnutls-self.pem gnutls-self.pem"
check "token_env unset: an empty PIN is refused (CKR_PIN_INCORRECT)" bash -c "
  env -u CRYPTERA_TEST_TOKEN pkcs11-tool --module '$module' --slot 10 --login --sign --id $ec_id -m ECDSA-SHA256 -i data -o x.sig 2>&1 |
  grep -q CKR_PIN_INCORRECT"
printf '%s\n' "$token" >token.txt
chmod 644 token.txt
remote_config "token_file = \"$work/token.txt\""
check "token_file readable by others: refused" bash -c "
  ! pkcs11-tool --module '$module' --slot 10 --login --sign --id $ec_id -m ECDSA-SHA256 -i data -o x.sig >/dev/null 2>&1"
check "token_file (mode 0600): signing with an empty PIN" bash -c "chmod 600 token.txt &&
  pkcs11-tool --module '$module' --slot 10 --login --sign --id $ec_id -m ECDSA-SHA256 -i data -o file.sig &&
  openssl dgst -sha256 -verify ec.pub -signature file.sig data 2>/dev/null ||
  pkcs11-tool --module '$module' --slot 10 --login --verify --id $ec_id -m ECDSA-SHA256 -i data --signature-file file.sig | grep -q 'Signature is valid'"
# cryptera-pkcs11 doctor: each check, and a plain-words reason for each failure.
check "doctor: configuration, reachability, the access token's scopes and the keys" bash -c "
  '$cli' doctor | tee doctor.out && grep -q 'ok    remote slot 10 .*reachable' doctor.out &&
  grep -q 'may sign, keygen, read, admin' doctor.out && grep -q 'release-rsa .*rsa2048 .*development .*2 certificate' doctor.out &&
  grep -q 'all checks passed' doctor.out"
check "doctor: a refused access token is named, exit status 1" bash -c "
  remote_config() { :; }; printf 'cryptera_at_tok_0000000000000000_bogus\n' >bad.txt && chmod 600 bad.txt &&
  sed 's#token.txt#bad.txt#' '$work/module.toml' >bad.toml &&
  ! CRYPTERA_PKCS11_CONFIG=bad.toml '$cli' doctor >doctor.out; cat doctor.out; grep -q 'FAIL  remote slot 10 .*access token: the service refused the access token' doctor.out"
check "doctor: an unreachable service is named" bash -c "
  printf '[[remote]]\nslot = 10\nurl = \"http://127.0.0.1:9\"\n' >dead.toml &&
  ! CRYPTERA_PKCS11_CONFIG=dead.toml '$cli' doctor >doctor.out; cat doctor.out; grep -q 'FAIL .*reachable: the Cryptera service at http://127.0.0.1:9 cannot be reached' doctor.out"
check "doctor: a configuration error is named" bash -c "
  printf '[[remote]]\nslot = 10\nurl = \"http://sign.example.com\"\n' >plain.toml &&
  ! CRYPTERA_PKCS11_CONFIG=plain.toml '$cli' doctor >doctor.out; cat doctor.out; grep -q 'use https' doctor.out"
done_checks
