-- Migration 1: the service's tables. Portable SQL; `{blob}` is the dialect's byte-string type (BLOB on
-- SQLite, BYTEA on PostgreSQL). Integers are BIGINT (times are Unix seconds or milliseconds), flags are
-- 0/1 BIGINTs, lists and maps are JSON text, enums their stable wire names.
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    trial_expires_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    totp_sealed {blob},
    totp_pending_sealed {blob},
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, username)
);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT,
    secret_hash {blob} NOT NULL,
    operations TEXT NOT NULL,
    key_scope TEXT NOT NULL,
    environment TEXT NOT NULL,
    mfa_verified BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    label TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    environment TEXT NOT NULL,
    public_key {blob} NOT NULL,
    sealed_private_key {blob} NOT NULL,
    certificates TEXT NOT NULL,
    policy TEXT NOT NULL,
    state TEXT NOT NULL,
    locked BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    purge_at BIGINT,
    UNIQUE (org_id, environment, label)
);
CREATE TABLE signing_requests (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    key_id TEXT NOT NULL REFERENCES keys(id),
    credential_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint {blob} NOT NULL,
    mechanism TEXT NOT NULL,
    digest {blob} NOT NULL,
    data {blob},
    artifact TEXT NOT NULL,
    status TEXT NOT NULL,
    approvals_required BIGINT NOT NULL,
    approvals TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    signature {blob},
    completed_at BIGINT,
    -- The approved request whose approval window this request was signed under.
    window_of TEXT,
    UNIQUE (org_id, requester_id, idempotency_key)
);
CREATE INDEX signing_requests_status ON signing_requests (org_id, status);
CREATE INDEX signing_requests_window
    ON signing_requests (org_id, key_id, requester_id, completed_at);
CREATE TABLE audit_records (
    org_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE TABLE service_secrets (
    name TEXT PRIMARY KEY,
    sealed {blob} NOT NULL
);
-- Signed chain heads; a later audit verify proves history up to each was not rewritten or truncated.
CREATE TABLE audit_checkpoints (
    org_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    public_key {blob} NOT NULL,
    signature {blob} NOT NULL,
    PRIMARY KEY (org_id, seq)
);
-- Token buckets for rate limits, shared by every process that uses this database.
CREATE TABLE rate_buckets (
    name TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL
);
