-- The SQLite schema before versioned migrations (databases marked `PRAGMA user_version = 1`). Run, all
-- idempotent, on such a database before it is recorded as being at migration 1, so a file written by any
-- earlier build gains the tables that build may have lacked. Never run on new databases.
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    trial_expires_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    totp_sealed BLOB,
    totp_pending_sealed BLOB,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, username)
);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT,
    secret_hash BLOB NOT NULL,
    operations TEXT NOT NULL,
    key_scope TEXT NOT NULL,
    environment TEXT NOT NULL,
    mfa_verified INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    label TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    environment TEXT NOT NULL,
    public_key BLOB NOT NULL,
    sealed_private_key BLOB NOT NULL,
    certificates TEXT NOT NULL,
    policy TEXT NOT NULL,
    state TEXT NOT NULL,
    locked INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    purge_at INTEGER,
    UNIQUE (org_id, environment, label)
);
CREATE TABLE IF NOT EXISTS signing_requests (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    key_id TEXT NOT NULL REFERENCES keys(id),
    credential_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    mechanism TEXT NOT NULL,
    digest BLOB NOT NULL,
    data BLOB,
    artifact TEXT NOT NULL,
    status TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    approvals TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    signature BLOB,
    completed_at INTEGER,
    -- The approved request whose approval window this request was signed under.
    window_of TEXT,
    UNIQUE (org_id, requester_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS signing_requests_status ON signing_requests (org_id, status);
CREATE INDEX IF NOT EXISTS signing_requests_window
    ON signing_requests (org_id, key_id, requester_id, completed_at);
CREATE TABLE IF NOT EXISTS audit_records (
    org_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
-- Append-only at the database level too; verification still catches anyone who drops these triggers.
CREATE TRIGGER IF NOT EXISTS audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TABLE IF NOT EXISTS service_secrets (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);
-- Signed chain heads; a later audit verify proves history up to each was not rewritten or truncated.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    org_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (org_id, seq)
);
-- Token buckets for rate limits, shared by every process that uses this database.
CREATE TABLE IF NOT EXISTS rate_buckets (
    name TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_ms INTEGER NOT NULL
);
