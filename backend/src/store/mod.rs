//! The storage boundary: records the service persists and the [`Store`] trait every backend implements.
//!
//! Each write method is one transaction that also appends the given audit event to the organisation's
//! hash chain, so a change and its audit record land together or not at all. Methods are synchronous;
//! handlers call them on the blocking pool. SQLite ([`sqlite::SqliteStore`], a file in the data
//! directory) is the embedded default; [`postgres::PgStore`] serves several processes from one
//! PostgreSQL database. Both run the same versioned migrations ([`migrate`]).

pub mod copy;
pub mod devices;
pub mod migrate;
pub mod postgres;
mod postgres_ca;
mod postgres_conn;
mod postgres_pool;
pub use postgres_pool::blocking_section;
mod postgres_rows;
mod postgres_tx;
pub mod sqlite;
mod sqlite_audit;
mod sqlite_ca;
mod sqlite_rows;
mod sqlite_tx;

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use cryptera_proto::auth::{KeyScope, Operation, Role};
use cryptera_proto::keys::{KeyAlgorithm, KeyPolicy, KeyState, Mechanism};
use cryptera_proto::sign::{ApprovalInfo, ArtifactMetadata, SigningRequestStatus};
use cryptera_proto::Environment;

use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};

/// Where the service keeps its data.
#[derive(Clone, Default)]
pub enum Database {
    /// `cryptera.db` in the data directory (zero configuration).
    #[default]
    DataDir,
    /// A PostgreSQL database shared by every service process, by URL (which may hold a password).
    Postgres(String),
}

impl Database {
    /// `None` (no `--database-url`) is the data directory's SQLite file; otherwise a `postgres://` or
    /// `postgresql://` URL.
    pub fn from_url(url: Option<&str>) -> Result<Self> {
        match url.map(str::trim).filter(|url| !url.is_empty()) {
            None => Ok(Self::DataDir),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres(url.to_owned()))
            }
            Some(_) => Err(ServiceError::InvalidRequest(
                "the database URL must start with postgres:// (SQLite needs no URL: it is the \
                 data directory's cryptera.db)"
                    .into(),
            )),
        }
    }

    /// Opens (creating and migrating as needed) the store; `sqlite_file` is the data directory's file.
    pub fn open(&self, sqlite_file: &std::path::Path) -> Result<std::sync::Arc<dyn Store>> {
        Ok(match self {
            Self::DataDir => std::sync::Arc::new(sqlite::SqliteStore::open(sqlite_file)?),
            Self::Postgres(url) => std::sync::Arc::new(postgres::PgStore::open(url)?),
        })
    }
}

/// The URL may carry a password: never print it.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DataDir => f.write_str("DataDir"),
            Self::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    /// Trial organisations stop working at this time.
    pub trial_expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct UserRecord {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// The confirmed TOTP secret, sealed under the KEK.
    pub totp_sealed: Option<Vec<u8>>,
    /// A TOTP secret awaiting confirmation, sealed under the KEK.
    pub totp_pending_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted, so a code is never accepted twice.
    pub totp_last_step: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

pub enum TotpUpdate {
    SetPending(Vec<u8>),
    ConfirmPending { step: i64 },
    UsedStep(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A machine access token created by an admin.
    Access,
    /// A user's login session.
    Session,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Session => "session",
        }
    }
}

/// An access token or user session. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug)]
pub struct CredentialRecord {
    pub id: String,
    pub org_id: String,
    pub kind: CredentialKind,
    pub name: String,
    pub user_id: Option<String>,
    pub secret_hash: Vec<u8>,
    pub operations: Vec<Operation>,
    pub key_scope: KeyScope,
    pub environment: Environment,
    pub mfa_verified: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub id: String,
    pub org_id: String,
    pub label: String,
    pub algorithm: KeyAlgorithm,
    pub environment: Environment,
    pub public_key: Vec<u8>,
    /// PKCS#8 private key sealed under the KEK (AAD: key id, organisation, environment).
    pub sealed_private_key: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
    pub policy: KeyPolicy,
    pub state: KeyState,
    pub locked: bool,
    pub created_at: i64,
    pub purge_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct SigningRequestRecord {
    pub id: String,
    pub org_id: String,
    pub key_id: String,
    /// The credential that asked; idempotency keys are scoped to it.
    pub credential_id: String,
    /// Pseudonymous requester: the user id for sessions, the token id for access tokens.
    pub requester_id: String,
    pub idempotency_key: String,
    /// SHA-256 over key id, mechanism and input: a retry must match it exactly.
    pub fingerprint: Vec<u8>,
    pub mechanism: Mechanism,
    /// The digest, or SHA-256 of the data for Ed25519.
    pub digest: Vec<u8>,
    /// The message for Ed25519 (kept until signed).
    pub data: Option<Vec<u8>>,
    pub artifact: ArtifactMetadata,
    pub status: SigningRequestStatus,
    pub approvals_required: u32,
    pub approvals: Vec<ApprovalInfo>,
    pub created_at: i64,
    pub expires_at: i64,
    pub signature: Option<Vec<u8>>,
    pub completed_at: Option<i64>,
    /// Set when signed without approvals under the approval window opened by that request.
    pub window_of: Option<String>,
}

/// An approval window to look for when creating a request: an approved request of the same key and
/// requester completed at or after `since`, with fewer than `max_signatures` signatures made under it.
#[derive(Clone, Copy, Debug)]
pub struct ApprovalWindowQuery {
    pub since: i64,
    pub max_signatures: u32,
}

/// A token bucket: `per_minute` tokens refill evenly over a minute, up to `per_minute` stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateBucket {
    pub name: String,
    pub per_minute: u32,
}

/// Which audit records to return (all fields optional except paging).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub after_seq: u64,
    pub limit: u32,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Records at or after this time.
    pub since: Option<i64>,
    /// Records before this time.
    pub until: Option<i64>,
}

/// Result of creating a signing request under an idempotency key.
pub enum Idempotent {
    Created(SigningRequestRecord),
    /// The idempotency key was used before: this is the earlier request, untouched.
    Existing(SigningRequestRecord),
}

/// Called inside the storage transaction with the locked row; returns the audit event for the change.
pub type RequestUpdate<'a> = dyn FnMut(&mut SigningRequestRecord) -> Result<AuditEvent> + 'a;
/// Called inside the storage transaction with the locked key row; returns the audit event for the change.
pub type KeyUpdate<'a> = dyn FnMut(&mut KeyRecord) -> Result<AuditEvent> + 'a;
/// Called inside the storage transaction for a new request (e.g. to sign it at once).
pub type RequestFinish<'a> = dyn FnMut(&mut SigningRequestRecord) -> Result<()> + 'a;

pub trait Store: Send + Sync {
    /// Cheap round trip to the database, for `/readyz`.
    fn ping(&self) -> Result<()>;
    /// Writes a transactionally consistent copy of the whole database to `path` (which must not exist).
    fn backup_to(&self, path: &std::path::Path) -> Result<()>;

    fn create_org(&self, org: &OrgRecord, audit: &AuditEvent) -> Result<()>;
    fn org_by_name(&self, name: &str) -> Result<Option<OrgRecord>>;
    fn org_by_id(&self, id: &str) -> Result<Option<OrgRecord>>;
    fn organisation_ids(&self) -> Result<Vec<String>>;

    fn create_user(&self, user: &UserRecord, audit: &AuditEvent) -> Result<()>;
    fn user_by_name(&self, org_id: &str, username: &str) -> Result<Option<UserRecord>>;
    fn user_by_id(&self, org_id: &str, id: &str) -> Result<Option<UserRecord>>;
    fn list_users(&self, org_id: &str) -> Result<Vec<UserRecord>>;
    /// Erases a person (GDPR): the user row keeps only its pseudonymous id (name replaced, password and
    /// TOTP removed, no roles), their sessions are revoked and their name is scrubbed from approvals.
    /// Audit records name only the id, so the chain is untouched. Returns false if no such user.
    fn erase_user(&self, org_id: &str, user_id: &str, at: i64, audit: &AuditEvent) -> Result<bool>;
    fn update_user_totp(
        &self,
        org_id: &str,
        user_id: &str,
        update: &TotpUpdate,
        audit: Option<&AuditEvent>,
    ) -> Result<()>;

    fn create_credential(&self, credential: &CredentialRecord, audit: &AuditEvent) -> Result<()>;
    fn credential_by_id(&self, id: &str) -> Result<Option<CredentialRecord>>;
    fn list_access_tokens(&self, org_id: &str) -> Result<Vec<CredentialRecord>>;
    /// Returns false when no such credential exists in the organisation.
    fn revoke_credential(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool>;

    fn create_key(&self, key: &KeyRecord, audit: &AuditEvent) -> Result<()>;
    fn key_by_id(&self, org_id: &str, id: &str) -> Result<Option<KeyRecord>>;
    /// Keys of an environment that are not destroyed.
    fn list_keys(&self, org_id: &str, environment: Environment) -> Result<Vec<KeyRecord>>;
    /// Reads the key inside a transaction, lets `update` change its mutable fields (certificates,
    /// policy, state, lock, purge time), writes it back with the audit event `update` returns.
    fn update_key(&self, org_id: &str, id: &str, update: &mut KeyUpdate<'_>) -> Result<KeyRecord>;
    /// Destroys keys whose scheduled deletion is due: the sealed private key is erased and the state
    /// becomes `destroyed`, each with an audit record. Returns the ids destroyed.
    fn purge_due_keys(&self, now: i64) -> Result<Vec<String>>;

    /// Inserts `request` unless its `(credential, idempotency key)` was used before, in which case the
    /// earlier request is returned and `finish` is not called. With `window`, an open approval window is
    /// looked up first and recorded in `window_of`. `finish` runs inside the transaction.
    fn create_signing_request(
        &self,
        request: SigningRequestRecord,
        window: Option<ApprovalWindowQuery>,
        finish: &mut RequestFinish<'_>,
        audit: &AuditEvent,
    ) -> Result<Idempotent>;
    fn signing_request(&self, org_id: &str, id: &str) -> Result<Option<SigningRequestRecord>>;
    fn list_signing_requests(
        &self,
        org_id: &str,
        status: Option<SigningRequestStatus>,
    ) -> Result<Vec<SigningRequestRecord>>;
    /// Reads the request inside a transaction, lets `update` change it, writes it back with the audit
    /// event `update` returns. If `update` fails nothing is written.
    fn update_signing_request(
        &self,
        org_id: &str,
        id: &str,
        update: &mut RequestUpdate<'_>,
    ) -> Result<SigningRequestRecord>;

    /// Appends an event that changes nothing else (e.g. a refused operation).
    fn append_audit(&self, audit: &AuditEvent) -> Result<AuditRecord>;
    fn audit_records(&self, org_id: &str, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>>;
    /// Records matching `filter`, in chain order.
    fn search_audit(&self, org_id: &str, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
    fn audit_head(&self, org_id: &str) -> Result<Option<(u64, String)>>;
    /// Keeps a signed checkpoint (the first one per `(organisation, seq)` wins).
    fn save_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// Stored checkpoints of an organisation, oldest first.
    fn checkpoints(&self, org_id: &str) -> Result<Vec<AuditCheckpoint>>;

    /// Takes one token from each bucket, all or none, refilling by elapsed time first. Returns the
    /// seconds to wait when a bucket is empty (then nothing is taken).
    fn take_rate_tokens(&self, buckets: &[RateBucket], now_ms: i64) -> Result<Option<u64>>;

    /// Service-wide sealed secrets (e.g. the audit checkpoint key).
    fn service_secret(&self, name: &str) -> Result<Option<Vec<u8>>>;
    fn put_service_secret(&self, name: &str, sealed: &[u8]) -> Result<()>;

    /// Device certificate provisioning (issue 10); `None` where this database does not have it yet.
    fn devices(&self) -> Option<&dyn devices::DeviceStore> {
        None
    }
}
