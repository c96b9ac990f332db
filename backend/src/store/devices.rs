//! Storage of device certificate provisioning (issue 10): the certificate authorities of each
//! organisation's environment and every certificate issued to a device.
//!
//! Changes to one device run inside one transaction that first reads the device's certificates, so the
//! "one live certificate per device unless renewing" rule is decided on a locked, current view and a
//! retrying factory line can never slip a second certificate in between.

use cryptera_proto::devices::{
    CaKind, CaSigningRecord, CertificateProfile, CertificateStatus, ProfileDefinition,
    RevocationReason,
};
use cryptera_proto::keys::KeyAlgorithm;
use cryptera_proto::Environment;

use crate::audit::AuditEvent;
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct CaRecord {
    pub id: String,
    pub org_id: String,
    pub environment: Environment,
    pub kind: CaKind,
    pub name: String,
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 private key sealed under the KEK (AAD: CA id, organisation, environment).
    pub sealed_private_key: Vec<u8>,
    /// DER certificate.
    pub certificate: Vec<u8>,
    pub crl_url: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertRecord {
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub org_id: String,
    pub environment: Environment,
    pub device_id: String,
    pub ca_id: String,
    pub profile: CertificateProfile,
    /// DER SubjectPublicKeyInfo of the device key.
    pub public_key: Vec<u8>,
    pub certificate: Vec<u8>,
    pub status: CertificateStatus,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<RevocationReason>,
}

impl DeviceCertRecord {
    /// Active and not expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == CertificateStatus::Active && self.not_after > now
    }
}

/// What one device transaction writes: a new certificate, changed ones (status, revocation), the CA
/// signing records and the audit events, all committed together.
#[derive(Debug, Default)]
pub struct DeviceChange {
    pub insert: Option<DeviceCertRecord>,
    pub updates: Vec<DeviceCertRecord>,
    /// Stored under the transaction's organisation.
    pub records: Vec<CaSigningRecord>,
    pub audit: Vec<AuditEvent>,
}

/// A certificate profile an organisation defined for one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub org_id: String,
    pub environment: Environment,
    pub name: CertificateProfile,
    pub definition: ProfileDefinition,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which CA signing records to list.
#[derive(Clone, Debug, Default)]
pub struct CaRecordFilter {
    pub device_id: Option<String>,
    pub serial: Option<String>,
    pub limit: u32,
}

/// Called inside the transaction with the device's certificates, newest first.
pub type DeviceUpdate<'a> = dyn FnMut(&[DeviceCertRecord]) -> Result<DeviceChange> + 'a;

pub trait DeviceStore: Send + Sync {
    /// Stores an environment's root and issuing CA; `AlreadyExists` if the environment has them.
    fn create_cas(&self, root: &CaRecord, issuing: &CaRecord, audit: &AuditEvent) -> Result<()>;
    /// The CAs of an organisation's environment (root first).
    fn cas(&self, org_id: &str, environment: Environment) -> Result<Vec<CaRecord>>;
    fn ca_by_id(&self, id: &str) -> Result<Option<CaRecord>>;
    /// Reads the device's certificates and writes what `update` decides, in one transaction. If
    /// `update` fails nothing is written.
    fn update_device(
        &self,
        org_id: &str,
        environment: Environment,
        device_id: &str,
        update: &mut DeviceUpdate<'_>,
    ) -> Result<()>;
    /// A device's certificates, newest first.
    fn device_certificates(
        &self,
        org_id: &str,
        environment: Environment,
        device_id: &str,
    ) -> Result<Vec<DeviceCertRecord>>;
    /// Certificates of devices whose id contains `query` (every device for ""), by device id and
    /// newest first, for at most `limit` devices.
    fn search_devices(
        &self,
        org_id: &str,
        environment: Environment,
        query: &str,
        limit: u32,
    ) -> Result<Vec<DeviceCertRecord>>;
    /// The revoked certificates an issuing CA has signed.
    fn revoked_certificates(&self, ca_id: &str) -> Result<Vec<DeviceCertRecord>>;
    /// The certificate with this (lower-case hex) serial, whoever it belongs to.
    fn certificate(&self, serial: &str) -> Result<Option<DeviceCertRecord>>;
    /// The organisation's own profiles of an environment, by name.
    fn profiles(&self, org_id: &str, environment: Environment) -> Result<Vec<ProfileRecord>>;
    /// Creates or replaces a profile (keeping its `created_at`), with its audit record.
    fn put_profile(&self, profile: &ProfileRecord, audit: &AuditEvent) -> Result<()>;
    /// Deletes a profile with its audit record; `NotFound` if the organisation has none of that name.
    fn delete_profile(
        &self,
        org_id: &str,
        environment: Environment,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<()>;
    /// CA signing records of an environment, newest first.
    fn ca_signing_records(
        &self,
        org_id: &str,
        environment: Environment,
        filter: &CaRecordFilter,
    ) -> Result<Vec<CaSigningRecord>>;
}
