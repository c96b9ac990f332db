//! Device certificate provisioning (issue 10): certificate authorities per organisation and
//! environment, enrolment from a PKCS#10 request, the device registry and revocation.
//!
//! Certificates and requests travel as DER in [`Base64Bytes`]; a CSR may also be sent as PEM text.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{Base64Bytes, Environment};

/// The name of a certificate profile: what an issued certificate is for (key usage, extended key
/// usage, validity, subject and SAN). `device` and `code_signing` are built in; an organisation may
/// define its own profiles per environment (`PUT /v1/profiles/{name}`), which replace a built-in one
/// of the same name. On the wire it is the name as a JSON string: 1 to 64 characters of letters,
/// digits, '.', '_' or '-'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertificateProfile(Cow<'static, str>);

#[allow(non_upper_case_globals)]
impl CertificateProfile {
    /// TLS client authentication (`clientAuth`), one year (built in).
    pub const DEVICE: CertificateProfile = CertificateProfile(Cow::Borrowed("device"));
    /// Code signing (`codeSigning`), one year (built in).
    pub const CODE_SIGNING: CertificateProfile = CertificateProfile(Cow::Borrowed("code_signing"));
    /// The names the profiles had when they were an enum, kept so existing callers still compile.
    pub const Device: CertificateProfile = Self::DEVICE;
    pub const CodeSigning: CertificateProfile = Self::CODE_SIGNING;
    /// The built-in profiles.
    pub const BUILT_IN: [CertificateProfile; 2] = [Self::DEVICE, Self::CODE_SIGNING];

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A profile name, if `name` is a valid one (it need not exist).
    pub fn parse(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| Self(Cow::Owned(name.to_owned())))
    }

    pub fn is_built_in(&self) -> bool {
        Self::BUILT_IN.contains(self)
    }
}

impl Default for CertificateProfile {
    fn default() -> Self {
        Self::DEVICE
    }
}

impl std::fmt::Display for CertificateProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CertificateProfile {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name).ok_or_else(|| {
            format!("profile name {name:?}: 1 to 64 characters of letters, digits, '.', '_' or '-'")
        })
    }
}

impl From<CertificateProfile> for String {
    fn from(profile: CertificateProfile) -> String {
        profile.0.into_owned()
    }
}

/// A key type a profile may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKeyType {
    /// RSA, 2048 bits or more.
    Rsa,
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl ProfileKeyType {
    pub const ALL: [ProfileKeyType; 4] =
        [Self::Rsa, Self::EcdsaP256, Self::EcdsaP384, Self::Ed25519];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::EcdsaP256 => "ecdsa_p256",
            Self::EcdsaP384 => "ecdsa_p384",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// Key usage bits a profile may set (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsageBit {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    KeyAgreement,
}

/// Extended key usages a profile may name (RFC 5280 §4.2.1.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedKeyUsage {
    ClientAuth,
    ServerAuth,
    CodeSigning,
    EmailProtection,
}

/// Shortest and longest validity a profile may give, in days.
pub const PROFILE_VALIDITY_DAYS: std::ops::RangeInclusive<u32> = 1..=825;

/// What a profile issues. Templates may use only the placeholders `{device_id}`, `{org}` and
/// `{environment}`. `subject` is an RFC 4514 name (`CN={device_id},O={org}`); each SAN is
/// `dns:<name>`, `uri:<uri>` or `email:<address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDefinition {
    /// Key types a CSR may carry (at least one).
    pub key_types: Vec<ProfileKeyType>,
    /// Validity of issued certificates, 1 to 825 days.
    pub validity_days: u32,
    /// Key usage bits (at least one).
    pub key_usage: Vec<KeyUsageBit>,
    /// Extended key usages (at least one).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Subject template.
    pub subject: String,
    /// Subject alternative name templates (at least one).
    pub san: Vec<String>,
}

/// A profile as `GET /v1/profiles[/{name}]` shows it: the organisation's own, or a built-in default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: CertificateProfile,
    pub environment: Environment,
    /// True for the built-in default (the organisation has not defined a profile of this name).
    pub built_in: bool,
    pub definition: ProfileDefinition,
    /// When the organisation's profile was last written (absent for built-in ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileInfo>,
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

/// What a CA signing record records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaSigningKind {
    /// The issuing CA signed a certificate.
    Issue,
    /// A certificate was revoked (every CRL signed afterwards lists it).
    Revoke,
}

impl CaSigningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Revoke => "revoke",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Issue, Self::Revoke]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// How the requester of an issuance or revocation authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An access token or user session (`Authorization: Bearer`).
    Bearer,
    /// The device's current certificate, presented as the TLS client certificate (EST re-enrolment).
    ClientCertificate,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::ClientCertificate => "client_certificate",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Bearer, Self::ClientCertificate]
            .into_iter()
            .find(|method| method.as_str() == name)
    }
}

/// A CA signing record (`GET /v1/cas/signing-records`): a certificate the issuing CA signed, or a
/// revocation. Written in the same transaction as the certificate change and its audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaSigningRecord {
    pub id: String,
    pub kind: CaSigningKind,
    /// The issuing CA (its key made the signature).
    pub ca_id: String,
    pub environment: Environment,
    pub device_id: String,
    /// Hex serial number of the certificate issued or revoked.
    pub serial: String,
    pub profile: CertificateProfile,
    /// Pseudonymous id of the requester (user or token id, or `device:<id>` for a device certificate).
    pub actor: String,
    pub auth: AuthMethod,
    /// The CA's signature mechanism (issuance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<crate::keys::Mechanism>,
    /// SHA-256 of the signed `TBSCertificate` (issuance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Base64Bytes>,
    /// The CA's signature over it, as in the certificate (issuance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Base64Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RevocationReason>,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaSigningRecordList {
    pub records: Vec<CaSigningRecord>,
}
