//! DER encodings the module reads and writes: PKCS#8/PKCS#1 RSA keys, DigestInfo, EC parameters and
//! points, SubjectPublicKeyInfo and the fields of X.509 certificates. All through RustCrypto's `der`
//! family; nothing here does cryptography.

use super::asym::{Curve, PublicKey, RsaParts};
use super::HashAlg;
use crate::error::{Error, Result};
use der::asn1::{
    AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, PrintableStringRef, UintRef,
};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
pub const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
pub const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

fn invalid<E>(_: E) -> Error {
    Error::AttributeValueInvalid
}

fn encode_failed<E>(_: E) -> Error {
    Error::General("DER encoding failed".into())
}

#[derive(der::Sequence)]
struct DigestInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    digest: OctetStringRef<'a>,
}

/// Splits a DigestInfo into its hash function and digest (`CKM_RSA_PKCS` signing input).
pub fn parse_digest_info(input: &[u8]) -> Result<(HashAlg, &[u8])> {
    let info = DigestInfo::from_der(input).map_err(|_| Error::DataInvalid)?;
    let hash = match info.algorithm.oid {
        OID_SHA1 => HashAlg::Sha1,
        OID_SHA224 => HashAlg::Sha224,
        OID_SHA256 => HashAlg::Sha256,
        OID_SHA384 => HashAlg::Sha384,
        OID_SHA512 => HashAlg::Sha512,
        _ => return Err(Error::DataInvalid),
    };
    let digest = info.digest.as_bytes();
    if digest.len() != hash.output_len() {
        return Err(Error::DataInvalid);
    }
    Ok((hash, digest))
}

/// The DigestInfo for `digest` made with `hash`.
pub fn digest_info(hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>> {
    let oid = match hash {
        HashAlg::Sha1 => OID_SHA1,
        HashAlg::Sha224 => OID_SHA224,
        HashAlg::Sha256 => OID_SHA256,
        HashAlg::Sha384 => OID_SHA384,
        HashAlg::Sha512 => OID_SHA512,
    };
    let info = DigestInfo {
        algorithm: AlgorithmIdentifierRef {
            oid,
            parameters: Some(AnyRef::NULL),
        },
        digest: OctetStringRef::new(digest).map_err(encode_failed)?,
    };
    info.to_der().map_err(encode_failed)
}

/// A PKCS#8 `PrivateKeyInfo` for an RSA key given as components.
fn uint(bytes: &[u8]) -> Result<UintRef<'_>> {
    UintRef::new(bytes).map_err(invalid)
}

pub fn rsa_private_pkcs8(parts: &RsaParts) -> Result<Zeroizing<Vec<u8>>> {
    let key = pkcs1::RsaPrivateKey {
        modulus: uint(&parts.modulus)?,
        public_exponent: uint(&parts.public_exponent)?,
        private_exponent: uint(&parts.private_exponent)?,
        prime1: uint(&parts.prime_1)?,
        prime2: uint(&parts.prime_2)?,
        exponent1: uint(&parts.exponent_1)?,
        exponent2: uint(&parts.exponent_2)?,
        coefficient: uint(&parts.coefficient)?,
        other_prime_infos: None,
    };
    let pkcs1_der = Zeroizing::new(key.to_der().map_err(invalid)?);
    let info = pkcs8::PrivateKeyInfo {
        algorithm: AlgorithmIdentifierRef {
            oid: OID_RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        private_key: &pkcs1_der,
        public_key: None,
    };
    Ok(Zeroizing::new(info.to_der().map_err(encode_failed)?))
}

/// The components of an RSA key held as PKCS#8.
pub fn rsa_parts_from_pkcs8(pkcs8_der: &[u8]) -> Result<RsaParts> {
    let info = pkcs8::PrivateKeyInfo::from_der(pkcs8_der).map_err(invalid)?;
    let key = pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(invalid)?;
    let secret = |u: UintRef<'_>| Zeroizing::new(u.as_bytes().to_vec());
    Ok(RsaParts {
        modulus: key.modulus.as_bytes().to_vec(),
        public_exponent: key.public_exponent.as_bytes().to_vec(),
        private_exponent: secret(key.private_exponent),
        prime_1: secret(key.prime1),
        prime_2: secret(key.prime2),
        exponent_1: secret(key.exponent1),
        exponent_2: secret(key.exponent2),
        coefficient: secret(key.coefficient),
    })
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
pub fn rsa_pkcs1_from_pkcs8(pkcs8_der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let info = pkcs8::PrivateKeyInfo::from_der(pkcs8_der).map_err(invalid)?;
    Ok(Zeroizing::new(info.private_key.to_vec()))
}

/// The PKCS#1 `RSAPublicKey` of an RSA public key.
pub fn rsa_public_pkcs1(key: &PublicKey) -> Result<Vec<u8>> {
    let PublicKey::Rsa {
        modulus,
        public_exponent,
    } = key
    else {
        return Err(Error::KeyTypeInconsistent);
    };
    let public = pkcs1::RsaPublicKey {
        modulus: UintRef::new(modulus).map_err(invalid)?,
        public_exponent: UintRef::new(public_exponent).map_err(invalid)?,
    };
    public.to_der().map_err(invalid)
}

/// The curve named by `CKA_EC_PARAMS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcParams {
    Weierstrass(Curve),
    Ed25519,
}

/// Parses `CKA_EC_PARAMS`: a named-curve OID, or the printable-string form ("prime256v1", "edwards25519"...).
pub fn parse_ec_params(bytes: &[u8]) -> Result<EcParams> {
    if let Ok(oid) = ObjectIdentifier::from_der(bytes) {
        return match oid {
            OID_P256 => Ok(EcParams::Weierstrass(Curve::P256)),
            OID_P384 => Ok(EcParams::Weierstrass(Curve::P384)),
            OID_P521 => Ok(EcParams::Weierstrass(Curve::P521)),
            OID_ED25519 => Ok(EcParams::Ed25519),
            _ => Err(Error::CurveNotSupported),
        };
    }
    if let Ok(name) = PrintableStringRef::from_der(bytes) {
        return match name.as_str() {
            "prime256v1" | "secp256r1" | "P-256" => Ok(EcParams::Weierstrass(Curve::P256)),
            "secp384r1" | "P-384" => Ok(EcParams::Weierstrass(Curve::P384)),
            "secp521r1" | "P-521" => Ok(EcParams::Weierstrass(Curve::P521)),
            "edwards25519" | "Ed25519" => Ok(EcParams::Ed25519),
            _ => Err(Error::CurveNotSupported),
        };
    }
    Err(Error::AttributeValueInvalid)
}

/// The named-curve OID encoding of `params`, what the module stores in `CKA_EC_PARAMS` when it
/// generates a key.
pub fn encode_ec_params(params: EcParams) -> Vec<u8> {
    let oid = match params {
        EcParams::Weierstrass(Curve::P256) => OID_P256,
        EcParams::Weierstrass(Curve::P384) => OID_P384,
        EcParams::Weierstrass(Curve::P521) => OID_P521,
        EcParams::Ed25519 => OID_ED25519,
    };
    oid.to_der().unwrap_or_default()
}

/// `CKA_EC_POINT`: the point wrapped in a DER OCTET STRING.
pub fn encode_ec_point(point: &[u8]) -> Result<Vec<u8>> {
    OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(encode_failed)
}

/// Reads `CKA_EC_POINT` (or an ECDH peer point): a DER OCTET STRING, or the raw point as some
/// clients pass it.
pub fn parse_ec_point(bytes: &[u8], raw_len: usize) -> Vec<u8> {
    if bytes.len() != raw_len {
        if let Ok(octets) = OctetStringRef::from_der(bytes) {
            return octets.as_bytes().to_vec();
        }
    }
    bytes.to_vec()
}

/// The DER `SubjectPublicKeyInfo` of a public key (`CKA_PUBLIC_KEY_INFO`).
pub fn public_key_info(key: &PublicKey) -> Result<Vec<u8>> {
    let (algorithm, bits) = match key {
        PublicKey::Rsa { .. } => (
            AlgorithmIdentifierRef {
                oid: OID_RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL),
            },
            rsa_public_pkcs1(key)?,
        ),
        PublicKey::Ec { curve, point } => {
            let oid = match curve {
                Curve::P256 => &OID_P256,
                Curve::P384 => &OID_P384,
                Curve::P521 => &OID_P521,
            };
            (
                AlgorithmIdentifierRef {
                    oid: OID_EC_PUBLIC_KEY,
                    parameters: Some(AnyRef::from(oid)),
                },
                point.clone(),
            )
        }
        PublicKey::Ed25519 { point } => (
            AlgorithmIdentifierRef {
                oid: OID_ED25519,
                parameters: None,
            },
            point.clone(),
        ),
    };
    let info = spki::SubjectPublicKeyInfoRef {
        algorithm,
        subject_public_key: BitStringRef::from_bytes(&bits).map_err(encode_failed)?,
    };
    info.to_der().map_err(encode_failed)
}

/// The fields of an X.509 certificate that PKCS#11 attributes mirror.
pub struct CertificateFields {
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial_number: Vec<u8>,
    pub public_key_info: Vec<u8>,
}

pub fn certificate_fields(der_bytes: &[u8]) -> Result<CertificateFields> {
    let cert = x509_cert::Certificate::from_der(der_bytes).map_err(invalid)?;
    let tbs = &cert.tbs_certificate;
    Ok(CertificateFields {
        subject: tbs.subject.to_der().map_err(invalid)?,
        issuer: tbs.issuer.to_der().map_err(invalid)?,
        serial_number: tbs.serial_number.to_der().map_err(invalid)?,
        public_key_info: tbs.subject_public_key_info.to_der().map_err(invalid)?,
    })
}
