//! Keys: algorithms, signing mechanisms, per-key policy, and key creation and listing.

use serde::{Deserialize, Serialize};

use crate::{Base64Bytes, Environment};

/// Key algorithms the service generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 6] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Ed25519,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::EcdsaP256 => "ecdsa_p256",
            Self::EcdsaP384 => "ecdsa_p384",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// The mechanisms that can be used with a key of this algorithm.
    pub fn mechanisms(self) -> &'static [Mechanism] {
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &[
                Mechanism::RsaPkcs1Sha256,
                Mechanism::RsaPkcs1Sha384,
                Mechanism::RsaPkcs1Sha512,
                Mechanism::RsaPssSha256,
                Mechanism::RsaPssSha384,
                Mechanism::RsaPssSha512,
            ],
            Self::EcdsaP256 => &[Mechanism::EcdsaSha256],
            Self::EcdsaP384 => &[Mechanism::EcdsaSha384],
            Self::Ed25519 => &[Mechanism::Ed25519],
        }
    }
}

/// Signature mechanisms.
///
/// RSA-PSS uses MGF1 with the same hash and a salt as long as the digest. ECDSA signatures are the
/// fixed-length `r || s` form (as PKCS#11 `CKM_ECDSA` returns), not DER. Ed25519 is pure EdDSA: it
/// signs `data`, never a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaSha256,
    EcdsaSha384,
    Ed25519,
}

impl Mechanism {
    pub const ALL: [Mechanism; 9] = [
        Self::RsaPkcs1Sha256,
        Self::RsaPkcs1Sha384,
        Self::RsaPkcs1Sha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::Ed25519,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaPkcs1Sha256 => "rsa_pkcs1_sha256",
            Self::RsaPkcs1Sha384 => "rsa_pkcs1_sha384",
            Self::RsaPkcs1Sha512 => "rsa_pkcs1_sha512",
            Self::RsaPssSha256 => "rsa_pss_sha256",
            Self::RsaPssSha384 => "rsa_pss_sha384",
            Self::RsaPssSha512 => "rsa_pss_sha512",
            Self::EcdsaSha256 => "ecdsa_sha256",
            Self::EcdsaSha384 => "ecdsa_sha384",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mech| mech.as_str() == name)
    }

    /// The digest length in bytes the mechanism expects, or `None` when it signs data (Ed25519).
    pub fn digest_len(self) -> Option<usize> {
        match self {
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 | Self::EcdsaSha256 => Some(32),
            Self::RsaPkcs1Sha384 | Self::RsaPssSha384 | Self::EcdsaSha384 => Some(48),
            Self::RsaPkcs1Sha512 | Self::RsaPssSha512 => Some(64),
            Self::Ed25519 => None,
        }
    }
}

/// A window approval: once approved, up to `max_signatures` signatures within `hours` for the same key
/// and requester need no further approval (a release pipeline is approved once, not per file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalWindow {
    pub max_signatures: u32,
    pub hours: u32,
}

/// Per-key policy. Missing fields take the defaults shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Empty means every mechanism of the key's algorithm.
    #[serde(default)]
    pub allowed_mechanisms: Vec<Mechanism>,
    /// M in "M of N": approvals needed before a signature is made (0 = none). The requester never counts.
    #[serde(default)]
    pub approvals_required: u32,
    /// Usernames that may approve (N). Empty means every user with the `approver` role.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Seconds a pending signing request waits for approvals before it expires (default 86 400).
    #[serde(default = "default_request_expiry")]
    pub request_expiry_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_window: Option<ApprovalWindow>,
    /// Signatures per minute for this key across all callers (none = service default only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
}

fn default_request_expiry() -> u64 {
    86_400
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            allowed_mechanisms: Vec::new(),
            approvals_required: 0,
            approvers: Vec::new(),
            request_expiry_seconds: default_request_expiry(),
            approval_window: None,
            rate_limit_per_minute: None,
        }
    }
}

/// `POST /v1/keys` (keygen): generate a key in the caller's environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub label: String,
    pub algorithm: KeyAlgorithm,
    #[serde(default)]
    pub policy: KeyPolicy,
}

/// Key state: usable, scheduled for deletion (restorable until `purge_at`), or destroyed (the private
/// key is gone; the row stays so audit records and signing requests keep their meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    PendingDeletion,
    Destroyed,
}

/// `PUT /v1/keys/{id}/certificates` (admin): replaces the key's certificate chain, leaf first. The leaf
/// must certify the key's public key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCertificatesRequest {
    pub certificates: Vec<Base64Bytes>,
}

/// A key as clients see it: never any private material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub label: String,
    pub algorithm: KeyAlgorithm,
    pub environment: Environment,
    /// SubjectPublicKeyInfo, DER.
    pub public_key: Base64Bytes,
    /// DER certificates, leaf first.
    #[serde(default)]
    pub certificates: Vec<Base64Bytes>,
    pub policy: KeyPolicy,
    pub state: KeyState,
    pub locked: bool,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_at: Option<i64>,
}

/// `GET /v1/keys`: answered with an `ETag`; `If-None-Match` with it gives `304` when nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}
