//! Audit records (one hash chain per organisation) and signed checkpoints of the chain head.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Base64Bytes;

/// One append-only audit record. `hash = SHA-256(prev_hash || canonical JSON of the other fields)`; see
/// `docs/service-api.md` for the exact canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1-based position in the organisation's chain.
    pub seq: u64,
    pub organisation_id: String,
    pub at: i64,
    /// Pseudonymous actor id (`usr_...`, `tok_...` or `svc`); the mapping to a person can be erased.
    pub actor: String,
    /// E.g. `key.create`, `key.sign`, `token.revoke`, `login.fail`.
    pub action: String,
    /// The id of the object acted on, if any.
    #[serde(default)]
    pub target: String,
    /// `ok` or the error code.
    pub outcome: String,
    /// Action-specific facts (digest, mechanism, artifact metadata, approvers, client network...).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this record.
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecordList {
    pub records: Vec<AuditRecord>,
}

/// `GET /v1/audit/checkpoint`: the service's signature over the chain head.
///
/// The signed message is the UTF-8 text `cryptera-audit-checkpoint-v1\n{organisation_id}\n{seq}\n{head_hash}\n{at}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub organisation_id: String,
    pub seq: u64,
    pub head_hash: String,
    pub at: i64,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The service's checkpoint public key, SPKI DER.
    pub public_key: Base64Bytes,
    pub signature: Base64Bytes,
}

impl AuditCheckpoint {
    /// The exact bytes the checkpoint signature covers.
    pub fn signed_message(organisation_id: &str, seq: u64, head_hash: &str, at: i64) -> Vec<u8> {
        format!("cryptera-audit-checkpoint-v1\n{organisation_id}\n{seq}\n{head_hash}\n{at}")
            .into_bytes()
    }
}

/// `GET /v1/audit/checkpoints`: the checkpoints the service has kept, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpointList {
    pub checkpoints: Vec<AuditCheckpoint>,
}
