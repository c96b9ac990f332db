#!/usr/bin/env bash
# Code signing with token keys, as docs/CLIENTS.md describes it: a CA (a file key) certifies an RSA and
# an ECDSA key generated on a fresh token; the certificates go onto the token with their key's CKA_ID.
# osslsigncode signs a PE (linked here by GNU ld), a CAB (gcab) and an MSI (wixl) through OpenSSL's
# pkcs11 engine and verifies them against the CA; jarsigner signs a JAR through SunPKCS11, keytool lists
# the token's entries, and jarsigner -verify -strict accepts the JAR against a truststore of the CA.
source "$(dirname "$0")/lib.sh"
cd "$work"
engine=$(find /usr/lib -path '*engines-3/pkcs11.so' 2>/dev/null | head -1)
user() { tool --token-label codesign --login --pin 1234 "$@"; }

check "token for code signing" new_token codesign
check "keygen RSA-3072 (id 01)" user --keypairgen --key-type rsa:3072 --id 01 --label rsa-signer
check "keygen EC P-256 (id 02)" user --keypairgen --key-type EC:prime256v1 --id 02 --label ec-signer

# The CA: a key in a file, standing for the organisation's code-signing CA.
check "CA certificate" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -subj "/CN=Cryptera Test Code Signing CA" -days 3650 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
engine_config engine.cnf
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >codesign.ext
# certify LABEL ID: CSR signed by the token key, certificate from the CA, imported next to the key.
certify() {
  OPENSSL_CONF=$work/engine.cnf openssl req -new -engine pkcs11 -keyform engine \
    -key "pkcs11:token=codesign;object=$1;type=private;pin-value=1234" -subj "/CN=Cryptera test $1" -out "$1.csr" &&
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$2$2" -days 3650 \
      -extfile codesign.ext -out "$1.pem" &&
    openssl x509 -in "$1.pem" -outform DER -out "$1.der" &&
    user --write-object "$1.der" --type cert --id "$2" --label "$1" &&
    cat "$1.pem" ca.pem >"$1-chain.pem"
}
check "code-signing certificate on token (RSA)" certify rsa-signer 01
check "code-signing certificate on token (EC)" certify ec-signer 02

# --- osslsigncode: PE, CAB, MSI ---
check "build a PE32+ executable" make_pe
# osslsign LABEL IN OUT: the recipe of docs/CLIENTS.md.
osslsign() {
  osslsigncode sign -pkcs11engine "$engine" -pkcs11module "$module" \
    -certs "$1-chain.pem" -key "pkcs11:token=codesign;object=$1;type=private;pin-value=1234" \
    -h sha256 -n "Cryptera test" -in "$2" -out "$3"
}
verify() { osslsigncode verify -CAfile ca.pem -in "$1" | tee "$1.verify" && grep -q 'Signature verification: ok' "$1.verify"; }
for label in rsa-signer ec-signer; do
  check "osslsigncode sign PE ($label)" osslsign "$label" tiny.exe "tiny-$label.exe"
  check "osslsigncode verify PE with chain ($label)" verify "tiny-$label.exe"
done
check "osslsigncode sign PE with the token's certificate (-pkcs11cert)" \
  osslsigncode sign -pkcs11engine "$engine" -pkcs11module "$module" \
  -pkcs11cert "pkcs11:token=codesign;object=ec-signer;type=cert" -ac ca.pem \
  -key "pkcs11:token=codesign;object=ec-signer;type=private;pin-value=1234" -h sha256 -in tiny.exe -out tiny-tokencert.exe
check "osslsigncode verify PE (token certificate)" verify tiny-tokencert.exe
tamper() { cp tiny-ec-signer.exe bad.exe && printf '\001' | dd of=bad.exe bs=1 seek=1030 conv=notrunc 2>/dev/null && ! verify bad.exe; }
check "osslsigncode verify rejects a modified PE" tamper
check "osslsigncode verify rejects an unknown CA" bash -c "
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -subj /CN=other -out other.pem 2>/dev/null &&
  ! osslsigncode verify -CAfile other.pem -in tiny-rsa-signer.exe"

printf 'hello from a signed cabinet\n' >hello.txt
if command -v gcab >/dev/null; then
  check "build a CAB (gcab)" gcab -c -n hello.cab hello.txt
  check "osslsigncode sign CAB (rsa-signer)" osslsign rsa-signer hello.cab hello-signed.cab
  check "osslsigncode verify CAB" verify hello-signed.cab
else
  skip "CAB signing" "gcab not installed"
fi
if command -v wixl >/dev/null; then
  cat >hello.wxs <<'WXS'
<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="0c6b6c3e-5d1a-4f43-9a55-3c1f1e0a0001" Name="Hello" Language="1033" Version="1.0.0"
           Manufacturer="Cryptera test" UpgradeCode="0c6b6c3e-5d1a-4f43-9a55-3c1f1e0a0002">
    <Package InstallerVersion="200" Compressed="yes" />
    <Media Id="1" Cabinet="hello.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder">
        <Directory Id="INSTALLDIR" Name="Hello">
          <Component Id="Main" Guid="0c6b6c3e-5d1a-4f43-9a55-3c1f1e0a0003"><File Id="hello" Source="hello.txt" /></Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="All" Level="1"><ComponentRef Id="Main" /></Feature>
  </Product>
</Wix>
WXS
  check "build an MSI (wixl)" wixl -o hello.msi hello.wxs
  check "osslsigncode sign MSI (ec-signer)" osslsign ec-signer hello.msi hello-signed.msi
  check "osslsigncode verify MSI" verify hello-signed.msi
else
  skip "MSI signing" "wixl not installed"
fi

# --- Java: SunPKCS11, keytool, jarsigner ---
printf 'name = Cryptera\nlibrary = %s\nslotListIndex = 0\n' "$module" >pkcs11-java.cfg
java_token=(-keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11
  -providerArg "$work/pkcs11-java.cfg" -storepass 1234)
check "keytool -list shows both keys with their certificates" bash -c "
  keytool -list ${java_token[*]} | tee list.txt &&
  grep -q '^rsa-signer, PrivateKeyEntry' list.txt && grep -q '^ec-signer, PrivateKeyEntry' list.txt"
check "keytool -list -v shows the token's certificate" bash -c "
  keytool -list -v ${java_token[*]} -alias ec-signer | grep -q 'Owner: CN=Cryptera test ec-signer'"
mkdir -p jar/app && printf 'hello from a signed jar\n' >jar/app/hello.txt
check "build a JAR" jar cf app.jar -C jar app/hello.txt
check "keytool truststore of the CA" \
  keytool -importcert -noprompt -alias ca -file ca.pem -keystore trust.p12 -storetype PKCS12 -storepass changeit
for label in rsa-signer ec-signer; do
  cp app.jar "app-$label.jar"
  check "jarsigner sign JAR ($label)" jarsigner "${java_token[@]}" -certchain "$label-chain.pem" "app-$label.jar" "$label"
  check "jarsigner -verify -strict with the CA ($label)" bash -c "
    jarsigner -verify -strict -verbose -certs -keystore trust.p12 -storepass changeit 'app-$label.jar' | tee v.txt &&
    grep -q 'jar verified' v.txt && grep -q 'Signed by \"CN=Cryptera test $label\"' v.txt"
done
cp app.jar app-pss.jar
check "jarsigner -sigalg RSASSA-PSS (rsa-signer)" jarsigner "${java_token[@]}" -sigalg RSASSA-PSS -certchain rsa-signer-chain.pem app-pss.jar rsa-signer
check "jarsigner -verify -strict RSASSA-PSS" bash -c "
  jarsigner -verify -strict -verbose -keystore trust.p12 -storepass changeit app-pss.jar | tee v.txt &&
  grep -q 'jar verified' v.txt && grep -q 'Signature algorithm: RSASSA-PSS' v.txt"
# Java generating on the token: a P-384 key pair and its self-signed certificate, both token objects.
check "keytool -genkeypair on the token (EC P-384)" \
  keytool -genkeypair "${java_token[@]}" -alias java-ec384 -keyalg EC -groupname secp384r1 -dname CN=java-ec384 -validity 30
# SunPKCS11 names the private key and the certificate by CKA_ID = the alias, and labels the certificate.
java_id=$(printf java-ec384 | od -An -tx1 | tr -d ' \n')
check "the Java private key and certificate are token objects" bash -c "
  pkcs11-tool --module '$module' --token-label codesign --login --pin 1234 -O | tee objects.txt &&
  grep -A2 '^Private Key Object; EC' objects.txt | grep -q 'ID: *$java_id' &&
  grep -A4 '^Certificate Object' objects.txt | grep -q 'ID: *$java_id'"
cp app.jar app-java.jar
check "jarsigner with the Java-generated key" bash -c "
  jarsigner ${java_token[*]} app-java.jar java-ec384 &&
  jarsigner -verify -verbose app-java.jar | tee v.txt && grep -q 'Signature algorithm: SHA384withECDSA, 384-bit key' v.txt && grep -q 'jar verified' v.txt"
check "keytool -delete removes the entry from the token" bash -c "
  keytool -delete ${java_token[*]} -alias java-ec384 &&
  ! pkcs11-tool --module '$module' --token-label codesign --login --pin 1234 -O | grep -q 'ID: *$java_id'"
check "jarsigner -verify rejects a modified JAR" bash -c "
  cp app-ec-signer.jar bad.jar && mkdir -p x/app && printf tampered >x/app/hello.txt && jar uf bad.jar -C x app/hello.txt &&
  ! jarsigner -verify -strict -keystore trust.p12 -storepass changeit bad.jar"
check "jarsigner with a wrong PIN fails" bash -c "
  ! jarsigner ${java_token[*]/1234/9999} app.jar ec-signer"

done_checks
