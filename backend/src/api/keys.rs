//! Keys: generation under the KEK, listing and reading public keys (with `ETag` / `If-None-Match`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::keys::{CreateKeyRequest, KeyAlgorithm, KeyInfo, KeyList, KeyPolicy, KeyState};
use cryptera_proto::{Base64Bytes, Environment};
use serde::Serialize;

use super::{check_name, ApiJson};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{Result, ServiceError};
use crate::kek::{Aad, KekSource};
use crate::server::AppState;
use crate::signing;
use crate::store::{KeyRecord, OrgRecord};
use crate::util::{hex, new_id, now};

/// Keys a trial organisation may hold.
pub const TRIAL_KEY_QUOTA: usize = 5;

pub fn key_info(key: &KeyRecord) -> KeyInfo {
    KeyInfo {
        id: key.id.clone(),
        label: key.label.clone(),
        algorithm: key.algorithm,
        environment: key.environment,
        public_key: Base64Bytes(key.public_key.clone()),
        certificates: key.certificates.iter().cloned().map(Base64Bytes).collect(),
        policy: key.policy.clone(),
        state: key.state,
        locked: key.locked,
        created_at: key.created_at,
        purge_at: key.purge_at,
    }
}

/// The AAD that binds a sealed private key to its row.
pub fn private_key_aad(key_id: &str, org_id: &str, environment: Environment) -> Aad {
    Aad::new("cryptera-key-v1", &[key_id, org_id, environment.as_str()])
}

/// Generates a key in `environment` (CLI and `POST /v1/keys`).
pub fn create_key(
    state: &AppState,
    org: &OrgRecord,
    audit: AuditEvent,
    environment: Environment,
    request: &CreateKeyRequest,
) -> Result<KeyRecord> {
    check_name("key label", &request.label)?;
    check_policy(request.algorithm, &request.policy)?;
    if environment == Environment::Production
        && state.kek().source() != KekSource::Pkcs11
        && !state.config().allow_production_with_file_kek
    {
        return Err(ServiceError::ProductionRequiresHsmKek);
    }
    if org.trial_expires_at.is_some()
        && state.store().list_keys(&org.id, environment)?.len() >= TRIAL_KEY_QUOTA
    {
        return Err(ServiceError::QuotaExceeded(
            "trial organisations hold at most 5 keys",
        ));
    }
    let id = new_id("key")?;
    let generated = signing::generate(request.algorithm)?;
    let sealed = state.kek().seal(
        &private_key_aad(&id, &org.id, environment),
        &generated.pkcs8,
    )?;
    drop(generated.pkcs8);
    let key = KeyRecord {
        id,
        org_id: org.id.clone(),
        label: request.label.clone(),
        algorithm: request.algorithm,
        environment,
        public_key: generated.public_key_spki,
        sealed_private_key: sealed,
        certificates: Vec::new(),
        policy: request.policy.clone(),
        state: KeyState::Active,
        locked: false,
        created_at: now(),
        purge_at: None,
    };
    let mut audit = audit;
    audit.target.clone_from(&key.id);
    let audit = audit
        .detail("label", key.label.clone())
        .detail("algorithm", key.algorithm.as_str())
        .detail("environment", environment.as_str())
        .detail(
            "policy",
            serde_json::to_string(&key.policy).unwrap_or_default(),
        );
    state.store().create_key(&key, &audit)?;
    Ok(key)
}

/// Checks a policy against the key's algorithm and the service's bounds (create and policy update).
pub fn check_policy(algorithm: KeyAlgorithm, policy: &KeyPolicy) -> Result<()> {
    let supported = algorithm.mechanisms();
    if let Some(bad) = policy
        .allowed_mechanisms
        .iter()
        .find(|m| !supported.contains(m))
    {
        return Err(ServiceError::UnsupportedMechanism(format!(
            "{} cannot be used with a {} key",
            bad.as_str(),
            algorithm.as_str()
        )));
    }
    if !policy.approvers.is_empty() && policy.approvals_required as usize > policy.approvers.len() {
        return Err(ServiceError::InvalidRequest(
            "approvals_required is larger than the approver group".into(),
        ));
    }
    if policy.request_expiry_seconds == 0 || policy.request_expiry_seconds > 30 * 86_400 {
        return Err(ServiceError::InvalidRequest(
            "request_expiry_seconds must be between 1 and 30 days".into(),
        ));
    }
    // A bucket of 0 would silently become 1 per minute (limits.rs keeps every bucket at least 1).
    if policy.rate_limit_per_minute == Some(0) {
        return Err(ServiceError::InvalidRequest(
            "rate_limit_per_minute must be at least 1 (leave it out for no key limit)".into(),
        ));
    }
    if let Some(window) = policy.approval_window {
        if window.max_signatures == 0 || window.hours == 0 || window.hours > 30 * 24 {
            return Err(ServiceError::InvalidRequest(
                "an approval window needs max_signatures >= 1 and 1 to 720 hours".into(),
            ));
        }
    }
    Ok(())
}

/// Finds a key the caller may see and use in its environment, or the error to answer with.
pub fn visible_key(state: &AppState, caller: &Caller, id: &str) -> Result<KeyRecord> {
    let key = state
        .store()
        .key_by_id(&caller.org.id, id)?
        .filter(|key| caller.can_use_key(key) && key.state != KeyState::Destroyed)
        // Out of scope looks exactly like nonexistent, so tokens cannot probe for keys.
        .ok_or(ServiceError::NotFound("key"))?;
    if key.environment != caller.credential.environment {
        return Err(ServiceError::EnvironmentMismatch {
            key: key.environment,
            credential: caller.credential.environment,
        });
    }
    Ok(key)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<KeyInfo>)> {
    caller.require(Operation::Keygen)?;
    let key = state
        .blocking(move |state| {
            let audit = caller.audit("key.create", "");
            create_key(
                state,
                &caller.org,
                audit,
                caller.credential.environment,
                &request,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(key_info(&key))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response> {
    caller.require(Operation::Read)?;
    let keys = state
        .db(move |store| {
            let keys = store.list_keys(&caller.org.id, caller.credential.environment)?;
            Ok(keys
                .iter()
                .filter(|key| caller.can_use_key(key) && key.state != KeyState::Destroyed)
                .map(key_info)
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(with_etag(&headers, &KeyList { keys }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    caller.require(Operation::Read)?;
    let key = state
        .blocking(move |state| visible_key(state, &caller, &id))
        .await?;
    Ok(with_etag(&headers, &key_info(&key)))
}

/// Answers `body` with a strong `ETag` over its JSON, or `304` when `If-None-Match` already has it.
fn with_etag<T: Serialize>(headers: &HeaderMap, body: &T) -> Response {
    let json = serde_json::to_vec(body).unwrap_or_default();
    let etag = format!("\"{}\"", &hex(&signing::sha256(&json))[..32]);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        json,
    )
        .into_response()
}
