//! Transaction helpers of the SQLite store: appending to the audit chain, approval-window lookup,
//! writing signing requests, token-bucket arithmetic, erasing a person and destroying due keys. Each
//! runs inside a caller's transaction.

use cryptera_proto::audit::AuditRecord;
use cryptera_proto::sign::ApprovalInfo;
use rusqlite::{params, OptionalExtension, Transaction};

use super::sqlite::unique;
use super::sqlite_rows::{enum_name, json};
use super::{ApprovalWindowQuery, RateBucket, SigningRequestRecord};
use crate::audit::{chain_next, AuditEvent};
use crate::error::{Result, ServiceError};

pub(super) fn append(tx: &Transaction<'_>, event: &AuditEvent) -> Result<AuditRecord> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_records WHERE org_id = ?1 ORDER BY seq DESC LIMIT 1",
            params![event.organisation_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(ServiceError::storage)?;
    let previous = head
        .as_ref()
        .map(|(seq, hash)| (*seq as u64, hash.as_str()));
    let record = chain_next(event, previous);
    tx.execute(
        "INSERT INTO audit_records (org_id, seq, at, actor, action, target, outcome, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.organisation_id,
            record.seq as i64,
            record.at,
            record.actor,
            record.action,
            record.target,
            record.outcome,
            json(&record.details),
            record.prev_hash,
            record.hash
        ],
    )
    .map_err(ServiceError::storage)?;
    Ok(record)
}

/// The approved request whose window still covers another signature for this key and requester.
/// Runs in the creating transaction, so two racing requests cannot both take the last slot.
pub(super) fn open_window(
    tx: &Transaction<'_>,
    request: &SigningRequestRecord,
    window: &ApprovalWindowQuery,
) -> Result<Option<String>> {
    let anchor: Option<String> = tx
        .query_row(
            "SELECT id FROM signing_requests
             WHERE org_id = ?1 AND key_id = ?2 AND requester_id = ?3 AND status = 'completed'
               AND approvals_required > 0 AND window_of IS NULL AND completed_at >= ?4
             ORDER BY completed_at DESC LIMIT 1",
            params![
                request.org_id,
                request.key_id,
                request.requester_id,
                window.since
            ],
            |row| row.get(0),
        )
        .optional()
        .map_err(ServiceError::storage)?;
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    let used: u32 = tx
        .query_row(
            "SELECT COUNT(*) FROM signing_requests WHERE org_id = ?1 AND window_of = ?2",
            params![request.org_id, anchor],
            |row| row.get(0),
        )
        .map_err(ServiceError::storage)?;
    // The approved request itself is the window's first signature.
    Ok((used + 1 < window.max_signatures).then_some(anchor))
}

pub(super) fn write_request(
    tx: &Transaction<'_>,
    request: &SigningRequestRecord,
    insert: bool,
) -> Result<()> {
    let sql = if insert {
        "INSERT INTO signing_requests (id, org_id, key_id, credential_id, requester_id, idempotency_key,
            fingerprint, mechanism, digest, data, artifact, status, approvals_required, approvals,
            created_at, expires_at, signature, completed_at, window_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    } else {
        "UPDATE signing_requests SET data = ?10, status = ?12, approvals = ?14, signature = ?17,
            completed_at = ?18, window_of = ?19
         WHERE id = ?1 AND org_id = ?2 AND key_id = ?3 AND credential_id = ?4 AND requester_id = ?5
           AND idempotency_key = ?6 AND fingerprint = ?7 AND mechanism = ?8 AND digest = ?9
           AND artifact = ?11 AND approvals_required = ?13 AND created_at = ?15 AND expires_at = ?16"
    };
    let changed = tx
        .execute(
            sql,
            params![
                request.id,
                request.org_id,
                request.key_id,
                request.credential_id,
                request.requester_id,
                request.idempotency_key,
                request.fingerprint,
                request.mechanism.as_str(),
                request.digest,
                request.data,
                json(&request.artifact),
                enum_name(&request.status),
                request.approvals_required,
                json(&request.approvals),
                request.created_at,
                request.expires_at,
                request.signature,
                request.completed_at,
                request.window_of
            ],
        )
        .map_err(unique("signing request"))?;
    if changed != 1 {
        // Only the mutable columns may change; anything else is a bug in the caller.
        return Err(ServiceError::Storage(
            "signing request identity changed".into(),
        ));
    }
    Ok(())
}

/// See [`Store::take_rate_tokens`](super::Store::take_rate_tokens).
pub(super) fn take_tokens(
    tx: &Transaction<'_>,
    buckets: &[RateBucket],
    now_ms: i64,
) -> Result<Option<u64>> {
    let mut refilled = Vec::with_capacity(buckets.len());
    let mut wait_ms: i64 = 0;
    for bucket in buckets {
        let capacity = f64::from(bucket.per_minute.max(1));
        let stored: Option<(f64, i64)> = tx
            .query_row(
                "SELECT tokens, updated_ms FROM rate_buckets WHERE name = ?1",
                [&bucket.name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(ServiceError::storage)?;
        let (tokens, updated_ms) = stored.unwrap_or((capacity, now_ms));
        let elapsed = (now_ms - updated_ms).max(0) as f64;
        let tokens = (tokens + elapsed * capacity / 60_000.0).min(capacity);
        if tokens < 1.0 {
            let missing_ms = ((1.0 - tokens) * 60_000.0 / capacity).ceil() as i64;
            wait_ms = wait_ms.max(missing_ms);
        }
        refilled.push((bucket, tokens));
    }
    if wait_ms > 0 {
        return Ok(Some(
            u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
        ));
    }
    for (bucket, tokens) in refilled {
        tx.execute(
            "INSERT INTO rate_buckets (name, tokens, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET tokens = ?2, updated_ms = ?3",
            params![bucket.name, tokens - 1.0, now_ms],
        )
        .map_err(ServiceError::storage)?;
    }
    Ok(None)
}

/// Replaces an erased approver's name in every approval they gave.
pub(super) fn scrub_approver(
    tx: &Transaction<'_>,
    org_id: &str,
    user_id: &str,
    erased_name: &str,
) -> Result<()> {
    let pattern = format!("%\"approver_id\":\"{user_id}\"%");
    let rows: Vec<(String, String)> = {
        let mut stmt = tx
            .prepare("SELECT id, approvals FROM signing_requests WHERE org_id = ?1 AND approvals LIKE ?2")
            .map_err(ServiceError::storage)?;
        let rows = stmt
            .query_map(params![org_id, pattern], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        rows
    };
    for (id, approvals) in rows {
        let mut approvals: Vec<ApprovalInfo> =
            serde_json::from_str(&approvals).map_err(ServiceError::storage)?;
        for approval in approvals.iter_mut().filter(|a| a.approver_id == user_id) {
            erased_name.clone_into(&mut approval.approver);
        }
        tx.execute(
            "UPDATE signing_requests SET approvals = ?2 WHERE id = ?1",
            params![id, json(&approvals)],
        )
        .map_err(ServiceError::storage)?;
    }
    Ok(())
}

pub(super) fn erase_user(
    tx: &Transaction<'_>,
    org_id: &str,
    user_id: &str,
    at: i64,
    audit: &AuditEvent,
) -> Result<bool> {
    let erased_name = format!("erased-{user_id}");
    let changed = tx
        .execute(
            "UPDATE users SET username = ?3, password_hash = '', roles = '[]', totp_sealed = NULL,
                totp_pending_sealed = NULL
             WHERE org_id = ?1 AND id = ?2",
            params![org_id, user_id, erased_name],
        )
        .map_err(ServiceError::storage)?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE credentials SET revoked_at = ?3
         WHERE org_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![org_id, user_id, at],
    )
    .map_err(ServiceError::storage)?;
    scrub_approver(tx, org_id, user_id, &erased_name)?;
    append(tx, audit)?;
    Ok(true)
}

pub(super) fn purge_due_keys(tx: &Transaction<'_>, now: i64) -> Result<Vec<String>> {
    let due: Vec<(String, String)> = {
        let mut stmt = tx
            .prepare(
                "SELECT org_id, id FROM keys
                 WHERE state = 'pending_deletion' AND purge_at <= ?1 AND locked = 0",
            )
            .map_err(ServiceError::storage)?;
        let rows = stmt
            .query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        rows
    };
    for (org_id, id) in &due {
        // Overwrite the sealed key; the KEK-encrypted bytes are gone with it.
        tx.execute(
            "UPDATE keys SET sealed_private_key = X'', state = 'destroyed' WHERE org_id = ?1 AND id = ?2",
            [org_id, id],
        )
        .map_err(ServiceError::storage)?;
        append(tx, &AuditEvent::new(org_id, "svc", "key.purge", id))?;
    }
    Ok(due.into_iter().map(|(_, id)| id).collect())
}
