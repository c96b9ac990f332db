//! Independent checks outside the module: keys and certificates made by the `openssl` command, its
//! verdict on the module's signatures, and a small DER reader to pick those structures apart.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `openssl` with `args`; panics with its error output if it fails.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command is needed for the cross-checks");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Writes `data` to a new scratch file and returns its path.
pub fn scratch_file(stem: &str, data: &[u8]) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = super::scratch(&format!(
        "{stem}-{}.bin",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::File::create(&path).expect("create scratch file");
    file.write_all(data).expect("write scratch file");
    path.display().to_string()
}

/// Whether `openssl pkeyutl -verify` accepts `signature` over `input` with the DER public key `spki`.
/// `options` are `-pkeyopt` values (digest, padding, salt length); `raw_input` is for EdDSA.
pub fn openssl_verifies(
    spki: &[u8],
    options: &[&str],
    raw_input: bool,
    input: &[u8],
    signature: &[u8],
) -> bool {
    let key = scratch_file("pub", spki);
    let data = scratch_file("data", input);
    let sig = scratch_file("sig", signature);
    let mut args: Vec<&str> = vec![
        "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", &key, "-in", &data,
        "-sigfile", &sig,
    ];
    if raw_input {
        args.push("-rawin");
    }
    for option in options {
        args.push("-pkeyopt");
        args.push(option);
    }
    let status = Command::new("openssl")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    status.success()
}

/// Encrypts `plain` to the DER public key `spki` with `openssl pkeyutl -encrypt`.
pub fn openssl_encrypt(spki: &[u8], options: &[&str], plain: &[u8]) -> Vec<u8> {
    let key = scratch_file("pub", spki);
    let data = scratch_file("plain", plain);
    let mut args: Vec<&str> = vec![
        "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", &key, "-in", &data,
    ];
    for option in options {
        args.push("-pkeyopt");
        args.push(option);
    }
    openssl(&args)
}

/// One DER element: its tag, its content and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub whole: &'a [u8],
}

/// Splits the DER element at the start of `input` from what follows it.
pub fn tlv(input: &[u8]) -> (Tlv<'_>, &[u8]) {
    let tag = input[0];
    let (len, header) = match input[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let count = (n & 0x7f) as usize;
            let len = input[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + count)
        }
    };
    let end = header + len;
    (
        Tlv {
            tag,
            content: &input[header..end],
            whole: &input[..end],
        },
        &input[end..],
    )
}

/// The elements inside a constructed DER element's content.
pub fn children(mut content: &[u8]) -> Vec<Tlv<'_>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (element, rest) = tlv(content);
        out.push(element);
        content = rest;
    }
    out
}

/// An INTEGER's magnitude without the sign-padding zero.
pub fn unsigned(integer: &[u8]) -> Vec<u8> {
    let start = integer
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(integer.len());
    integer[start..].to_vec()
}

fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let mut value = unsigned(magnitude);
    if value.is_empty() || value[0] & 0x80 != 0 {
        value.insert(0, 0);
    }
    der(0x02, &value)
}

/// Encodes a DER element (short or long length form).
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// PKCS#11's raw ECDSA signature (r || s) as the DER `ECDSA-Sig-Value` OpenSSL expects.
pub fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    der(0x30, &body)
}

/// An RSA key made by OpenSSL, as components.
pub struct RsaKey {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub private_exponent: Vec<u8>,
    pub prime_1: Vec<u8>,
    pub prime_2: Vec<u8>,
    pub exponent_1: Vec<u8>,
    pub exponent_2: Vec<u8>,
    pub coefficient: Vec<u8>,
    pub spki: Vec<u8>,
}

fn openssl_key(args: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let pem = scratch_file("key", b"");
    let mut full = vec!["genpkey"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-out", &pem]);
    openssl(&full);
    // genpkey's DER output is the traditional form for some key types; ask for PKCS#8 explicitly.
    let pkcs8 = openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", &pem, "-outform", "DER",
    ]);
    let spki = openssl(&["pkey", "-in", &pem, "-pubout", "-outform", "DER"]);
    (pkcs8, spki)
}

/// The private key inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_private_key(pkcs8: &[u8]) -> Vec<u8> {
    let (info, _) = tlv(pkcs8);
    children(info.content)[2].content.to_vec()
}

pub fn rsa_key(bits: u32) -> RsaKey {
    let bits = format!("rsa_keygen_bits:{bits}");
    let (pkcs8, spki) = openssl_key(&["-algorithm", "RSA", "-pkeyopt", &bits]);
    let private = pkcs8_private_key(&pkcs8);
    let (sequence, _) = tlv(&private);
    let fields: Vec<Vec<u8>> = children(sequence.content)
        .iter()
        .map(|f| unsigned(f.content))
        .collect();
    RsaKey {
        modulus: fields[1].clone(),
        public_exponent: fields[2].clone(),
        private_exponent: fields[3].clone(),
        prime_1: fields[4].clone(),
        prime_2: fields[5].clone(),
        exponent_1: fields[6].clone(),
        exponent_2: fields[7].clone(),
        coefficient: fields[8].clone(),
        spki,
    }
}

/// An EC or Ed25519 key made by OpenSSL: private scalar (or seed), public point, SPKI.
pub struct CurveKey {
    pub private: Vec<u8>,
    pub point: Vec<u8>,
    pub spki: Vec<u8>,
}

/// The BIT STRING payload of a `SubjectPublicKeyInfo`.
pub fn spki_key_bits(spki: &[u8]) -> Vec<u8> {
    let (info, _) = tlv(spki);
    children(info.content)[1].content[1..].to_vec()
}

/// `curve` is an OpenSSL curve name such as "P-256".
pub fn ec_key(curve: &str) -> CurveKey {
    let curve = format!("ec_paramgen_curve:{curve}");
    let (pkcs8, spki) = openssl_key(&[
        "-algorithm",
        "EC",
        "-pkeyopt",
        &curve,
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ]);
    let private = pkcs8_private_key(&pkcs8);
    let (ec_private_key, _) = tlv(&private);
    CurveKey {
        private: children(ec_private_key.content)[1].content.to_vec(),
        point: spki_key_bits(&spki),
        spki,
    }
}

pub fn ed25519_key() -> CurveKey {
    let (pkcs8, spki) = openssl_key(&["-algorithm", "ED25519"]);
    let private = pkcs8_private_key(&pkcs8);
    let (seed, _) = tlv(&private);
    CurveKey {
        private: seed.content.to_vec(),
        point: spki_key_bits(&spki),
        spki,
    }
}

/// A self-signed X.509 certificate made by OpenSSL and the fields PKCS#11 mirrors.
pub struct Certificate {
    pub der: Vec<u8>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial_number: Vec<u8>,
    pub spki: Vec<u8>,
}

pub fn self_signed_certificate(common_name: &str) -> Certificate {
    let key = super::scratch(&format!("cert-key-{common_name}.pem"))
        .display()
        .to_string();
    let subject = format!("/CN={common_name}/O=Cryptera tests");
    let der_bytes = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &subject,
        "-days",
        "2",
        "-outform",
        "DER",
    ]);
    let (cert, _) = tlv(&der_bytes);
    let tbs = children(children(cert.content)[0].content);
    // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, spki, ...
    let fields: Vec<Tlv> = if tbs[0].tag == 0xa0 {
        tbs[1..].to_vec()
    } else {
        tbs.clone()
    };
    Certificate {
        serial_number: fields[0].whole.to_vec(),
        issuer: fields[2].whole.to_vec(),
        subject: fields[4].whole.to_vec(),
        spki: fields[5].whole.to_vec(),
        der: der_bytes.clone(),
    }
}
