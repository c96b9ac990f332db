//! The module's DER readers on arbitrary bytes: `CKA_EC_PARAMS`, `CKA_EC_POINT` (and ECDH peers),
//! X.509 certificates (the fields `C_CreateObject` mirrors, the SubjectPublicKeyInfo among them),
//! PKCS#8/PKCS#1 RSA keys, DigestInfo, and the key constructors and engine calls they feed. The first
//! byte picks the reader, the rest is its input. Where a reader accepts, what it returns is encoded
//! again and must read back the same.

use cryptera_pkcs11::crypto::asym::{
    Curve, PrivateKey, PublicKey, RsaCipher, RsaParts, SignScheme,
};
use cryptera_pkcs11::crypto::der;
use cryptera_pkcs11::crypto::HashAlg;
use zeroize::Zeroizing;

const CURVES: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];
const HASHES: [HashAlg; 5] = [
    HashAlg::Sha1,
    HashAlg::Sha224,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

/// Splits `input` into `N` parts: its first `N - 1` pairs of bytes are little-endian lengths of the
/// first parts, the last part is what remains.
fn parts<const N: usize>(input: &[u8]) -> [&[u8]; N] {
    let head = (2 * (N - 1)).min(input.len());
    let (lens, mut rest) = input.split_at(head);
    let mut out = [&[][..]; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let take = if i + 1 == N {
            rest.len()
        } else {
            let want = match (lens.get(2 * i), lens.get(2 * i + 1)) {
                (Some(lo), Some(hi)) => usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => 0,
            };
            want.min(rest.len())
        };
        let (part, tail) = rest.split_at(take);
        *slot = part;
        rest = tail;
    }
    out
}

/// One input: what the fuzz target of the same name runs, and what the corpus replay test runs.
pub fn run(data: &[u8]) {
    let Some((selector, input)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => {
            if let Ok(params) = der::parse_ec_params(input) {
                let encoded = der::encode_ec_params(params);
                assert_eq!(der::parse_ec_params(&encoded).ok(), Some(params));
            }
        }
        1 => {
            for raw_len in [32, 65, 97, 133, input.len()] {
                let point = der::parse_ec_point(input, raw_len);
                assert!(point.len() <= input.len());
            }
            if let Ok(encoded) = der::encode_ec_point(input) {
                assert_eq!(der::parse_ec_point(&encoded, input.len() + 1), input);
            }
        }
        2 => {
            if let Ok(fields) = der::certificate_fields(input) {
                // What C_CreateObject stores must be DER of its own: the SPKI parses as one.
                use der_crate::Decode;
                assert!(spki::SubjectPublicKeyInfoRef::from_der(&fields.public_key_info).is_ok());
                assert!(!fields.subject.is_empty() && !fields.issuer.is_empty());
            }
        }
        3 => {
            if let Ok(parts) = der::rsa_parts_from_pkcs8(input) {
                let again = der::rsa_private_pkcs8(&parts);
                if let Ok(again) = again {
                    let back = der::rsa_parts_from_pkcs8(&again).expect("re-encoded PKCS#8 reads");
                    assert_eq!(back.modulus, parts.modulus);
                }
            }
            let _ = der::rsa_pkcs1_from_pkcs8(input);
        }
        4 => {
            if let Ok((hash, digest)) = der::parse_digest_info(input) {
                assert_eq!(digest.len(), hash.output_len());
                let encoded = der::digest_info(hash, digest).expect("encode a DigestInfo");
                let (hash_again, digest_again) =
                    der::parse_digest_info(&encoded).expect("re-encoded DigestInfo reads");
                assert_eq!((hash_again, digest_again), (hash, digest));
            }
        }
        5 => {
            // RSA private keys from components, as a stored or imported object gives them.
            let [n, e, d, p, q, dp, dq, qi] = parts::<8>(input);
            let components = RsaParts {
                modulus: n.to_vec(),
                public_exponent: e.to_vec(),
                private_exponent: Zeroizing::new(d.to_vec()),
                prime_1: Zeroizing::new(p.to_vec()),
                prime_2: Zeroizing::new(q.to_vec()),
                exponent_1: Zeroizing::new(dp.to_vec()),
                exponent_2: Zeroizing::new(dq.to_vec()),
                coefficient: Zeroizing::new(qi.to_vec()),
            };
            let _ = PrivateKey::rsa_from_parts(&components);
        }
        6 => {
            let Some((which, scalar)) = input.split_first() else {
                return;
            };
            let curve = CURVES[usize::from(*which) % CURVES.len()];
            if let Ok(key) = PrivateKey::ec_from_scalar(curve, scalar) {
                let public = key.public_key();
                der::public_key_info(&public).expect("SPKI of a valid key");
            }
            let _ = PrivateKey::ed25519_from_seed(scalar);
        }
        7 => {
            // Public keys as objects carry them: SPKI encoding, RSA public keys for the engine.
            let [a, b, message, signature] = parts::<4>(input);
            let keys = [
                PublicKey::Rsa {
                    modulus: a.to_vec(),
                    public_exponent: b.to_vec(),
                },
                PublicKey::Ec {
                    curve: CURVES[a.len() % 3],
                    point: b.to_vec(),
                },
                PublicKey::Ed25519 { point: a.to_vec() },
            ];
            for key in &keys {
                let _ = der::public_key_info(key);
                let _ = key.validate();
                let _ = der::rsa_public_pkcs1(key);
                for scheme in [
                    SignScheme::RsaPkcs1DigestInfo,
                    SignScheme::RsaPkcs1(HashAlg::Sha256),
                    SignScheme::RsaPss {
                        hash: HashAlg::Sha256,
                        mgf: HashAlg::Sha1,
                        salt_len: message.len() % 70,
                    },
                    SignScheme::Ecdsa,
                    SignScheme::Ed25519,
                ] {
                    let _ = key.verify(scheme, message, signature);
                }
                let _ = key.encrypt(RsaCipher::Pkcs1, None, message);
                let _ = key.encrypt(RsaCipher::Oaep(HashAlg::Sha256), Some(signature), message);
            }
        }
        8 => {
            // The engine's RSA calls on an arbitrary PKCS#1 public key and signature.
            let [key, signature, digest] = parts::<3>(input);
            let _ = cryptera_pkcs11::abi::engine::rsa_pkcs1_recover(key, signature);
            let hash = HASHES[signature.len() % HASHES.len()];
            let _ = cryptera_pkcs11::abi::engine::rsa_pss_verify(
                key,
                hash,
                hash,
                digest.len() % 80,
                digest,
                signature,
            );
        }
        _ => {
            // The engine's RSA signing calls on an arbitrary PKCS#1 private key.
            let [key, input] = parts::<2>(input);
            let _ = cryptera_pkcs11::abi::engine::rsa_pkcs1_sign_raw(key, input);
            let hash = HASHES[input.len() % HASHES.len()];
            let digest = hash.hash(input);
            let _ = cryptera_pkcs11::abi::engine::rsa_pss_sign(
                key,
                hash,
                hash,
                input.len() % 80,
                &digest,
            );
        }
    }
}
