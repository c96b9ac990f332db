//! A device authenticated by its current certificate (EST `simplereenroll`, RFC 7030 §3.3.2).
//!
//! The TLS layer ([`crate::tls`]) asks every client for a certificate without requiring one and checks
//! only the handshake signature (the client holds the certificate's key); the issuing CAs are created
//! at runtime, so which certificates count is decided here, per request, against the store:
//!
//! - the certificate is one this service issued: its serial is in the registry with exactly these DER
//!   bytes, and its signature verifies under the issuing CA's key (`aws-lc-rs`);
//! - it is **active**: not revoked, and not superseded — a device that was already renewed must
//!   present its newest certificate (strict on purpose: a stolen older certificate cannot renew);
//! - it has not expired (nor is it before its validity), and the organisation's trial has not ended.
//!
//! The organisation and environment are those of the certificate's CA, the device id that of the
//! certificate's registry entry.

use std::sync::Arc;

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use cryptera_proto::devices::{CaKind, CertificateProfile, CertificateStatus};
use cryptera_proto::Environment;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use super::issue::device_store;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::OrgRecord;
use crate::util::{hex, now};

/// The certificate chain a TLS client presented (DER, leaf first), as a request extension.
#[derive(Clone, Debug)]
pub struct ClientChain(pub Arc<Vec<Vec<u8>>>);

impl ClientChain {
    pub fn leaf(&self) -> Option<&[u8]> {
        self.0.first().map(Vec::as_slice)
    }
}

/// The device a valid client certificate authenticates.
#[derive(Clone, Debug)]
pub struct DeviceCaller {
    pub org: OrgRecord,
    pub environment: Environment,
    pub device_id: String,
    /// Serial of the presented certificate.
    pub serial: String,
    pub profile: CertificateProfile,
}

fn refused(why: &str) -> ServiceError {
    ServiceError::ClientCertificate(why.to_owned())
}

/// Checks the presented leaf certificate against the registry; see the module comment.
pub fn authenticate(state: &AppState, leaf: &[u8]) -> Result<DeviceCaller> {
    let parsed = Certificate::from_der(leaf).map_err(|_| refused("not an X.509 certificate"))?;
    let serial = hex(parsed.tbs_certificate.serial_number.as_bytes());
    let store = device_store(state)?;
    let unknown = || refused("not a device certificate issued by this service");
    let record = store.certificate(&serial)?.ok_or_else(unknown)?;
    if record.certificate != leaf {
        return Err(unknown());
    }
    let ca = store
        .ca_by_id(&record.ca_id)?
        .filter(|ca| {
            ca.kind == CaKind::Issuing
                && ca.org_id == record.org_id
                && ca.environment == record.environment
        })
        .ok_or_else(unknown)?;
    let ca_cert = Certificate::from_der(&ca.certificate)
        .map_err(|_| ServiceError::Crypto("CA certificate"))?;
    let ca_spki = ca_cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| ServiceError::Crypto("CA certificate"))?;
    let tbs = parsed
        .tbs_certificate
        .to_der()
        .map_err(|_| refused("the certificate cannot be re-encoded"))?;
    let signature_ok = parsed.signature_algorithm.oid == ECDSA_WITH_SHA_256
        && parsed.tbs_certificate.issuer == ca_cert.tbs_certificate.subject
        && parsed.signature.as_bytes().is_some_and(|signature| {
            ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &ca_spki)
                .ok()
                .is_some_and(|key| key.verify_sig(&tbs, signature).is_ok())
        });
    if !signature_ok {
        return Err(unknown());
    }
    let at = now();
    match record.status {
        CertificateStatus::Revoked => return Err(refused("the certificate has been revoked")),
        CertificateStatus::Superseded => return Err(refused(
            "the certificate was superseded by a renewal: present the device's newest certificate",
        )),
        CertificateStatus::Active => {}
    }
    if record.not_after <= at {
        return Err(refused("the certificate has expired"));
    }
    if record.not_before > at {
        return Err(refused("the certificate is not valid yet"));
    }
    let org = state.store().org_by_id(&ca.org_id)?.ok_or_else(unknown)?;
    if org.trial_expires_at.is_some_and(|end| end <= at) {
        return Err(ServiceError::TokenExpired);
    }
    Ok(DeviceCaller {
        org,
        environment: ca.environment,
        device_id: record.device_id,
        serial,
        profile: record.profile,
    })
}
