//! Transaction helpers of the PostgreSQL store, each run inside a caller's transaction: appending to the
//! audit chain, approval-window lookup, writing signing requests, token buckets, erasing a person and
//! destroying due keys.
//!
//! Transactions run at READ COMMITTED; what SQLite gets from its single writer, these get from locks
//! taken before reading what they will change: a transaction-scoped advisory lock per organisation for
//! the audit head, `FOR NO KEY UPDATE` on key, request and bucket rows. Each statement after a lock
//! wait reads the committed state, so no decision is made on a stale row.

use cryptera_proto::audit::AuditRecord;
use cryptera_proto::sign::ApprovalInfo;

use super::postgres_conn::{args, race, Failure, Tx, LOCK_AUDIT_HEAD};
use super::postgres_rows as rows;
use super::sqlite_rows::{enum_name, json};
use super::{ApprovalWindowQuery, RateBucket, SigningRequestRecord};
use crate::audit::{chain_next, AuditEvent};
use crate::error::ServiceError;

type TxResult<T> = Result<T, Failure>;

pub(super) fn append(tx: &mut Tx<'_>, event: &AuditEvent) -> TxResult<AuditRecord> {
    // Held until commit: the next writer of this organisation's chain reads the head after this one.
    tx.lock(LOCK_AUDIT_HEAD, &event.organisation_id)?;
    let head = tx.row(
        "SELECT seq, hash FROM audit_records WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
        args![&event.organisation_id],
    )?;
    let previous = match &head {
        Some(row) => Some((
            rows::seq(row, "seq")?,
            sqlx::Row::try_get::<String, _>(row, "hash")?,
        )),
        None => None,
    };
    let record = chain_next(
        event,
        previous.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
    );
    let seq = i64::try_from(record.seq)
        .map_err(|_| ServiceError::Storage("audit sequence number out of range".into()))?;
    tx.execute(
        "INSERT INTO audit_records (org_id, seq, at, actor, action, target, outcome, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        args![
            &record.organisation_id,
            seq,
            record.at,
            &record.actor,
            &record.action,
            &record.target,
            &record.outcome,
            json(&record.details),
            &record.prev_hash,
            &record.hash
        ],
    )?;
    Ok(record)
}

/// The approved request whose window still covers another signature for this key and requester. The
/// anchor row is locked, so two racing requests count one after the other and cannot both take the
/// last slot.
pub(super) fn open_window(
    tx: &mut Tx<'_>,
    request: &SigningRequestRecord,
    window: &ApprovalWindowQuery,
) -> TxResult<Option<String>> {
    let anchor = tx.row(
        "SELECT id FROM signing_requests
         WHERE org_id = $1 AND key_id = $2 AND requester_id = $3 AND status = 'completed'
           AND approvals_required > 0 AND window_of IS NULL AND completed_at >= $4
         ORDER BY completed_at DESC LIMIT 1
         FOR NO KEY UPDATE",
        args![
            &request.org_id,
            &request.key_id,
            &request.requester_id,
            window.since
        ],
    )?;
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    let anchor: String = sqlx::Row::try_get(&anchor, "id")?;
    let used = tx
        .row(
            "SELECT COUNT(*) AS used FROM signing_requests WHERE org_id = $1 AND window_of = $2",
            args![&request.org_id, &anchor],
        )?
        .map(|row| sqlx::Row::try_get::<i64, _>(&row, "used"))
        .transpose()?
        .unwrap_or(0);
    // The approved request itself is the window's first signature.
    Ok((used + 1 < i64::from(window.max_signatures)).then_some(anchor))
}

pub(super) fn insert_request(tx: &mut Tx<'_>, request: &SigningRequestRecord) -> TxResult<()> {
    tx.execute(
        "INSERT INTO signing_requests (id, org_id, key_id, credential_id, requester_id, idempotency_key,
            fingerprint, mechanism, digest, data, artifact, status, approvals_required, approvals,
            created_at, expires_at, signature, completed_at, window_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        args![
            &request.id,
            &request.org_id,
            &request.key_id,
            &request.credential_id,
            &request.requester_id,
            &request.idempotency_key,
            &request.fingerprint,
            request.mechanism.as_str(),
            &request.digest,
            &request.data,
            json(&request.artifact),
            enum_name(&request.status),
            request.approvals_required,
            json(&request.approvals),
            request.created_at,
            request.expires_at,
            &request.signature,
            &request.completed_at,
            &request.window_of
        ],
    )
    .map_err(race)?;
    Ok(())
}

/// Writes back the mutable columns of a request read (and locked) in this transaction. The identity
/// columns must not have changed; anything else is a bug in the caller.
pub(super) fn update_request(tx: &mut Tx<'_>, request: &SigningRequestRecord) -> TxResult<()> {
    let changed = tx.execute(
        "UPDATE signing_requests SET data = $10, status = $12, approvals = $14, signature = $17,
            completed_at = $18, window_of = $19
         WHERE id = $1 AND org_id = $2 AND key_id = $3 AND credential_id = $4 AND requester_id = $5
           AND idempotency_key = $6 AND fingerprint = $7 AND mechanism = $8 AND digest = $9
           AND artifact = $11 AND approvals_required = $13 AND created_at = $15 AND expires_at = $16",
        args![
            &request.id,
            &request.org_id,
            &request.key_id,
            &request.credential_id,
            &request.requester_id,
            &request.idempotency_key,
            &request.fingerprint,
            request.mechanism.as_str(),
            &request.digest,
            &request.data,
            json(&request.artifact),
            enum_name(&request.status),
            request.approvals_required,
            json(&request.approvals),
            request.created_at,
            request.expires_at,
            &request.signature,
            &request.completed_at,
            &request.window_of
        ],
    )?;
    if changed != 1 {
        return Err(ServiceError::Storage("signing request identity changed".into()).into());
    }
    Ok(())
}

/// See [`Store::take_rate_tokens`](super::Store::take_rate_tokens). The buckets are locked in name order
/// (so two processes taking overlapping sets cannot deadlock; missing ones are first created full),
/// refilled, and either all debited or none.
pub(super) fn take_tokens(
    tx: &mut Tx<'_>,
    buckets: &[RateBucket],
    now_ms: i64,
) -> TxResult<Option<u64>> {
    let mut buckets: Vec<&RateBucket> = buckets.iter().collect();
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    buckets.dedup_by(|a, b| a.name == b.name);
    let capacity = |bucket: &RateBucket| f64::from(bucket.per_minute.max(1));
    // Bucket levels are not worth a flush of their own (about 2 ms per request on a small disk): a
    // crash can forget the last moments of debits, which lets a few extra requests through. Signatures,
    // audit records and everything else still commit synchronously.
    tx.execute("SET LOCAL synchronous_commit TO OFF", Vec::new())?;
    let names: Vec<String> = buckets.iter().map(|b| b.name.clone()).collect();
    let lock = |tx: &mut Tx<'_>| {
        tx.rows(
            "SELECT name, tokens, updated_ms FROM rate_buckets WHERE name = ANY($1)
             ORDER BY name FOR NO KEY UPDATE",
            args![names.clone()],
        )
    };
    let mut stored = lock(tx)?;
    if stored.len() != buckets.len() {
        // First use of a bucket: create it full (a racing creator's row wins), then lock all again.
        let full: Vec<f64> = buckets.iter().map(|b| capacity(b)).collect();
        tx.execute(
            "INSERT INTO rate_buckets (name, tokens, updated_ms)
             SELECT name, tokens, $3 FROM UNNEST($1::TEXT[], $2::DOUBLE PRECISION[]) AS b(name, tokens)
             ON CONFLICT (name) DO NOTHING",
            args![names.clone(), full, now_ms],
        )?;
        stored = lock(tx)?;
    }
    let mut refilled = Vec::with_capacity(buckets.len());
    let mut wait_ms: i64 = 0;
    for (bucket, row) in buckets.iter().zip(&stored) {
        let name: String = sqlx::Row::try_get(row, "name")?;
        if name != bucket.name {
            return Err(ServiceError::Storage(format!("rate bucket {name} out of order")).into());
        }
        let tokens: f64 = sqlx::Row::try_get(row, "tokens")?;
        let updated_ms: i64 = sqlx::Row::try_get(row, "updated_ms")?;
        let capacity = capacity(bucket);
        let elapsed = (now_ms - updated_ms).max(0) as f64;
        let tokens = (tokens + elapsed * capacity / 60_000.0).min(capacity);
        if tokens < 1.0 {
            let missing_ms = ((1.0 - tokens) * 60_000.0 / capacity).ceil() as i64;
            wait_ms = wait_ms.max(missing_ms);
        }
        refilled.push(tokens - 1.0);
    }
    if stored.len() != buckets.len() {
        return Err(ServiceError::Storage("rate bucket rows missing".into()).into());
    }
    if wait_ms > 0 {
        return Ok(Some(
            u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
        ));
    }
    tx.execute(
        "UPDATE rate_buckets AS b SET tokens = v.tokens, updated_ms = $3
         FROM UNNEST($1::TEXT[], $2::DOUBLE PRECISION[]) AS v(name, tokens)
         WHERE b.name = v.name",
        args![names, refilled, now_ms],
    )?;
    Ok(None)
}

pub(super) fn erase_user(
    tx: &mut Tx<'_>,
    org_id: &str,
    user_id: &str,
    at: i64,
    audit: &AuditEvent,
) -> TxResult<bool> {
    let erased_name = format!("erased-{user_id}");
    let changed = tx.execute(
        "UPDATE users SET username = $3, password_hash = '', roles = '[]', totp_sealed = NULL,
            totp_pending_sealed = NULL
         WHERE org_id = $1 AND id = $2",
        args![org_id, user_id, &erased_name],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE credentials SET revoked_at = $3
         WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        args![org_id, user_id, at],
    )?;
    // Replace the erased approver's name in every approval they gave.
    let pattern = format!("%\"approver_id\":\"{user_id}\"%");
    let given = tx.rows(
        "SELECT id, approvals FROM signing_requests WHERE org_id = $1 AND approvals LIKE $2
         FOR NO KEY UPDATE",
        args![org_id, pattern],
    )?;
    for row in given {
        let id: String = sqlx::Row::try_get(&row, "id")?;
        let text: String = sqlx::Row::try_get(&row, "approvals")?;
        let mut approvals: Vec<ApprovalInfo> =
            serde_json::from_str(&text).map_err(ServiceError::storage)?;
        for approval in approvals.iter_mut().filter(|a| a.approver_id == user_id) {
            erased_name.clone_into(&mut approval.approver);
        }
        tx.execute(
            "UPDATE signing_requests SET approvals = $2 WHERE id = $1",
            args![&id, json(&approvals)],
        )?;
    }
    append(tx, audit)?;
    Ok(true)
}

/// Destroys due keys. Rows another transaction holds (e.g. a restore in progress) are skipped until the
/// next run; after a lock wait the state is re-checked, so two processes never destroy one key twice.
pub(super) fn purge_due_keys(tx: &mut Tx<'_>, now: i64) -> TxResult<Vec<String>> {
    let due = tx.rows(
        "SELECT org_id, id FROM keys
         WHERE state = 'pending_deletion' AND purge_at <= $1 AND locked = 0
         ORDER BY org_id, id
         FOR NO KEY UPDATE SKIP LOCKED",
        args![now],
    )?;
    let mut destroyed = Vec::with_capacity(due.len());
    for row in due {
        let org_id: String = sqlx::Row::try_get(&row, "org_id")?;
        let id: String = sqlx::Row::try_get(&row, "id")?;
        // Overwrite the sealed key; the KEK-encrypted bytes are gone with it.
        tx.execute(
            "UPDATE keys SET sealed_private_key = $3, state = 'destroyed' WHERE org_id = $1 AND id = $2",
            args![&org_id, &id, Vec::<u8>::new()],
        )?;
        append(tx, &AuditEvent::new(&org_id, "svc", "key.purge", &id))?;
        destroyed.push(id);
    }
    Ok(destroyed)
}
