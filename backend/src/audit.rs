//! The audit log's hash chain: what an event records, how a record's hash is computed, and verification.
//!
//! One chain per organisation. `hash = hex(SHA-256(prev_hash || "\n" || canonical JSON))` where the
//! canonical JSON has the record's fields except the two hashes, in lexicographic key order and without
//! whitespace. Stores append through [`chain_next`]; `audit verify` and the tests use [`verify_chain`].

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use cryptera_proto::audit::AuditRecord;
use serde::Serialize;

use crate::util::hex;

/// The hash that precedes the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to be appended; the store assigns `seq`, `prev_hash` and `hash` in the same transaction as
/// the change it describes.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub organisation_id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: BTreeMap<String, String>,
}

impl AuditEvent {
    pub fn new(organisation_id: &str, actor: &str, action: &str, target: &str) -> Self {
        Self {
            organisation_id: organisation_id.to_owned(),
            at: crate::util::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: "ok".to_owned(),
            details: BTreeMap::new(),
        }
    }

    pub fn detail(mut self, name: &str, value: impl Into<String>) -> Self {
        self.details.insert(name.to_owned(), value.into());
        self
    }

    pub fn outcome(mut self, outcome: &str) -> Self {
        outcome.clone_into(&mut self.outcome);
        self
    }
}

/// Field order is the canonical (lexicographic) key order; do not reorder.
#[derive(Serialize)]
struct Canonical<'a> {
    action: &'a str,
    actor: &'a str,
    at: i64,
    details: &'a BTreeMap<String, String>,
    organisation_id: &'a str,
    outcome: &'a str,
    seq: u64,
    target: &'a str,
}

fn record_hash(event: &AuditEvent, seq: u64, prev_hash: &str) -> String {
    let canonical = Canonical {
        action: &event.action,
        actor: &event.actor,
        at: event.at,
        details: &event.details,
        organisation_id: &event.organisation_id,
        outcome: &event.outcome,
        seq,
        target: &event.target,
    };
    // Serialising plain strings, integers and a string map cannot fail.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(&json);
    hex(ctx.finish().as_ref())
}

/// The record that follows `previous` (or starts the chain) for `event`.
pub fn chain_next(event: &AuditEvent, previous: Option<(u64, &str)>) -> AuditRecord {
    let (seq, prev_hash) = match previous {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = record_hash(event, seq, &prev_hash);
    AuditRecord {
        seq,
        organisation_id: event.organisation_id.clone(),
        at: event.at,
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        details: event.details.clone(),
        prev_hash,
        hash,
    }
}

/// Why a chain failed verification, naming the first bad position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "record {seq}: expected sequence number {expected} (a record was removed or reordered)"
    )]
    Sequence { seq: u64, expected: u64 },
    #[error("record {seq}: does not link to the previous record (removed, reordered or edited)")]
    Link { seq: u64 },
    #[error("record {seq}: content does not match its hash (edited)")]
    Content { seq: u64 },
    #[error("record {seq}: belongs to another organisation")]
    Organisation { seq: u64 },
}

/// Checks an organisation's whole chain in `seq` order; returns the head `(seq, hash)`.
pub fn verify_chain(
    organisation_id: &str,
    records: &[AuditRecord],
) -> Result<Option<(u64, String)>, ChainError> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (index, record) in records.iter().enumerate() {
        let expected = index as u64 + 1;
        if record.seq != expected {
            return Err(ChainError::Sequence {
                seq: record.seq,
                expected,
            });
        }
        if record.organisation_id != organisation_id {
            return Err(ChainError::Organisation { seq: record.seq });
        }
        if record.prev_hash != prev_hash {
            return Err(ChainError::Link { seq: record.seq });
        }
        let event = AuditEvent {
            organisation_id: record.organisation_id.clone(),
            at: record.at,
            actor: record.actor.clone(),
            action: record.action.clone(),
            target: record.target.clone(),
            outcome: record.outcome.clone(),
            details: record.details.clone(),
        };
        if record_hash(&event, record.seq, &prev_hash) != record.hash {
            return Err(ChainError::Content { seq: record.seq });
        }
        prev_hash.clone_from(&record.hash);
    }
    Ok(records.last().map(|last| (last.seq, last.hash.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut records: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let event = AuditEvent::new("org_1", "usr_a", "key.sign", &format!("key_{i}"))
                .detail("digest", "abcd");
            let prev = records.last().map(|r| (r.seq, r.hash.as_str()));
            let next = chain_next(&event, prev);
            records.push(next);
        }
        records
    }

    #[test]
    fn detects_edit_removal_and_reordering() {
        let good = chain(4);
        assert_eq!(
            verify_chain("org_1", &good).expect("valid").map(|h| h.0),
            Some(4)
        );

        let mut edited = good.clone();
        edited[1].details.insert("digest".into(), "ffff".into());
        assert_eq!(
            verify_chain("org_1", &edited),
            Err(ChainError::Content { seq: 2 })
        );

        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(
            verify_chain("org_1", &removed),
            Err(ChainError::Sequence {
                seq: 3,
                expected: 2
            })
        );

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        reordered[1].seq = 2;
        reordered[2].seq = 3;
        assert_eq!(
            verify_chain("org_1", &reordered),
            Err(ChainError::Link { seq: 2 })
        );

        let mut truncated_tail = good;
        truncated_tail.pop();
        assert!(
            verify_chain("org_1", &truncated_tail).is_ok(),
            "tail removal needs checkpoints"
        );
    }
}
