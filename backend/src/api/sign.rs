//! Signing: `POST /v1/keys/{id}/sign` with idempotency keys and approval windows; a request that
//! needs approvals is stored and answered with 202 (see `approvals.rs` for what happens next).
//!
//! The signature is made inside the storage transaction that records it (at once, or with the M-th
//! approval), so an idempotency key can never produce two signatures and a crash never leaves a
//! signature without its audit record.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::sign::{
    ArtifactMetadata, SignRequest, SignResponse, SigningRequestInfo, SigningRequestStatus,
    MAX_CI_ENTRIES, MAX_METADATA_LEN, MAX_SIGN_DATA_LEN,
};
use cryptera_proto::Base64Bytes;

use super::keys::{private_key_aad, visible_key};
use super::ApiJson;
use crate::auth::Caller;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::signing::{self, SignInput};
use crate::store::{ApprovalWindowQuery, Idempotent, KeyRecord, SigningRequestRecord};
use crate::util::{hex, new_id, now};

pub(super) fn info(request: &SigningRequestRecord) -> SigningRequestInfo {
    let mut status = request.status;
    if status == SigningRequestStatus::Pending && request.expires_at <= now() {
        status = SigningRequestStatus::Expired;
    }
    SigningRequestInfo {
        id: request.id.clone(),
        key_id: request.key_id.clone(),
        mechanism: request.mechanism,
        status,
        requester_id: request.requester_id.clone(),
        digest: Base64Bytes(request.digest.clone()),
        artifact: request.artifact.clone(),
        approvals_required: request.approvals_required,
        approvals: request.approvals.clone(),
        created_at: request.created_at,
        expires_at: request.expires_at,
        signature: request.signature.clone().map(Base64Bytes),
        approved_under: request.window_of.clone(),
    }
}

/// The HTTP answer for a request's current state.
fn answer(state: &AppState, request: &SigningRequestRecord) -> Result<Response> {
    let view = info(request);
    match (view.status, &request.signature) {
        (SigningRequestStatus::Completed, Some(signature)) => Ok(Json(SignResponse {
            request_id: request.id.clone(),
            key_id: request.key_id.clone(),
            mechanism: request.mechanism,
            signature: Base64Bytes(signature.clone()),
        })
        .into_response()),
        (SigningRequestStatus::Pending, _) => {
            let retry_after = state.config().approval_retry_after_secs;
            let location =
                HeaderValue::from_str(&cryptera_proto::paths::signing_request(&request.id))
                    .map_err(|_| ServiceError::Storage("request id not a header value".into()))?;
            Ok((
                StatusCode::ACCEPTED,
                [
                    (header::LOCATION, location),
                    (header::RETRY_AFTER, HeaderValue::from(retry_after)),
                ],
                Json(view),
            )
                .into_response())
        }
        _ => Err(ServiceError::RequestNotPending),
    }
}

/// Opens the key under the KEK and signs the request's input; the PKCS#8 is zeroized on return.
fn make_signature(
    state: &AppState,
    key: &KeyRecord,
    request: &SigningRequestRecord,
) -> Result<Vec<u8>> {
    let pkcs8 = state.kek().open(
        &private_key_aad(&key.id, &key.org_id, key.environment),
        &key.sealed_private_key,
    )?;
    let input = match &request.data {
        Some(data) => SignInput::Data(data),
        None => SignInput::Digest(&request.digest),
    };
    signing::sign(key.algorithm, &pkcs8, request.mechanism, &input)
}

pub(super) fn complete(
    state: &AppState,
    key: &KeyRecord,
    request: &mut SigningRequestRecord,
) -> Result<()> {
    request.signature = Some(make_signature(state, key, request)?);
    state.metrics().signature(&key.org_id, &key.id);
    request.status = SigningRequestStatus::Completed;
    request.completed_at = Some(now());
    request.data = None;
    Ok(())
}

fn fingerprint(key_id: &str, request: &SignRequest) -> Vec<u8> {
    let (kind, bytes) = match (&request.digest, &request.data) {
        (Some(digest), _) => ("digest", digest.as_slice()),
        (None, Some(data)) => ("data", data.as_slice()),
        (None, None) => ("none", &[][..]),
    };
    let mut text = format!("{key_id}\0{}\0{kind}\0", request.mechanism.as_str()).into_bytes();
    text.extend_from_slice(bytes);
    signing::sha256(&text)
}

fn check_sign_request(request: &SignRequest) -> Result<()> {
    let key = &request.idempotency_key;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::InvalidRequest(
            "idempotency_key must be 1 to 128 printable ASCII characters".into(),
        ));
    }
    check_metadata(&request.artifact)?;
    match (&request.digest, &request.data) {
        (Some(_), None) => Ok(()),
        (None, Some(data)) if data.0.len() <= MAX_SIGN_DATA_LEN => Ok(()),
        (None, Some(_)) => Err(ServiceError::InvalidRequest(format!(
            "data is limited to {MAX_SIGN_DATA_LEN} bytes; send a digest instead"
        ))),
        _ => Err(ServiceError::InvalidRequest(
            "send exactly one of `digest` and `data`".into(),
        )),
    }
}

/// Artifact and client descriptions are free text, but bounded.
fn check_metadata(artifact: &ArtifactMetadata) -> Result<()> {
    let client = artifact.client.clone().unwrap_or_default();
    let texts = [
        &artifact.name,
        &artifact.hash,
        &artifact.description,
        &client.host,
        &client.os_user,
        &client.program,
    ];
    let too_long = texts
        .iter()
        .filter_map(|t| t.as_deref())
        .chain(client.ci.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
        .any(|t| t.len() > MAX_METADATA_LEN);
    if too_long || client.ci.len() > MAX_CI_ENTRIES {
        return Err(ServiceError::InvalidRequest(format!(
            "artifact and client descriptions are limited to {MAX_METADATA_LEN} bytes each and \
             {MAX_CI_ENTRIES} CI identifiers"
        )));
    }
    Ok(())
}

pub async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
    ApiJson(request): ApiJson<SignRequest>,
) -> Result<Response> {
    caller.require(Operation::Sign)?;
    check_sign_request(&request)?;
    state
        .blocking(move |state| {
            let key = visible_key(state, &caller, &key_id).inspect_err(|err| {
                if matches!(err, ServiceError::EnvironmentMismatch { .. }) {
                    audit_refusal(state, &caller, &key_id, err);
                }
            })?;
            let outcome = sign_blocking(state, &caller, &key, &request);
            if let Err(err) = &outcome {
                if !matches!(err, ServiceError::Storage(_) | ServiceError::Crypto(_)) {
                    audit_refusal(state, &caller, &key.id, err);
                }
            }
            outcome
        })
        .await
}

fn audit_refusal(state: &AppState, caller: &Caller, key_id: &str, err: &ServiceError) {
    let code = serde_json::to_string(&err.code()).unwrap_or_default();
    let event = caller
        .audit("key.sign", key_id)
        .outcome(code.trim_matches('"'));
    if let Err(audit_err) = state.store().append_audit(&event) {
        tracing::error!(error = %audit_err, "could not audit a refused signature");
    }
}

fn sign_blocking(
    state: &AppState,
    caller: &Caller,
    key: &KeyRecord,
    request: &SignRequest,
) -> Result<Response> {
    if key.state != cryptera_proto::keys::KeyState::Active {
        return Err(ServiceError::KeyDeleted);
    }
    let input = match (&request.digest, &request.data) {
        (Some(digest), _) => SignInput::Digest(digest.as_slice()),
        (None, Some(data)) => SignInput::Data(data.as_slice()),
        (None, None) => return Err(ServiceError::InvalidRequest("nothing to sign".into())),
    };
    signing::check_input(key.algorithm, request.mechanism, &input)?;
    let allowed = &key.policy.allowed_mechanisms;
    if !allowed.is_empty() && !allowed.contains(&request.mechanism) {
        return Err(ServiceError::MechanismNotAllowed(
            request.mechanism.as_str(),
        ));
    }
    if let Some(per_minute) = key.policy.rate_limit_per_minute {
        crate::limits::take(state, &[crate::limits::key_bucket(&key.id, per_minute)])?;
    }
    let digest = match input {
        SignInput::Digest(digest) => digest.to_vec(),
        SignInput::Data(data) => signing::sha256(data),
    };
    let created_at = now();
    let record = SigningRequestRecord {
        id: new_id("req")?,
        org_id: caller.org.id.clone(),
        key_id: key.id.clone(),
        credential_id: caller.credential.id.clone(),
        requester_id: caller.actor().to_owned(),
        idempotency_key: request.idempotency_key.clone(),
        fingerprint: fingerprint(&key.id, request),
        mechanism: request.mechanism,
        digest: digest.clone(),
        data: request.data.as_ref().map(|data| data.0.clone()),
        artifact: request.artifact.clone(),
        status: SigningRequestStatus::Pending,
        approvals_required: key.policy.approvals_required,
        approvals: Vec::new(),
        created_at,
        expires_at: created_at + i64::try_from(key.policy.request_expiry_seconds).unwrap_or(86_400),
        signature: None,
        completed_at: None,
        window_of: None,
    };
    let window = key
        .policy
        .approval_window
        .map(|window| ApprovalWindowQuery {
            since: created_at - i64::from(window.hours) * 3600,
            max_signatures: window.max_signatures,
        });
    let artifact = &request.artifact;
    let audit = caller
        .audit("key.sign", &key.id)
        .detail("mechanism", request.mechanism.as_str())
        .detail("digest", hex(&digest))
        .detail("artifact_name", artifact.name.clone().unwrap_or_default())
        .detail("artifact_hash", artifact.hash.clone().unwrap_or_default())
        .detail(
            "artifact_description",
            artifact.description.clone().unwrap_or_default(),
        );
    let audit = match &artifact.client {
        Some(client) => audit
            .detail("client_host", client.host.clone().unwrap_or_default())
            .detail("client_user", client.os_user.clone().unwrap_or_default())
            .detail("client_program", client.program.clone().unwrap_or_default())
            .detail(
                "client_ci",
                client
                    .ci
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        None => audit,
    };
    let fingerprint = record.fingerprint.clone();
    let mut finish = |new: &mut SigningRequestRecord| {
        if new.approvals_required == 0 || new.window_of.is_some() {
            complete(state, key, new)?;
        }
        Ok(())
    };
    match state
        .store()
        .create_signing_request(record, window, &mut finish, &audit)?
    {
        Idempotent::Created(created) => answer(state, &created),
        Idempotent::Existing(existing) if existing.fingerprint == fingerprint => {
            answer(state, &existing)
        }
        Idempotent::Existing(_) => Err(ServiceError::IdempotencyConflict),
    }
}
