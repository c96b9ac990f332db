//! The PostgreSQL [`Store`]: several service processes (behind a load balancer) share one database.
//!
//! Same tables, encodings and transaction rules as the SQLite store (`docs/service-storage.md`); the
//! locking that replaces SQLite's single writer is described in `postgres_tx.rs`, the synchronous bridge
//! to `sqlx` and the retry of conflicting transactions in `postgres_conn.rs`. `backup_to` writes a
//! SQLite file from one snapshot (`store/copy.rs`).

use std::path::Path;

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use cryptera_proto::sign::SigningRequestStatus;
use cryptera_proto::{Base64Bytes, Environment};

use super::migrate;
use super::postgres_conn::{args, race, unique, Failure, Pg, Tx, LOCK_IDEMPOTENCY};
use super::postgres_rows::{self as rows, all};
use super::postgres_tx::{
    append, erase_user, insert_request, open_window, purge_due_keys, take_tokens, update_request,
};
use super::sqlite_rows::{enum_name, json};
use super::{
    ApprovalWindowQuery, AuditFilter, CredentialRecord, Idempotent, KeyRecord, KeyUpdate,
    OrgRecord, RateBucket, RequestFinish, RequestUpdate, SigningRequestRecord, Store, TotpUpdate,
    UserRecord,
};
use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};

pub struct PgStore {
    pub(super) pg: Pg,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, libpq-style parameters such as
    /// `sslmode` allowed) and brings the schema up to date.
    pub fn open(url: &str) -> Result<Self> {
        let store = Self {
            pg: Pg::connect(url)?,
        };
        migrate::migrate_postgres(&store.pg, crate::util::now())?;
        tracing::info!(database = %store.pg.location, "using PostgreSQL");
        Ok(store)
    }

    /// Host, port and database name (no credentials), for messages.
    pub fn location(&self) -> &str {
        &self.pg.location
    }

    /// Copies a SQLite backup into this (empty) database; see [`super::copy`]. Returns rows per table.
    pub fn restore_from_sqlite(&self, file: &Path) -> Result<Vec<(&'static str, usize)>> {
        super::copy::restore_from_sqlite(&self.pg, file)
    }

    /// Tables and columns as the catalogue describes them (for comparing the two stores).
    pub fn schema(&self) -> Result<super::copy::Schema> {
        super::copy::pg_schema(&self.pg)
    }

    fn write<T>(&self, body: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>) -> Result<T> {
        self.pg.write(body)
    }

    fn one<T>(
        &self,
        sql: &'static str,
        args: Vec<super::postgres_conn::Value>,
        map: fn(&sqlx::postgres::PgRow) -> Result<T>,
    ) -> Result<Option<T>> {
        self.pg.row(sql, args)?.as_ref().map(map).transpose()
    }
}

fn certificates_json(key: &KeyRecord) -> String {
    let certificates: Vec<Base64Bytes> = key
        .certificates
        .iter()
        .map(|c| Base64Bytes(c.clone()))
        .collect();
    json(&certificates)
}

impl Store for PgStore {
    fn devices(&self) -> Option<&dyn super::devices::DeviceStore> {
        Some(self)
    }

    fn ping(&self) -> Result<()> {
        self.pg.row("SELECT 1", Vec::new()).map(drop)
    }

    fn backup_to(&self, path: &Path) -> Result<()> {
        super::copy::snapshot_to_sqlite(&self.pg, path)
    }

    fn create_org(&self, org: &OrgRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO organisations (id, name, trial_expires_at, created_at) VALUES ($1, $2, $3, $4)",
                args![&org.id, &org.name, &org.trial_expires_at, org.created_at],
            )
            .map_err(unique("organisation"))?;
            append(tx, audit).map(drop)
        })
    }

    fn org_by_name(&self, name: &str) -> Result<Option<OrgRecord>> {
        self.one(
            "SELECT * FROM organisations WHERE name = $1",
            args![name],
            rows::org,
        )
    }

    fn org_by_id(&self, id: &str) -> Result<Option<OrgRecord>> {
        self.one(
            "SELECT * FROM organisations WHERE id = $1",
            args![id],
            rows::org,
        )
    }

    fn organisation_ids(&self) -> Result<Vec<String>> {
        self.pg
            .rows(
                "SELECT id FROM organisations ORDER BY created_at, id",
                Vec::new(),
            )?
            .iter()
            .map(|row| sqlx::Row::try_get(row, "id").map_err(ServiceError::storage))
            .collect()
    }

    fn create_user(&self, user: &UserRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, org_id, username, password_hash, roles, totp_sealed,
                    totp_pending_sealed, totp_last_step, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                args![
                    &user.id,
                    &user.org_id,
                    &user.username,
                    &user.password_hash,
                    json(&user.roles),
                    &user.totp_sealed,
                    &user.totp_pending_sealed,
                    user.totp_last_step,
                    user.created_at
                ],
            )
            .map_err(unique("user"))?;
            append(tx, audit).map(drop)
        })
    }

    fn user_by_name(&self, org_id: &str, username: &str) -> Result<Option<UserRecord>> {
        self.one(
            "SELECT * FROM users WHERE org_id = $1 AND username = $2",
            args![org_id, username],
            rows::user,
        )
    }

    fn user_by_id(&self, org_id: &str, id: &str) -> Result<Option<UserRecord>> {
        self.one(
            "SELECT * FROM users WHERE org_id = $1 AND id = $2",
            args![org_id, id],
            rows::user,
        )
    }

    fn list_users(&self, org_id: &str) -> Result<Vec<UserRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM users WHERE org_id = $1 ORDER BY username",
                args![org_id],
            )?,
            rows::user,
        )
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
            // Each is one conditional UPDATE: a racing writer's change is re-checked after its lock,
            // so two logins cannot both use one code.
            let changed = match update {
                TotpUpdate::SetPending(sealed) => tx.execute(
                    "UPDATE users SET totp_pending_sealed = $3 WHERE org_id = $1 AND id = $2",
                    args![org_id, user_id, sealed],
                ),
                TotpUpdate::ConfirmPending { step } => tx.execute(
                    "UPDATE users SET totp_sealed = totp_pending_sealed, totp_pending_sealed = NULL,
                        totp_last_step = $3
                     WHERE org_id = $1 AND id = $2 AND totp_pending_sealed IS NOT NULL",
                    args![org_id, user_id, *step],
                ),
                TotpUpdate::UsedStep(step) => tx.execute(
                    "UPDATE users SET totp_last_step = $3
                     WHERE org_id = $1 AND id = $2 AND totp_last_step < $3",
                    args![org_id, user_id, *step],
                ),
            }?;
            if changed != 1 {
                return Err(ServiceError::LoginFailed.into());
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                args![
                    &credential.id,
                    &credential.org_id,
                    credential.kind.as_str(),
                    &credential.name,
                    &credential.user_id,
                    &credential.secret_hash,
                    json(&credential.operations),
                    json(&credential.key_scope),
                    credential.environment.as_str(),
                    credential.mfa_verified,
                    credential.created_at,
                    credential.expires_at,
                    &credential.revoked_at
                ],
            )
            .map_err(unique("credential"))?;
            append(tx, audit).map(drop)
        })
    }

    fn credential_by_id(&self, id: &str) -> Result<Option<CredentialRecord>> {
        self.one(
            "SELECT * FROM credentials WHERE id = $1",
            args![id],
            rows::credential,
        )
    }

    fn list_access_tokens(&self, org_id: &str) -> Result<Vec<CredentialRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM credentials WHERE org_id = $1 AND kind = 'access' ORDER BY created_at, id",
                args![org_id],
            )?,
            rows::credential,
        )
    }

    fn revoke_credential(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool> {
        self.write(|tx| {
            let Some(row) = tx.row(
                "SELECT revoked_at FROM credentials WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE",
                args![org_id, id],
            )?
            else {
                return Ok(false);
            };
            let revoked_at: Option<i64> = sqlx::Row::try_get(&row, "revoked_at")?;
            if revoked_at.is_none() {
                tx.execute(
                    "UPDATE credentials SET revoked_at = $3 WHERE org_id = $1 AND id = $2",
                    args![org_id, id, at],
                )?;
                append(tx, audit)?;
            }
            Ok(true)
        })
    }

    fn create_key(&self, key: &KeyRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO keys (id, org_id, label, algorithm, environment, public_key, sealed_private_key,
                    certificates, policy, state, locked, created_at, purge_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                args![
                    &key.id,
                    &key.org_id,
                    &key.label,
                    key.algorithm.as_str(),
                    key.environment.as_str(),
                    &key.public_key,
                    &key.sealed_private_key,
                    certificates_json(key),
                    json(&key.policy),
                    enum_name(&key.state),
                    key.locked,
                    key.created_at,
                    &key.purge_at
                ],
            )
            .map_err(unique("key with this label"))?;
            append(tx, audit).map(drop)
        })
    }

    fn key_by_id(&self, org_id: &str, id: &str) -> Result<Option<KeyRecord>> {
        self.one(
            "SELECT * FROM keys WHERE org_id = $1 AND id = $2",
            args![org_id, id],
            rows::key,
        )
    }

    fn list_keys(&self, org_id: &str, environment: Environment) -> Result<Vec<KeyRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM keys WHERE org_id = $1 AND environment = $2 ORDER BY created_at, id",
                args![org_id, environment.as_str()],
            )?,
            rows::key,
        )
    }

    fn update_key(&self, org_id: &str, id: &str, update: &mut KeyUpdate<'_>) -> Result<KeyRecord> {
        self.write(|tx| {
            let row = tx
                .row(
                    "SELECT * FROM keys WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE",
                    args![org_id, id],
                )?
                .ok_or(ServiceError::NotFound("key"))?;
            let mut key = rows::key(&row)?;
            let event = update(&mut key)?;
            tx.execute(
                "UPDATE keys SET certificates = $3, policy = $4, state = $5, locked = $6, purge_at = $7
                 WHERE org_id = $1 AND id = $2",
                args![
                    org_id,
                    id,
                    certificates_json(&key),
                    json(&key.policy),
                    enum_name(&key.state),
                    key.locked,
                    &key.purge_at
                ],
            )?;
            append(tx, &event)?;
            Ok(key)
        })
    }

    fn purge_due_keys(&self, now: i64) -> Result<Vec<String>> {
        self.write(|tx| purge_due_keys(tx, now))
    }

    fn create_signing_request(
        &self,
        request: SigningRequestRecord,
        window: Option<ApprovalWindowQuery>,
        finish: &mut RequestFinish<'_>,
        audit: &AuditEvent,
    ) -> Result<Idempotent> {
        // PostgreSQL text holds no NUL; idempotency keys are printable ASCII, so a newline separates.
        let idempotency = format!(
            "{}\n{}\n{}",
            request.org_id, request.requester_id, request.idempotency_key
        );
        self.write(|tx| {
            // Requests with one idempotency key wait for each other here, so the second sees the
            // first's row instead of signing again; the unique constraint stays the backstop.
            tx.lock(LOCK_IDEMPOTENCY, &idempotency)?;
            let existing = tx.row(
                "SELECT * FROM signing_requests
                 WHERE org_id = $1 AND requester_id = $2 AND idempotency_key = $3",
                args![
                    &request.org_id,
                    &request.requester_id,
                    &request.idempotency_key
                ],
            )?;
            if let Some(existing) = existing {
                return Ok(Idempotent::Existing(rows::request(&existing)?));
            }
            let mut request = request.clone();
            if let Some(window) = window {
                request.window_of = open_window(tx, &request, &window)?;
            }
            finish(&mut request)?;
            insert_request(tx, &request)?;
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
        self.one(
            "SELECT * FROM signing_requests WHERE org_id = $1 AND id = $2",
            args![org_id, id],
            rows::request,
        )
    }

    fn list_signing_requests(
        &self,
        org_id: &str,
        status: Option<SigningRequestStatus>,
    ) -> Result<Vec<SigningRequestRecord>> {
        let status = status.map(|s| enum_name(&s));
        all(
            self.pg.rows(
                "SELECT * FROM signing_requests WHERE org_id = $1 AND ($2::TEXT IS NULL OR status = $2)
                 ORDER BY created_at, id",
                args![org_id, status],
            )?,
            rows::request,
        )
    }

    fn update_signing_request(
        &self,
        org_id: &str,
        id: &str,
        update: &mut RequestUpdate<'_>,
    ) -> Result<SigningRequestRecord> {
        self.write(|tx| {
            let row = tx
                .row(
                    "SELECT * FROM signing_requests WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE",
                    args![org_id, id],
                )?
                .ok_or(ServiceError::NotFound("signing request"))?;
            let mut request = rows::request(&row)?;
            let event = update(&mut request)?;
            update_request(tx, &request)?;
            append(tx, &event)?;
            Ok(request)
        })
    }

    fn append_audit(&self, audit: &AuditEvent) -> Result<AuditRecord> {
        self.write(|tx| append(tx, audit))
    }

    fn audit_records(&self, org_id: &str, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM audit_records WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                args![org_id, seq_arg(after_seq), limit],
            )?,
            rows::audit,
        )
    }

    fn search_audit(&self, org_id: &str, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM audit_records WHERE org_id = $1 AND seq > $2
                   AND ($4::TEXT IS NULL OR action = $4) AND ($5::TEXT IS NULL OR target = $5)
                   AND ($6::BIGINT IS NULL OR at >= $6) AND ($7::BIGINT IS NULL OR at < $7)
                 ORDER BY seq LIMIT $3",
                args![
                    org_id,
                    seq_arg(filter.after_seq),
                    filter.limit,
                    &filter.action,
                    &filter.target,
                    &filter.since,
                    &filter.until
                ],
            )?,
            rows::audit,
        )
    }

    fn audit_head(&self, org_id: &str) -> Result<Option<(u64, String)>> {
        self.one(
            "SELECT seq, hash FROM audit_records WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
            args![org_id],
            |row| {
                let hash = sqlx::Row::try_get(row, "hash").map_err(ServiceError::storage)?;
                Ok((rows::seq(row, "seq")?, hash))
            },
        )
    }

    fn save_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()> {
        let seq = i64::try_from(checkpoint.seq)
            .map_err(|_| ServiceError::Storage("checkpoint sequence number out of range".into()))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit_checkpoints (org_id, seq, head_hash, at, public_key, signature)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (org_id, seq) DO NOTHING",
                args![
                    &checkpoint.organisation_id,
                    seq,
                    &checkpoint.head_hash,
                    checkpoint.at,
                    checkpoint.public_key.as_slice(),
                    checkpoint.signature.as_slice()
                ],
            )
            .map_err(race)?;
            Ok(())
        })
    }

    fn checkpoints(&self, org_id: &str) -> Result<Vec<AuditCheckpoint>> {
        all(
            self.pg.rows(
                "SELECT * FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq",
                args![org_id],
            )?,
            rows::checkpoint,
        )
    }

    fn take_rate_tokens(&self, buckets: &[RateBucket], now_ms: i64) -> Result<Option<u64>> {
        if buckets.is_empty() {
            return Ok(None);
        }
        self.write(|tx| take_tokens(tx, buckets, now_ms))
    }

    fn service_secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.one(
            "SELECT sealed FROM service_secrets WHERE name = $1",
            args![name],
            |row| sqlx::Row::try_get(row, "sealed").map_err(ServiceError::storage),
        )
    }

    fn put_service_secret(&self, name: &str, sealed: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO service_secrets (name, sealed) VALUES ($1, $2)",
                args![name, sealed],
            )
            .map_err(unique("service secret"))?;
            Ok(())
        })
    }
}

/// Sequence numbers are BIGINT; anything past `i64::MAX` means "after everything".
fn seq_arg(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
