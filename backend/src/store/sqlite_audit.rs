//! Audit queries of the SQLite store: reading the chain (whole, filtered, head) and kept checkpoints.

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::sqlite_rows::{audit_row, checkpoint_row};
use super::AuditFilter;
use crate::error::{Result, ServiceError};

pub(super) fn audit_records(
    conn: &Connection,
    org_id: &str,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<AuditRecord>> {
    let mut stmt = conn
        .prepare("SELECT * FROM audit_records WHERE org_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
        .map_err(ServiceError::storage)?;
    let records = stmt
        .query_map(params![org_id, after_seq as i64, limit], audit_row)
        .and_then(|rows| rows.collect())
        .map_err(ServiceError::storage)?;
    Ok(records)
}

pub(super) fn search_audit(
    conn: &Connection,
    org_id: &str,
    filter: &AuditFilter,
) -> Result<Vec<AuditRecord>> {
    let mut stmt = conn
        .prepare(
            "SELECT * FROM audit_records WHERE org_id = ?1 AND seq > ?2
               AND (?4 IS NULL OR action = ?4) AND (?5 IS NULL OR target = ?5)
               AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7)
             ORDER BY seq LIMIT ?3",
        )
        .map_err(ServiceError::storage)?;
    let records = stmt
        .query_map(
            params![
                org_id,
                filter.after_seq as i64,
                filter.limit,
                filter.action,
                filter.target,
                filter.since,
                filter.until
            ],
            audit_row,
        )
        .and_then(|rows| rows.collect())
        .map_err(ServiceError::storage)?;
    Ok(records)
}

pub(super) fn save_checkpoint(tx: &Transaction<'_>, checkpoint: &AuditCheckpoint) -> Result<()> {
    tx.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (org_id, seq, head_hash, at, public_key, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                checkpoint.organisation_id,
                checkpoint.seq as i64,
                checkpoint.head_hash,
                checkpoint.at,
                checkpoint.public_key.as_slice(),
                checkpoint.signature.as_slice()
            ],
        )
        .map_err(ServiceError::storage)
        .map(drop)
}

pub(super) fn checkpoints(conn: &Connection, org_id: &str) -> Result<Vec<AuditCheckpoint>> {
    let mut stmt = conn
        .prepare("SELECT * FROM audit_checkpoints WHERE org_id = ?1 ORDER BY seq")
        .map_err(ServiceError::storage)?;
    let checkpoints = stmt
        .query_map([org_id], checkpoint_row)
        .and_then(|rows| rows.collect())
        .map_err(ServiceError::storage)?;
    Ok(checkpoints)
}

pub(super) fn audit_head(conn: &Connection, org_id: &str) -> Result<Option<(u64, String)>> {
    conn.query_row(
        "SELECT seq, hash FROM audit_records WHERE org_id = ?1 ORDER BY seq DESC LIMIT 1",
        [org_id],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
    )
    .optional()
    .map_err(ServiceError::storage)
}
