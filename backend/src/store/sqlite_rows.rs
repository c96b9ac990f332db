//! Row mapping for the SQLite store: records to and from columns, enums by their stable wire names,
//! lists and maps as JSON text.

use cryptera_proto::audit::{AuditCheckpoint, AuditRecord};
use cryptera_proto::keys::{KeyAlgorithm, KeyState, Mechanism};
use cryptera_proto::sign::SigningRequestStatus;
use cryptera_proto::{Base64Bytes, Environment};
use rusqlite::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    CredentialKind, CredentialRecord, KeyRecord, OrgRecord, SigningRequestRecord, UserRecord,
};

pub(super) fn json<T: Serialize>(value: &T) -> String {
    // Only plain data types of this crate and proto are serialised; they cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
    })
}

pub(super) fn bad_value(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

pub(super) fn environment(text: &str) -> rusqlite::Result<Environment> {
    Environment::parse(text).ok_or_else(|| bad_value("environment", text))
}

pub(super) fn org_row(row: &Row<'_>) -> rusqlite::Result<OrgRecord> {
    Ok(OrgRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        trial_expires_at: row.get("trial_expires_at")?,
        created_at: row.get("created_at")?,
    })
}

pub(super) fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        username: row.get("username")?,
        password_hash: row.get("password_hash")?,
        roles: from_json(&row.get::<_, String>("roles")?)?,
        totp_sealed: row.get("totp_sealed")?,
        totp_pending_sealed: row.get("totp_pending_sealed")?,
        totp_last_step: row.get("totp_last_step")?,
        created_at: row.get("created_at")?,
    })
}

pub(super) fn credential_row(row: &Row<'_>) -> rusqlite::Result<CredentialRecord> {
    let kind: String = row.get("kind")?;
    Ok(CredentialRecord {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        kind: match kind.as_str() {
            "access" => CredentialKind::Access,
            "session" => CredentialKind::Session,
            other => return Err(bad_value("credential kind", other)),
        },
        name: row.get("name")?,
        user_id: row.get("user_id")?,
        secret_hash: row.get("secret_hash")?,
        operations: from_json(&row.get::<_, String>("operations")?)?,
        key_scope: from_json(&row.get::<_, String>("key_scope")?)?,
        environment: environment(&row.get::<_, String>("environment")?)?,
        mfa_verified: row.get("mfa_verified")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

pub(super) fn key_row(row: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let algorithm: String = row.get("algorithm")?;
    let certificates: Vec<Base64Bytes> = from_json(&row.get::<_, String>("certificates")?)?;
    let state: String = row.get("state")?;
    Ok(KeyRecord {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        label: row.get("label")?,
        algorithm: KeyAlgorithm::parse(&algorithm)
            .ok_or_else(|| bad_value("algorithm", &algorithm))?,
        environment: environment(&row.get::<_, String>("environment")?)?,
        public_key: row.get("public_key")?,
        sealed_private_key: row.get("sealed_private_key")?,
        certificates: certificates.into_iter().map(|cert| cert.0).collect(),
        policy: from_json(&row.get::<_, String>("policy")?)?,
        state: from_json::<KeyState>(&format!("\"{state}\""))?,
        locked: row.get("locked")?,
        created_at: row.get("created_at")?,
        purge_at: row.get("purge_at")?,
    })
}

pub(super) fn request_row(row: &Row<'_>) -> rusqlite::Result<SigningRequestRecord> {
    let mechanism: String = row.get("mechanism")?;
    let status: String = row.get("status")?;
    Ok(SigningRequestRecord {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        key_id: row.get("key_id")?,
        credential_id: row.get("credential_id")?,
        requester_id: row.get("requester_id")?,
        idempotency_key: row.get("idempotency_key")?,
        fingerprint: row.get("fingerprint")?,
        mechanism: Mechanism::parse(&mechanism)
            .ok_or_else(|| bad_value("mechanism", &mechanism))?,
        digest: row.get("digest")?,
        data: row.get("data")?,
        artifact: from_json(&row.get::<_, String>("artifact")?)?,
        status: from_json::<SigningRequestStatus>(&format!("\"{status}\""))?,
        approvals_required: row.get("approvals_required")?,
        approvals: from_json(&row.get::<_, String>("approvals")?)?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        signature: row.get("signature")?,
        completed_at: row.get("completed_at")?,
        window_of: row.get("window_of")?,
    })
}

pub(super) fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get::<_, i64>("seq")? as u64,
        organisation_id: row.get("org_id")?,
        at: row.get("at")?,
        actor: row.get("actor")?,
        action: row.get("action")?,
        target: row.get("target")?,
        outcome: row.get("outcome")?,
        details: from_json(&row.get::<_, String>("details")?)?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
    })
}

/// The wire name of a unit enum variant (`"pending"` for `Pending`).
pub(super) fn enum_name<T: Serialize>(value: &T) -> String {
    json(value).trim_matches('"').to_owned()
}

pub(super) fn checkpoint_row(row: &Row<'_>) -> rusqlite::Result<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        organisation_id: row.get("org_id")?,
        seq: row.get::<_, i64>("seq")? as u64,
        head_hash: row.get("head_hash")?,
        at: row.get("at")?,
        algorithm: "ed25519".to_owned(),
        public_key: Base64Bytes(row.get("public_key")?),
        signature: Base64Bytes(row.get("signature")?),
    })
}
