//! Signing: the sign request, its immediate answer, and signing requests waiting for approvals.

use serde::{Deserialize, Serialize};

use crate::keys::Mechanism;
use crate::Base64Bytes;

/// What is being signed, for the audit log and for approvers. Free text; never interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E.g. `sha256:3a7b...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who asks: the machine, user, program and CI job the request came from (the PKCS#11 module
    /// fills it in). Stored with the signing record and shown to approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientContext>,
}

/// Where a signing request comes from. Every field is what the client says about itself: useful to
/// approvers and auditors, never an authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The operating-system user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// The program's path (e.g. `/usr/bin/osslsigncode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// CI job identifiers found in the environment (e.g. `GITHUB_RUN_ID`, `CI_JOB_ID`), by variable.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ci: std::collections::BTreeMap<String, String>,
}

/// Most entries in [`ClientContext::ci`].
pub const MAX_CI_ENTRIES: usize = 16;
/// Longest text field of [`ArtifactMetadata`] and [`ClientContext`], in bytes.
pub const MAX_METADATA_LEN: usize = 1024;

/// `POST /v1/keys/{id}/sign` (sign). Exactly one of `digest` and `data`.
///
/// The normal case is `digest`: the client hashes locally with the mechanism's hash. `data` (at most
/// 16 KiB) is for Ed25519, which signs the message itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub mechanism: Mechanism,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Base64Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Base64Bytes>,
    #[serde(default)]
    pub artifact: ArtifactMetadata,
    /// Unique per logical signature (a UUID is fine, 1..=128 characters). Retrying with the same key and
    /// the same request returns the first outcome and never signs twice; the same key with a different
    /// request is refused with `idempotency_conflict`.
    pub idempotency_key: String,
}

/// Maximum length of `data` in a [`SignRequest`].
pub const MAX_SIGN_DATA_LEN: usize = 16 * 1024;

/// `200` answer of a sign request (and of a retry once approvals are complete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResponse {
    pub request_id: String,
    pub key_id: String,
    pub mechanism: Mechanism,
    pub signature: Base64Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningRequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Signed; `signature` is present.
    Completed,
    Denied,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// Pseudonymous id of the approver.
    pub approver_id: String,
    pub approver: String,
    pub at: i64,
}

/// A signing request: the `202` answer when approvals are needed, and `GET /v1/signing-requests/{id}`.
///
/// The `202` also carries `Location: /v1/signing-requests/{id}` and `Retry-After` (seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRequestInfo {
    pub id: String,
    pub key_id: String,
    pub mechanism: Mechanism,
    pub status: SigningRequestStatus,
    /// Pseudonymous id of the requester.
    pub requester_id: String,
    /// The digest (or SHA-256 of `data` for Ed25519) that will be signed.
    pub digest: Base64Bytes,
    pub artifact: ArtifactMetadata,
    pub approvals_required: u32,
    pub approvals: Vec<ApprovalInfo>,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Base64Bytes>,
    /// Set when the request was signed without new approvals, under the approval window opened by this
    /// earlier (approved) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_under: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRequestList {
    pub requests: Vec<SigningRequestInfo>,
}

/// `POST /v1/signing-requests/{id}/deny` body (optional reason for the audit log).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
