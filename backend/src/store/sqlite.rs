//! The embedded SQLite [`Store`]: one database file in the data directory, WAL mode.
//!
//! One connection behind a mutex serialises writers inside the process; every write uses an `IMMEDIATE`
//! transaction so a second process sharing the file waits instead of interleaving. Enum values are stored
//! by their stable wire names and lists as JSON text.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use cryptera_proto::sign::SigningRequestStatus;
use cryptera_proto::{Base64Bytes, Environment};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::sqlite_audit as audit_queries;
use super::sqlite_rows::{
    credential_row, enum_name, json, key_row, org_row, request_row, user_row,
};
use super::sqlite_tx::{
    append, erase_user, open_window, purge_due_keys, take_tokens, write_request,
};
use super::{
    ApprovalWindowQuery, AuditFilter, CredentialRecord, Idempotent, KeyRecord, KeyUpdate,
    OrgRecord, RateBucket, RequestFinish, RequestUpdate, SigningRequestRecord, Store, TotpUpdate,
    UserRecord,
};
use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open(path).map_err(ServiceError::storage)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(ServiceError::storage)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .map_err(ServiceError::storage)?;
        super::migrate::migrate_sqlite(&mut conn, crate::util::now())?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Tables and columns as the catalogue describes them (for comparing the two stores).
    pub fn schema(&self) -> Result<super::copy::Schema> {
        super::copy::sqlite_schema(&self.lock())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction (SQLite rolls back
        // on drop), so a poisoned lock is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn write<T>(&self, body: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(ServiceError::storage)?;
        let value = body(&tx)?;
        tx.commit().map_err(ServiceError::storage)?;
        Ok(value)
    }
}

/// Maps a uniqueness violation to `AlreadyExists(what)`, anything else to a storage error.
pub(super) fn unique(what: &'static str) -> impl Fn(rusqlite::Error) -> ServiceError {
    move |err| match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => ServiceError::AlreadyExists(what),
        _ => ServiceError::storage(err),
    }
}

impl Store for SqliteStore {
    fn devices(&self) -> Option<&dyn super::devices::DeviceStore> {
        Some(self)
    }

    fn backup_to(&self, path: &Path) -> Result<()> {
        if path.exists() {
            return Err(ServiceError::Io(format!(
                "{} already exists",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| ServiceError::Io("backup path is not UTF-8".into()))?;
        // VACUUM INTO reads one snapshot, so the copy is consistent while the service keeps writing.
        self.lock()
            .execute("VACUUM INTO ?1", [target])
            .map_err(ServiceError::storage)
            .map(drop)
    }

    fn ping(&self) -> Result<()> {
        self.lock()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(ServiceError::storage)
    }

    fn create_org(&self, org: &OrgRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO organisations (id, name, trial_expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![org.id, org.name, org.trial_expires_at, org.created_at],
            )
            .map_err(unique("organisation"))?;
            append(tx, audit).map(drop)
        })
    }

    fn org_by_name(&self, name: &str) -> Result<Option<OrgRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM organisations WHERE name = ?1",
                [name],
                org_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn org_by_id(&self, id: &str) -> Result<Option<OrgRecord>> {
        self.lock()
            .query_row("SELECT * FROM organisations WHERE id = ?1", [id], org_row)
            .optional()
            .map_err(ServiceError::storage)
    }

    fn organisation_ids(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT id FROM organisations ORDER BY created_at, id")
            .map_err(ServiceError::storage)?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        Ok(ids)
    }

    fn create_user(&self, user: &UserRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, org_id, username, password_hash, roles, totp_sealed,
                    totp_pending_sealed, totp_last_step, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    user.id,
                    user.org_id,
                    user.username,
                    user.password_hash,
                    json(&user.roles),
                    user.totp_sealed,
                    user.totp_pending_sealed,
                    user.totp_last_step,
                    user.created_at
                ],
            )
            .map_err(unique("user"))?;
            append(tx, audit).map(drop)
        })
    }

    fn user_by_name(&self, org_id: &str, username: &str) -> Result<Option<UserRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM users WHERE org_id = ?1 AND username = ?2",
                [org_id, username],
                user_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn user_by_id(&self, org_id: &str, id: &str) -> Result<Option<UserRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM users WHERE org_id = ?1 AND id = ?2",
                [org_id, id],
                user_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn list_users(&self, org_id: &str) -> Result<Vec<UserRecord>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT * FROM users WHERE org_id = ?1 ORDER BY username")
            .map_err(ServiceError::storage)?;
        let users = stmt
            .query_map([org_id], user_row)
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        Ok(users)
    }

    fn erase_user(&self, org_id: &str, user_id: &str, at: i64, audit: &AuditEvent) -> Result<bool> {
        self.write(|tx| erase_user(tx, org_id, user_id, at, audit))
    }

    fn update_user_totp(
        &self,
        org_id: &str,
        user_id: &str,
        update: &TotpUpdate,
        audit: Option<&AuditEvent>,
    ) -> Result<()> {
        self.write(|tx| {
            let changed = match update {
                TotpUpdate::SetPending(sealed) => tx.execute(
                    "UPDATE users SET totp_pending_sealed = ?3 WHERE org_id = ?1 AND id = ?2",
                    params![org_id, user_id, sealed],
                ),
                TotpUpdate::ConfirmPending { step } => tx.execute(
                    "UPDATE users SET totp_sealed = totp_pending_sealed, totp_pending_sealed = NULL,
                        totp_last_step = ?3
                     WHERE org_id = ?1 AND id = ?2 AND totp_pending_sealed IS NOT NULL",
                    params![org_id, user_id, step],
                ),
                // Only moves forward, so two racing logins cannot both use one code.
                TotpUpdate::UsedStep(step) => tx.execute(
                    "UPDATE users SET totp_last_step = ?3
                     WHERE org_id = ?1 AND id = ?2 AND totp_last_step < ?3",
                    params![org_id, user_id, step],
                ),
            }
            .map_err(ServiceError::storage)?;
            if changed != 1 {
                return Err(ServiceError::LoginFailed);
            }
            if let Some(audit) = audit {
                append(tx, audit)?;
            }
            Ok(())
        })
    }

    fn create_credential(&self, credential: &CredentialRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO credentials (id, org_id, kind, name, user_id, secret_hash, operations, key_scope,
                    environment, mfa_verified, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    credential.id,
                    credential.org_id,
                    credential.kind.as_str(),
                    credential.name,
                    credential.user_id,
                    credential.secret_hash,
                    json(&credential.operations),
                    json(&credential.key_scope),
                    credential.environment.as_str(),
                    credential.mfa_verified,
                    credential.created_at,
                    credential.expires_at,
                    credential.revoked_at
                ],
            )
            .map_err(unique("credential"))?;
            append(tx, audit).map(drop)
        })
    }

    fn credential_by_id(&self, id: &str) -> Result<Option<CredentialRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM credentials WHERE id = ?1",
                [id],
                credential_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn list_access_tokens(&self, org_id: &str) -> Result<Vec<CredentialRecord>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT * FROM credentials WHERE org_id = ?1 AND kind = 'access' ORDER BY created_at, id",
            )
            .map_err(ServiceError::storage)?;
        let tokens = stmt
            .query_map([org_id], credential_row)
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        Ok(tokens)
    }

    fn revoke_credential(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool> {
        self.write(|tx| {
            let exists: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM credentials WHERE org_id = ?1 AND id = ?2",
                    [org_id, id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(ServiceError::storage)?;
            match exists {
                None => Ok(false),
                Some(Some(_)) => Ok(true),
                Some(None) => {
                    tx.execute(
                        "UPDATE credentials SET revoked_at = ?3 WHERE org_id = ?1 AND id = ?2",
                        params![org_id, id, at],
                    )
                    .map_err(ServiceError::storage)?;
                    append(tx, audit)?;
                    Ok(true)
                }
            }
        })
    }

    fn create_key(&self, key: &KeyRecord, audit: &AuditEvent) -> Result<()> {
        let certificates: Vec<Base64Bytes> = key
            .certificates
            .iter()
            .map(|c| Base64Bytes(c.clone()))
            .collect();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO keys (id, org_id, label, algorithm, environment, public_key, sealed_private_key,
                    certificates, policy, state, locked, created_at, purge_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    key.id,
                    key.org_id,
                    key.label,
                    key.algorithm.as_str(),
                    key.environment.as_str(),
                    key.public_key,
                    key.sealed_private_key,
                    json(&certificates),
                    json(&key.policy),
                    enum_name(&key.state),
                    key.locked,
                    key.created_at,
                    key.purge_at
                ],
            )
            .map_err(unique("key with this label"))?;
            append(tx, audit).map(drop)
        })
    }

    fn key_by_id(&self, org_id: &str, id: &str) -> Result<Option<KeyRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM keys WHERE org_id = ?1 AND id = ?2",
                [org_id, id],
                key_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn list_keys(&self, org_id: &str, environment: Environment) -> Result<Vec<KeyRecord>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT * FROM keys WHERE org_id = ?1 AND environment = ?2 ORDER BY created_at, id",
            )
            .map_err(ServiceError::storage)?;
        let keys = stmt
            .query_map([org_id, environment.as_str()], key_row)
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        Ok(keys)
    }

    fn update_key(&self, org_id: &str, id: &str, update: &mut KeyUpdate<'_>) -> Result<KeyRecord> {
        self.write(|tx| {
            let mut key = tx
                .query_row(
                    "SELECT * FROM keys WHERE org_id = ?1 AND id = ?2",
                    [org_id, id],
                    key_row,
                )
                .optional()
                .map_err(ServiceError::storage)?
                .ok_or(ServiceError::NotFound("key"))?;
            let event = update(&mut key)?;
            let certificates: Vec<Base64Bytes> =
                key.certificates.iter().map(|c| Base64Bytes(c.clone())).collect();
            tx.execute(
                "UPDATE keys SET certificates = ?3, policy = ?4, state = ?5, locked = ?6, purge_at = ?7
                 WHERE org_id = ?1 AND id = ?2",
                params![
                    org_id,
                    id,
                    json(&certificates),
                    json(&key.policy),
                    enum_name(&key.state),
                    key.locked,
                    key.purge_at
                ],
            )
            .map_err(ServiceError::storage)?;
            append(tx, &event)?;
            Ok(key)
        })
    }

    fn purge_due_keys(&self, now: i64) -> Result<Vec<String>> {
        self.write(|tx| purge_due_keys(tx, now))
    }

    fn create_signing_request(
        &self,
        mut request: SigningRequestRecord,
        window: Option<ApprovalWindowQuery>,
        finish: &mut RequestFinish<'_>,
        audit: &AuditEvent,
    ) -> Result<Idempotent> {
        self.write(|tx| {
            let existing = tx
                .query_row(
                    "SELECT * FROM signing_requests
                     WHERE org_id = ?1 AND requester_id = ?2 AND idempotency_key = ?3",
                    [
                        &request.org_id,
                        &request.requester_id,
                        &request.idempotency_key,
                    ],
                    request_row,
                )
                .optional()
                .map_err(ServiceError::storage)?;
            if let Some(existing) = existing {
                return Ok(Idempotent::Existing(existing));
            }
            if let Some(window) = window {
                request.window_of = open_window(tx, &request, &window)?;
            }
            finish(&mut request)?;
            write_request(tx, &request, true)?;
            let mut event = audit.clone();
            event.target.clone_from(&request.key_id);
            event
                .details
                .insert("request_id".into(), request.id.clone());
            event
                .details
                .insert("status".into(), enum_name(&request.status));
            if let Some(anchor) = &request.window_of {
                event
                    .details
                    .insert("approved_under".into(), anchor.clone());
            }
            append(tx, &event)?;
            Ok(Idempotent::Created(request))
        })
    }

    fn signing_request(&self, org_id: &str, id: &str) -> Result<Option<SigningRequestRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM signing_requests WHERE org_id = ?1 AND id = ?2",
                [org_id, id],
                request_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn list_signing_requests(
        &self,
        org_id: &str,
        status: Option<SigningRequestStatus>,
    ) -> Result<Vec<SigningRequestRecord>> {
        let conn = self.lock();
        let status = status.map(|s| enum_name(&s));
        let mut stmt = conn
            .prepare(
                "SELECT * FROM signing_requests WHERE org_id = ?1 AND (?2 IS NULL OR status = ?2)
                 ORDER BY created_at, id",
            )
            .map_err(ServiceError::storage)?;
        let requests = stmt
            .query_map(params![org_id, status], request_row)
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        Ok(requests)
    }

    fn update_signing_request(
        &self,
        org_id: &str,
        id: &str,
        update: &mut RequestUpdate<'_>,
    ) -> Result<SigningRequestRecord> {
        self.write(|tx| {
            let mut request = tx
                .query_row(
                    "SELECT * FROM signing_requests WHERE org_id = ?1 AND id = ?2",
                    [org_id, id],
                    request_row,
                )
                .optional()
                .map_err(ServiceError::storage)?
                .ok_or(ServiceError::NotFound("signing request"))?;
            let event = update(&mut request)?;
            write_request(tx, &request, false)?;
            append(tx, &event)?;
            Ok(request)
        })
    }

    fn append_audit(&self, audit: &AuditEvent) -> Result<AuditRecord> {
        self.write(|tx| append(tx, audit))
    }

    fn audit_records(&self, org_id: &str, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        audit_queries::audit_records(&self.lock(), org_id, after_seq, limit)
    }

    fn search_audit(&self, org_id: &str, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        audit_queries::search_audit(&self.lock(), org_id, filter)
    }

    fn save_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()> {
        self.write(|tx| audit_queries::save_checkpoint(tx, checkpoint))
    }

    fn checkpoints(&self, org_id: &str) -> Result<Vec<AuditCheckpoint>> {
        audit_queries::checkpoints(&self.lock(), org_id)
    }

    fn audit_head(&self, org_id: &str) -> Result<Option<(u64, String)>> {
        audit_queries::audit_head(&self.lock(), org_id)
    }

    fn take_rate_tokens(&self, buckets: &[RateBucket], now_ms: i64) -> Result<Option<u64>> {
        self.write(|tx| take_tokens(tx, buckets, now_ms))
    }

    fn service_secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.lock()
            .query_row(
                "SELECT sealed FROM service_secrets WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn put_service_secret(&self, name: &str, sealed: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO service_secrets (name, sealed) VALUES (?1, ?2)",
                params![name, sealed],
            )
            .map_err(unique("service secret"))
            .map(drop)
        })
    }
}
