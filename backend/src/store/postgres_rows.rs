//! Row mapping for the PostgreSQL store: the same columns and encodings as the SQLite store (enums by
//! their wire names, lists and maps as JSON text, flags as 0/1), read from `sqlx` rows.

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use cryptera_proto::keys::{KeyAlgorithm, KeyState, Mechanism};
use cryptera_proto::sign::SigningRequestStatus;
use cryptera_proto::{Base64Bytes, Environment};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{
    CredentialKind, CredentialRecord, KeyRecord, OrgRecord, SigningRequestRecord, UserRecord,
};
use crate::error::{Result, ServiceError};

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|err| ServiceError::Storage(format!("column {column}: {err}")))
}

fn json_column<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text)
        .map_err(|err| ServiceError::Storage(format!("column {column}: {err}")))
}

/// A unit enum stored by its wire name.
fn enum_column<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| bad_value(column, &text))
}

fn bad_value(what: &str, value: &str) -> ServiceError {
    ServiceError::Storage(format!("unknown {what} {value:?}"))
}

fn flag(row: &PgRow, column: &str) -> Result<bool> {
    Ok(get::<i64>(row, column)? != 0)
}

fn environment(row: &PgRow) -> Result<Environment> {
    let text: String = get(row, "environment")?;
    Environment::parse(&text).ok_or_else(|| bad_value("environment", &text))
}

pub(super) fn seq(row: &PgRow, column: &str) -> Result<u64> {
    u64::try_from(get::<i64>(row, column)?)
        .map_err(|_| ServiceError::Storage(format!("column {column}: negative sequence number")))
}

pub(super) fn org(row: &PgRow) -> Result<OrgRecord> {
    Ok(OrgRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        trial_expires_at: get(row, "trial_expires_at")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn user(row: &PgRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        roles: json_column(row, "roles")?,
        totp_sealed: get(row, "totp_sealed")?,
        totp_pending_sealed: get(row, "totp_pending_sealed")?,
        totp_last_step: get(row, "totp_last_step")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn credential(row: &PgRow) -> Result<CredentialRecord> {
    let kind: String = get(row, "kind")?;
    Ok(CredentialRecord {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        kind: match kind.as_str() {
            "access" => CredentialKind::Access,
            "session" => CredentialKind::Session,
            other => return Err(bad_value("credential kind", other)),
        },
        name: get(row, "name")?,
        user_id: get(row, "user_id")?,
        secret_hash: get(row, "secret_hash")?,
        operations: json_column(row, "operations")?,
        key_scope: json_column(row, "key_scope")?,
        environment: environment(row)?,
        mfa_verified: flag(row, "mfa_verified")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(super) fn key(row: &PgRow) -> Result<KeyRecord> {
    let algorithm: String = get(row, "algorithm")?;
    let certificates: Vec<Base64Bytes> = json_column(row, "certificates")?;
    Ok(KeyRecord {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        label: get(row, "label")?,
        algorithm: KeyAlgorithm::parse(&algorithm)
            .ok_or_else(|| bad_value("algorithm", &algorithm))?,
        environment: environment(row)?,
        public_key: get(row, "public_key")?,
        sealed_private_key: get(row, "sealed_private_key")?,
        certificates: certificates.into_iter().map(|cert| cert.0).collect(),
        policy: json_column(row, "policy")?,
        state: enum_column::<KeyState>(row, "state")?,
        locked: flag(row, "locked")?,
        created_at: get(row, "created_at")?,
        purge_at: get(row, "purge_at")?,
    })
}

pub(super) fn request(row: &PgRow) -> Result<SigningRequestRecord> {
    let mechanism: String = get(row, "mechanism")?;
    Ok(SigningRequestRecord {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        key_id: get(row, "key_id")?,
        credential_id: get(row, "credential_id")?,
        requester_id: get(row, "requester_id")?,
        idempotency_key: get(row, "idempotency_key")?,
        fingerprint: get(row, "fingerprint")?,
        mechanism: Mechanism::parse(&mechanism)
            .ok_or_else(|| bad_value("mechanism", &mechanism))?,
        digest: get(row, "digest")?,
        data: get(row, "data")?,
        artifact: json_column(row, "artifact")?,
        status: enum_column::<SigningRequestStatus>(row, "status")?,
        approvals_required: u32::try_from(get::<i64>(row, "approvals_required")?)
            .map_err(|_| ServiceError::Storage("approvals_required out of range".into()))?,
        approvals: json_column(row, "approvals")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        signature: get(row, "signature")?,
        completed_at: get(row, "completed_at")?,
        window_of: get(row, "window_of")?,
    })
}

pub(super) fn audit(row: &PgRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: seq(row, "seq")?,
        organisation_id: get(row, "org_id")?,
        at: get(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        outcome: get(row, "outcome")?,
        details: json_column(row, "details")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

pub(super) fn checkpoint(row: &PgRow) -> Result<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        organisation_id: get(row, "org_id")?,
        seq: seq(row, "seq")?,
        head_hash: get(row, "head_hash")?,
        at: get(row, "at")?,
        algorithm: "ed25519".to_owned(),
        public_key: Base64Bytes(get(row, "public_key")?),
        signature: Base64Bytes(get(row, "signature")?),
    })
}

/// Maps every row with `map`, stopping at the first error.
pub(super) fn all<T>(rows: Vec<PgRow>, map: fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}
