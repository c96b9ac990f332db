//! Signed checkpoints of an organisation's audit chain head, with the service's Ed25519 key.
//!
//! The checkpoint key is created at `init` and stored sealed under the KEK. Checkpoints are made on
//! demand and periodically, and kept; [`verify_organisation`] (behind `audit verify`) checks the chain
//! and that every kept checkpoint still matches it, which also catches a removed tail. A customer who
//! keeps checkpoints elsewhere can prove the same independently.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, ParsedPublicKey, ED25519};
use cryptera_proto::audit::AuditCheckpoint;
use cryptera_proto::Base64Bytes;

use crate::audit::{verify_chain, GENESIS_HASH};
use crate::error::{Result, ServiceError};
use crate::server::{checkpoint_key_aad, AppState, CHECKPOINT_KEY_NAME};

pub fn sign_head(state: &AppState, org_id: &str, at: i64) -> Result<AuditCheckpoint> {
    let (seq, head_hash) = state
        .store()
        .audit_head(org_id)?
        .unwrap_or((0, GENESIS_HASH.to_owned()));
    let sealed = state
        .store()
        .service_secret(CHECKPOINT_KEY_NAME)?
        .ok_or(ServiceError::Unavailable)?;
    let pkcs8 = state.kek().open(&checkpoint_key_aad(), &sealed)?;
    let pair =
        Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| ServiceError::Crypto("checkpoint key"))?;
    let message = AuditCheckpoint::signed_message(org_id, seq, &head_hash, at);
    let signature = pair.sign(&message);
    let public_key: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|_| ServiceError::Crypto("checkpoint public key"))?;
    Ok(AuditCheckpoint {
        organisation_id: org_id.to_owned(),
        seq,
        head_hash,
        at,
        algorithm: "ed25519".to_owned(),
        public_key: Base64Bytes(public_key.as_ref().to_vec()),
        signature: Base64Bytes(signature.as_ref().to_vec()),
    })
}

/// Signs and keeps a checkpoint for every organisation whose chain moved since its last checkpoint.
pub fn checkpoint_all(state: &AppState, at: i64) -> Result<usize> {
    let mut made = 0;
    for org_id in state.store().organisation_ids()? {
        let head = state.store().audit_head(&org_id)?.map(|(seq, _)| seq);
        let last = state.store().checkpoints(&org_id)?.last().map(|c| c.seq);
        if head.is_some() && head != last {
            let checkpoint = sign_head(state, &org_id, at)?;
            state.store().save_checkpoint(&checkpoint)?;
            made += 1;
        }
    }
    Ok(made)
}

/// Verifies an organisation's chain and its kept checkpoints. `Ok(Err(reason))` means tampering.
pub fn verify_organisation(
    state: &AppState,
    org_id: &str,
) -> Result<std::result::Result<(u64, String), String>> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store().audit_records(org_id, after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(page);
    }
    let head = match verify_chain(org_id, &records) {
        Ok(head) => head.unwrap_or((0, GENESIS_HASH.to_owned())),
        Err(err) => return Ok(Err(err.to_string())),
    };
    let own_key = sign_head(state, org_id, 0)?.public_key;
    for checkpoint in state.store().checkpoints(org_id)? {
        let message = AuditCheckpoint::signed_message(
            org_id,
            checkpoint.seq,
            &checkpoint.head_hash,
            checkpoint.at,
        );
        let signed = checkpoint.public_key == own_key
            && ParsedPublicKey::new(&ED25519, checkpoint.public_key.as_slice())
                .and_then(|key| {
                    key.verify_sig(&message, checkpoint.signature.as_slice())
                        .map_err(Into::into)
                })
                .is_ok();
        if !signed {
            return Ok(Err(format!(
                "checkpoint at record {} has no valid service signature",
                checkpoint.seq
            )));
        }
        let index = usize::try_from(checkpoint.seq).unwrap_or(usize::MAX);
        let matches = checkpoint.seq == 0
            || records
                .get(index.wrapping_sub(1))
                .is_some_and(|r| r.hash == checkpoint.head_hash);
        if !matches {
            return Ok(Err(format!(
                "checkpoint at record {} no longer matches the chain (history rewritten or truncated)",
                checkpoint.seq
            )));
        }
    }
    Ok(Ok(head))
}
