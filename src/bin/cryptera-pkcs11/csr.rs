//! The PKCS#10 request of `cryptera-pkcs11 enroll`: the subject (`CN=<device id>`), the key's
//! SubjectPublicKeyInfo built from the token's public key attributes, and the signature made by the
//! token (`C_Sign`), assembled as `x509-cert` structures and encoded by `der`.

use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, SHA_256_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc8410::ID_ED_25519;
use cryptera_pkcs11::crypto::asym::{Curve, PublicKey};
use cryptera_pkcs11::crypto::der::{parse_ec_params, parse_ec_point, public_key_info, EcParams};
use der::asn1::{Any, BitString, SetOfVec, UintRef, Utf8StringRef};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, Version};

/// How the token signs the request: which PKCS#11 mechanism, and what the signature is called in
/// the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `CKM_SHA256_RSA_PKCS`, sha256WithRSAEncryption.
    RsaSha256,
    /// `CKM_ECDSA_SHA256` / `_SHA384` / `_SHA512` by curve; the token's `r || s` becomes an
    /// Ecdsa-Sig-Value.
    Ecdsa(Curve),
    /// `CKM_EDDSA`, Ed25519.
    Ed25519,
}

impl Scheme {
    fn algorithm(self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match self {
            Scheme::RsaSha256 => (SHA_256_WITH_RSA_ENCRYPTION, Some(Any::null())),
            Scheme::Ecdsa(Curve::P256) => (ECDSA_WITH_SHA_256, None),
            Scheme::Ecdsa(Curve::P384) => (ECDSA_WITH_SHA_384, None),
            Scheme::Ecdsa(Curve::P521) => (ECDSA_WITH_SHA_512, None),
            Scheme::Ed25519 => (ID_ED_25519, None),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }
}

/// The public key attributes read from the token.
pub enum KeyAttributes {
    Rsa {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
    },
    /// `CKA_EC_PARAMS` and `CKA_EC_POINT` (EC and Edwards keys).
    Ec { params: Vec<u8>, point: Vec<u8> },
    /// `CKA_PUBLIC_KEY_INFO` when the token has no public key object with the key's `CKA_ID`.
    Spki(Vec<u8>),
}

/// The key's SubjectPublicKeyInfo and how to sign with it.
pub struct PublicKeyInfo {
    pub spki: SubjectPublicKeyInfoOwned,
    pub scheme: Scheme,
}

pub fn public_key(attributes: &KeyAttributes) -> Result<PublicKeyInfo, String> {
    let key = match attributes {
        KeyAttributes::Rsa {
            modulus,
            public_exponent,
        } => PublicKey::Rsa {
            modulus: modulus.clone(),
            public_exponent: public_exponent.clone(),
        },
        KeyAttributes::Ec { params, point } => match parse_ec_params(params) {
            Ok(EcParams::Weierstrass(curve)) => PublicKey::Ec {
                curve,
                point: parse_ec_point(point, 1 + 2 * curve.field_len()),
            },
            Ok(EcParams::Ed25519) => PublicKey::Ed25519 {
                point: parse_ec_point(point, 32),
            },
            Err(_) => return Err("the key's curve is not one this command can enrol".into()),
        },
        KeyAttributes::Spki(der) => {
            let spki = SubjectPublicKeyInfoOwned::from_der(der)
                .map_err(|e| format!("the key's CKA_PUBLIC_KEY_INFO does not parse: {e}"))?;
            let scheme = scheme_of(&spki)?;
            return Ok(PublicKeyInfo { spki, scheme });
        }
    };
    let scheme = match &key {
        PublicKey::Rsa { .. } => Scheme::RsaSha256,
        PublicKey::Ec { curve, .. } => Scheme::Ecdsa(*curve),
        PublicKey::Ed25519 { .. } => Scheme::Ed25519,
    };
    let der = public_key_info(&key).map_err(|e| format!("the key's public key: {e}"))?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&der)
        .map_err(|e| format!("the key's public key: {e}"))?;
    Ok(PublicKeyInfo { spki, scheme })
}

fn scheme_of(spki: &SubjectPublicKeyInfoOwned) -> Result<Scheme, String> {
    use const_oid::db::rfc5912::SECP_521_R_1;
    use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
    match spki.algorithm.oid {
        RSA_ENCRYPTION => Ok(Scheme::RsaSha256),
        ID_ED_25519 => Ok(Scheme::Ed25519),
        ID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|any| any.decode_as::<const_oid::ObjectIdentifier>().ok());
            match curve {
                Some(SECP_256_R_1) => Ok(Scheme::Ecdsa(Curve::P256)),
                Some(SECP_384_R_1) => Ok(Scheme::Ecdsa(Curve::P384)),
                Some(SECP_521_R_1) => Ok(Scheme::Ecdsa(Curve::P521)),
                _ => Err("the key's curve is not one this command can enrol".into()),
            }
        }
        other => Err(format!(
            "the key's algorithm {other} is not one this command can enrol"
        )),
    }
}

/// `CN=<device id>`, as a UTF8String.
fn subject(device_id: &str) -> Result<Name, String> {
    let value = Utf8StringRef::new(device_id)
        .and_then(|s| Any::encode_from(&s))
        .map_err(|e| format!("the device id as a name: {e}"))?;
    let rdn = SetOfVec::try_from(vec![AttributeTypeAndValue { oid: CN, value }])
        .map_err(|e| format!("the device id as a name: {e}"))?;
    Ok(RdnSequence(vec![RelativeDistinguishedName(rdn)]))
}

/// The CertificationRequestInfo to be signed, and its DER.
pub fn request_info(
    device_id: &str,
    key: &PublicKeyInfo,
) -> Result<(CertReqInfo, Vec<u8>), String> {
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject(device_id)?,
        public_key: key.spki.clone(),
        attributes: SetOfVec::new(),
    };
    let der = info
        .to_der()
        .map_err(|e| format!("encoding the request: {e}"))?;
    Ok((info, der))
}

/// ECDSA-Sig-Value (RFC 3279): the DER form of an ECDSA signature.
#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// The request's signature as X.509 carries it: PKCS#11 gives ECDSA signatures as `r || s`.
fn signature_value(scheme: Scheme, raw: &[u8]) -> Result<Vec<u8>, String> {
    let Scheme::Ecdsa(curve) = scheme else {
        return Ok(raw.to_vec());
    };
    let half = curve.field_len();
    if raw.len() != 2 * half {
        return Err(format!(
            "the token's ECDSA signature is {} bytes, not {}",
            raw.len(),
            2 * half
        ));
    }
    let (r, s) = raw.split_at(half);
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| format!("ECDSA signature: {e}"))?,
        s: UintRef::new(s).map_err(|e| format!("ECDSA signature: {e}"))?,
    };
    value.to_der().map_err(|e| format!("ECDSA signature: {e}"))
}

/// The signed request, DER.
pub fn assemble(
    info: CertReqInfo,
    scheme: Scheme,
    raw_signature: &[u8],
) -> Result<Vec<u8>, String> {
    let signature = signature_value(scheme, raw_signature)?;
    let request = CertReq {
        info,
        algorithm: scheme.algorithm(),
        signature: BitString::from_bytes(&signature).map_err(|e| format!("signature: {e}"))?,
    };
    request
        .to_der()
        .map_err(|e| format!("encoding the request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signature_becomes_a_der_sequence_of_two_integers() {
        let mut raw = vec![0x80; 32];
        raw.extend([0x01; 32]);
        let der = signature_value(Scheme::Ecdsa(Curve::P256), &raw).expect("encodes");
        let parsed = EcdsaSigValue::from_der(&der).expect("parses");
        assert_eq!(parsed.r.as_bytes(), &[0x80; 32]);
        assert_eq!(parsed.s.as_bytes(), &[0x01; 32]);
        assert!(signature_value(Scheme::Ecdsa(Curve::P256), &raw[..63]).is_err());
    }

    #[test]
    fn subject_is_the_device_id() {
        let name = subject("line1, unit+7").expect("name");
        assert_eq!(name.to_string(), "CN=line1\\, unit\\+7");
    }
}
