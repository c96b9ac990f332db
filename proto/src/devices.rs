//! Device certificate provisioning (issue 10): certificate authorities per organisation and
//! environment, enrolment from a PKCS#10 request, the device registry and revocation.
//!
//! Certificates and requests travel as DER in [`Base64Bytes`]; a CSR may also be sent as PEM text.

use serde::{Deserialize, Serialize};

use crate::{Base64Bytes, Environment};

/// What an issued certificate is for: its extended key usage and key usage follow from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateProfile {
    /// TLS client authentication (`clientAuth`), one year.
    #[default]
    Device,
    /// Code signing (`codeSigning`), one year.
    CodeSigning,
}

impl CertificateProfile {
    pub const ALL: [CertificateProfile; 2] = [Self::Device, Self::CodeSigning];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::CodeSigning => "code_signing",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|profile| profile.as_str() == name)
    }
}

/// The two certificate authorities of an organisation's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaKind {
    Root,
    Issuing,
}

impl CaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Issuing => "issuing",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Root, Self::Issuing]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// `POST /v1/cas` (admin): creates the root and issuing CA of the caller's environment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCaRequest {
    /// The service's public base URL (e.g. `https://sign.example.com`), used for the CRL distribution
    /// point named in issued certificates. Defaults to the request's `Host`.
    #[serde(default)]
    pub public_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaInfo {
    pub id: String,
    pub kind: CaKind,
    pub name: String,
    pub environment: Environment,
    /// DER X.509 certificate.
    pub certificate: Base64Bytes,
    /// Where this CA's CRL is served (issuing CAs).
    pub crl_url: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaList {
    pub cas: Vec<CaInfo>,
}

/// `POST /v1/devices/{id}/enroll`: a PKCS#10 request for the device `{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The CSR as PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    #[serde(default)]
    pub csr_pem: Option<String>,
    /// The CSR as DER.
    #[serde(default)]
    pub csr_der: Option<Base64Bytes>,
    #[serde(default)]
    pub profile: CertificateProfile,
    /// Issue a new certificate even though the device has a live one (for another or the same key).
    #[serde(default)]
    pub renew: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    Active,
    /// Replaced by a renewal; still valid until it expires.
    Superseded,
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Superseded => "superseded",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Active, Self::Superseded, Self::Revoked]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// RFC 5280 revocation reasons the service records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    #[default]
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 5] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key_compromise",
            Self::AffiliationChanged => "affiliation_changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation_of_operation",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// Hex serial number.
    pub serial: String,
    pub profile: CertificateProfile,
    pub status: CertificateStatus,
    /// DER X.509 certificate.
    pub certificate: Base64Bytes,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<RevocationReason>,
}

/// The answer to an enrolment: the certificate and its chain (issuing CA, then root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: String,
    pub environment: Environment,
    pub certificate: DeviceCertificate,
    pub chain: Vec<Base64Bytes>,
    /// True when this is the device's existing live certificate (a retry), not a new one.
    pub existing: bool,
}

/// A device in the registry with its certificate history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub environment: Environment,
    pub certificates: Vec<DeviceCertificate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

/// `POST /v1/devices/{id}/revoke` (admin): revokes one certificate, or every unrevoked one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub reason: RevocationReason,
}
