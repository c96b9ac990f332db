//! Certificates and CRLs: `x509-cert` structures (TBS part), encoded by `der`, signed by the CA's
//! [`CaSigner`](super::CaSigner). Nothing here encodes DER by hand.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use const_oid::{AssociatedOid, ObjectIdentifier};
use cryptera_proto::devices::RevocationReason;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, UtcTime};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, CrlReason, ExtendedKeyUsage,
    KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

use super::CaSigner;
use crate::error::{Result, ServiceError};
use crate::signing::sha256;
use crate::util::random_bytes;

const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
const ISSUING_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// A CRL is re-signed on every fetch; relying parties should fetch again within a day.
const CRL_LIFETIME: Duration = Duration::from_secs(86_400);

fn encoding(_: x509_cert::der::Error) -> ServiceError {
    ServiceError::Crypto("certificate encoding")
}

fn signature_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA_256,
        parameters: None,
    }
}

fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

/// A name from an RFC 4514 string of our own making (names are checked `[A-Za-z0-9._ -]`).
pub fn name(rfc4514: &str) -> Result<Name> {
    Name::from_str(rfc4514).map_err(|_| ServiceError::InvalidRequest("unusable name".into()))
}

/// A random positive 127-bit serial number, as the certificate and its lower-case hex.
pub fn new_serial() -> Result<(SerialNumber, String)> {
    let mut bytes = random_bytes::<16>()?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    let serial = SerialNumber::new(&bytes).map_err(encoding)?;
    Ok((serial, crate::util::hex(&bytes)))
}

fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString> {
    // RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the public key bits.
    let digest = sha256(spki.subject_public_key.raw_bytes());
    OctetString::new(&digest[..20]).map_err(encoding)
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after.
fn time(at: SystemTime) -> Result<Time> {
    let general = GeneralizedTime::from_system_time(at).map_err(encoding)?;
    let date = general.to_date_time();
    if date.year() <= UtcTime::MAX_YEAR {
        Ok(Time::UtcTime(
            UtcTime::from_date_time(date).map_err(encoding)?,
        ))
    } else {
        Ok(Time::GeneralTime(general))
    }
}

/// What to certify.
pub struct Subject<'a> {
    pub name: Name,
    pub spki: &'a [u8],
}

/// The certifying CA: its certificate and opened key (`None` issuer means self-signed).
pub struct Issuer<'a> {
    pub certificate: &'a Certificate,
    pub signer: &'a CaSigner,
}

fn sign_tbs(tbs: TbsCertificate, signer: &CaSigner) -> Result<Vec<u8>> {
    let signature = signer.sign(&tbs.to_der().map_err(encoding)?)?;
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signature_algorithm(),
        signature: BitString::from_bytes(&signature).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

/// A self-signed root CA certificate.
pub fn root_certificate(subject: &Subject<'_>, signer: &CaSigner) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(subject.spki).map_err(encoding)?;
    let key_id = key_identifier(&spki)?;
    let extensions = vec![
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        extension(&SubjectKeyIdentifier(key_id), false)?,
    ];
    let now = SystemTime::now();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: new_serial()?.0,
        signature: signature_algorithm(),
        issuer: subject.name.clone(),
        validity: Validity {
            not_before: time(now)?,
            not_after: time(now + ROOT_VALIDITY)?,
        },
        subject: subject.name.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_tbs(tbs, signer)
}

/// An issuing CA certificate (path length 0) under `issuer`.
pub fn issuing_certificate(subject: &Subject<'_>, issuer: &Issuer<'_>) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(subject.spki).map_err(encoding)?;
    let extensions = vec![
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        extension(&SubjectKeyIdentifier(key_identifier(&spki)?), false)?,
        authority_key_id(issuer.certificate)?,
    ];
    let now = SystemTime::now();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: new_serial()?.0,
        signature: signature_algorithm(),
        issuer: issuer.certificate.tbs_certificate.subject.clone(),
        validity: Validity {
            not_before: time(now)?,
            not_after: time(now + ISSUING_VALIDITY)?,
        },
        subject: subject.name.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_tbs(tbs, issuer.signer)
}

fn authority_key_id(issuer: &Certificate) -> Result<Extension> {
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(key_identifier(
                &issuer.tbs_certificate.subject_public_key_info,
            )?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

/// An end-entity certificate as its profile says.
pub struct Leaf<'a> {
    pub subject: Subject<'a>,
    pub serial: SerialNumber,
    pub key_usage: KeyUsage,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// `subjectAltName` entries.
    pub san: Vec<GeneralName>,
    pub crl_url: String,
    pub not_before: SystemTime,
    pub validity: Duration,
}

pub fn leaf_certificate(leaf: &Leaf<'_>, issuer: &Issuer<'_>) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(leaf.subject.spki).map_err(encoding)?;
    let uri = |text: &str| {
        Ia5String::new(text)
            .map(GeneralName::UniformResourceIdentifier)
            .map_err(|_| ServiceError::InvalidRequest("URL must be ASCII".into()))
    };
    let extensions = vec![
        extension(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        extension(&leaf.key_usage, true)?,
        extension(&ExtendedKeyUsage(leaf.extended_key_usage.clone()), false)?,
        extension(&SubjectAltName(leaf.san.clone()), false)?,
        extension(&SubjectKeyIdentifier(key_identifier(&spki)?), false)?,
        authority_key_id(issuer.certificate)?,
        extension(
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    uri(&leaf.crl_url)?,
                ])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )?,
    ];
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: leaf.serial.clone(),
        signature: signature_algorithm(),
        issuer: issuer.certificate.tbs_certificate.subject.clone(),
        validity: Validity {
            not_before: time(leaf.not_before)?,
            not_after: time(leaf.not_before + leaf.validity)?,
        },
        subject: leaf.subject.name.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_tbs(tbs, issuer.signer)
}

/// A revoked serial for the CRL.
pub struct Revoked {
    pub serial_hex: String,
    pub revoked_at: i64,
    pub reason: RevocationReason,
}

fn crl_reason(reason: RevocationReason) -> CrlReason {
    match reason {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
    }
}

fn unix(seconds: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// A DER CRL over `revoked`, signed now by the issuing CA; `number` must grow between CRLs.
pub fn crl(issuer: &Issuer<'_>, revoked: &[Revoked], number: u64) -> Result<Vec<u8>> {
    let mut entries = Vec::with_capacity(revoked.len());
    for entry in revoked {
        let bytes = unhex(&entry.serial_hex).ok_or(ServiceError::Crypto("stored serial number"))?;
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&bytes).map_err(encoding)?,
            revocation_date: time(unix(entry.revoked_at))?,
            crl_entry_extensions: Some(vec![extension(&crl_reason(entry.reason), false)?]),
        });
    }
    let now = SystemTime::now();
    let number = x509_cert::ext::pkix::crl::CrlNumber(
        x509_cert::der::asn1::Uint::new(&number.to_be_bytes()).map_err(encoding)?,
    );
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signature_algorithm(),
        issuer: issuer.certificate.tbs_certificate.subject.clone(),
        this_update: time(now)?,
        next_update: Some(time(now + CRL_LIFETIME)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(vec![
            authority_key_id(issuer.certificate)?,
            extension(&number, false)?,
        ]),
    };
    let signature = issuer.signer.sign(&tbs.to_der().map_err(encoding)?)?;
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signature_algorithm(),
        signature: BitString::from_bytes(&signature).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}
