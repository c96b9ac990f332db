//! PKCS#10 requests: parsing (PEM or DER), proof of possession (the request's signature verifies
//! under the key it carries, with `aws-lc-rs`), and the key type it carries.

use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
};
use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc8410::ID_ED_25519;
use const_oid::ObjectIdentifier;
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::request::CertReq;

use crate::error::{Result, ServiceError};

/// The key kinds a device certificate may certify (profiles name them on the wire).
pub use cryptera_proto::devices::ProfileKeyType as DeviceKeyType;

/// A request whose signature has been verified.
pub struct CheckedCsr {
    pub key_type: DeviceKeyType,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
}

fn invalid(message: &str) -> ServiceError {
    ServiceError::InvalidRequest(message.to_owned())
}

/// Parses a PEM (`CERTIFICATE REQUEST`) or DER request.
pub fn parse(bytes: &[u8]) -> Result<CertReq> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let text =
            std::str::from_utf8(trimmed).map_err(|_| invalid("the CSR PEM is not UTF-8 text"))?;
        return CertReq::from_pem(text.trim_end()).map_err(|err| {
            ServiceError::InvalidRequest(format!(
                "the CSR is not a PEM `CERTIFICATE REQUEST`: {err}"
            ))
        });
    }
    CertReq::from_der(bytes).map_err(|err| {
        ServiceError::InvalidRequest(format!("the CSR is not a DER PKCS#10 request: {err}"))
    })
}

fn key_type(csr: &CertReq) -> Result<DeviceKeyType> {
    let algorithm = &csr.info.public_key.algorithm;
    match algorithm.oid {
        RSA_ENCRYPTION => Ok(DeviceKeyType::Rsa),
        ID_ED_25519 => Ok(DeviceKeyType::Ed25519),
        ID_EC_PUBLIC_KEY => {
            let curve: Option<ObjectIdentifier> = algorithm
                .parameters
                .as_ref()
                .and_then(|any| any.decode_as().ok());
            match curve {
                Some(SECP_256_R_1) => Ok(DeviceKeyType::EcdsaP256),
                Some(SECP_384_R_1) => Ok(DeviceKeyType::EcdsaP384),
                _ => Err(invalid(
                    "the CSR's EC key is on an unsupported curve (P-256 or P-384)",
                )),
            }
        }
        _ => Err(invalid(
            "the CSR's key type is not supported (RSA, P-256, P-384 or Ed25519)",
        )),
    }
}

fn verification(
    key: DeviceKeyType,
    signature: ObjectIdentifier,
) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (key, signature) {
        (DeviceKeyType::Rsa, SHA_256_WITH_RSA_ENCRYPTION) => &RSA_PKCS1_2048_8192_SHA256,
        (DeviceKeyType::Rsa, SHA_384_WITH_RSA_ENCRYPTION) => &RSA_PKCS1_2048_8192_SHA384,
        (DeviceKeyType::Rsa, SHA_512_WITH_RSA_ENCRYPTION) => &RSA_PKCS1_2048_8192_SHA512,
        (DeviceKeyType::EcdsaP256, ECDSA_WITH_SHA_256) => &ECDSA_P256_SHA256_ASN1,
        (DeviceKeyType::EcdsaP384, ECDSA_WITH_SHA_384) => &ECDSA_P384_SHA384_ASN1,
        (DeviceKeyType::Ed25519, ID_ED_25519) => &ED25519,
        _ => return None,
    })
}

/// Proof of possession: the request is signed by the private key of the public key it carries.
pub fn check(bytes: &[u8]) -> Result<CheckedCsr> {
    let csr = parse(bytes)?;
    let key_type = key_type(&csr)?;
    let algorithm = verification(key_type, csr.algorithm.oid).ok_or_else(|| {
        invalid("the CSR's signature algorithm does not fit its key (RSA PKCS#1 v1.5 with SHA-2, ECDSA with the curve's hash, or Ed25519)")
    })?;
    let spki = csr
        .info
        .public_key
        .to_der()
        .map_err(|_| invalid("the CSR's public key cannot be encoded"))?;
    let info = csr
        .info
        .to_der()
        .map_err(|_| invalid("the CSR cannot be encoded"))?;
    let signature = csr
        .signature
        .as_bytes()
        .ok_or_else(|| invalid("the CSR's signature is not whole bytes"))?;
    ParsedPublicKey::new(algorithm, &spki)
        .map_err(|_| {
            invalid("the CSR's public key is malformed or too small (RSA needs 2048 bits)")
        })?
        .verify_sig(&info, signature)
        .map_err(|_| {
            invalid("the CSR's signature does not verify: no proof of possession of its key")
        })?;
    Ok(CheckedCsr {
        key_type,
        spki,
        common_name: common_name(&csr),
    })
}

fn common_name(csr: &CertReq) -> Option<String> {
    csr.info
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            x509_cert::der::asn1::Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    x509_cert::der::asn1::PrintableStringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .ok()
        })
}
