//! Device certificate provisioning over `/v1` (issue 10): CA creation and listing, enrolment from a
//! CSR, the device registry (get, search, JSON-lines export), revocation and the CRL. The work itself
//! is in [`crate::ca::issue`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use cryptera_proto::auth::Operation;
use cryptera_proto::devices::{
    AuthMethod, CaList, CaSigningRecordList, CertificateProfile, CreateCaRequest, DeviceInfo,
    DeviceList, EnrollRequest, EnrollResponse, RevokeRequest,
};
use serde::Deserialize;

use super::ApiJson;
use crate::auth::Caller;
use crate::ca::issue::{self, device_store, Enrolment};
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::devices::CaRecordFilter;
use crate::util::wildcard_match;

/// Whether the caller may enrol `device_id`: users any device of their organisation, access tokens
/// the device ids their key scope names (ids or label patterns such as `line-3-*`).
pub fn can_enrol(caller: &Caller, device_id: &str) -> bool {
    if caller.is_user() {
        return true;
    }
    let scope = &caller.credential.key_scope;
    scope.ids.iter().any(|id| id == device_id)
        || scope
            .label_patterns
            .iter()
            .any(|pattern| wildcard_match(pattern, device_id))
}

fn default_public_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

pub async fn create_cas(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateCaRequest>,
) -> Result<(StatusCode, Json<CaList>)> {
    caller.require(Operation::Admin)?;
    let public_url = request
        .public_url
        .unwrap_or_else(|| default_public_url(&headers));
    let (root, issuing) = state
        .blocking(move |state| {
            issue::create_cas(
                state,
                &caller.org,
                caller.credential.environment,
                &public_url,
                caller.audit("ca.create", ""),
            )
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CaList {
            cas: vec![issue::ca_info(&root), issue::ca_info(&issuing)],
        }),
    ))
}

pub async fn list_cas(State(state): State<AppState>, caller: Caller) -> Result<Json<CaList>> {
    caller.require(Operation::Read)?;
    let cas = state
        .blocking(move |state| {
            device_store(state)?.cas(&caller.org.id, caller.credential.environment)
        })
        .await?;
    Ok(Json(CaList {
        cas: cas.iter().map(issue::ca_info).collect(),
    }))
}

/// `GET /v1/cas/{id}/crl`: unauthenticated, as relying parties fetch it from the certificate.
pub async fn crl(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let der = state.blocking(move |state| issue::crl(state, &id)).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pkix-crl"),
        )],
        der,
    )
        .into_response())
}

pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollResponse>)> {
    caller.require(Operation::Sign)?;
    if !can_enrol(&caller, &device_id) {
        return Err(ServiceError::NotFound("device in this token's scope"));
    }
    let csr = match (request.csr_pem, request.csr_der) {
        (Some(pem), None) => pem.into_bytes(),
        (None, Some(der)) => der.0,
        _ => {
            return Err(ServiceError::InvalidRequest(
                "send the CSR as exactly one of csr_pem or csr_der".into(),
            ))
        }
    };
    let response = enrol_as(
        &state,
        caller,
        device_id,
        csr,
        request.profile,
        request.renew,
    )
    .await?;
    let status = if response.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(response)))
}

/// Enrols `device_id` for an access token or user `caller` (already checked: `sign`, the device in
/// its scope), as the JSON API and EST do.
pub async fn enrol_as(
    state: &AppState,
    caller: Caller,
    device_id: String,
    csr: Vec<u8>,
    profile: CertificateProfile,
    renew: bool,
) -> Result<EnrollResponse> {
    state
        .blocking(move |state| {
            issue::enrol(
                state,
                Enrolment {
                    org: &caller.org,
                    environment: caller.credential.environment,
                    device_id: &device_id,
                    csr: &csr,
                    profile,
                    renew,
                    auth: AuthMethod::Bearer,
                    audit: caller.audit("device.certificate.issue", &device_id),
                },
            )
        })
        .await
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
    ApiJson(request): ApiJson<RevokeRequest>,
) -> Result<Json<DeviceInfo>> {
    caller.require(Operation::Admin)?;
    let device = state
        .blocking(move |state| {
            let audit = caller.audit("device.certificate.revoke", &device_id);
            issue::revoke(
                state,
                &caller.org.id,
                caller.credential.environment,
                &device_id,
                request.serial.as_deref(),
                request.reason,
                &audit,
            )?;
            device(state, &caller, &device_id)
        })
        .await?;
    Ok(Json(device))
}

fn device(state: &AppState, caller: &Caller, device_id: &str) -> Result<DeviceInfo> {
    let certs = device_store(state)?.device_certificates(
        &caller.org.id,
        caller.credential.environment,
        device_id,
    )?;
    issue::devices_of(&certs)
        .into_iter()
        .next()
        .ok_or(ServiceError::NotFound("device"))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<Json<DeviceInfo>> {
    caller.require(Operation::Read)?;
    let device = state
        .blocking(move |state| device(state, &caller, &device_id))
        .await?;
    Ok(Json(device))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeviceQuery {
    /// Devices whose id contains this text.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub limit: Option<u32>,
}

const MAX_DEVICES: u32 = 1000;

async fn search(state: &AppState, caller: Caller, query: DeviceQuery) -> Result<Vec<DeviceInfo>> {
    caller.require(Operation::Read)?;
    let limit = query.limit.unwrap_or(MAX_DEVICES).clamp(1, MAX_DEVICES);
    state
        .blocking(move |state| {
            let certs = device_store(state)?.search_devices(
                &caller.org.id,
                caller.credential.environment,
                &query.q,
                limit,
            )?;
            Ok(issue::devices_of(&certs))
        })
        .await
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: std::result::Result<Query<DeviceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeviceList>> {
    // A bad query string answers the JSON `invalid_request`, not axum's plain-text rejection.
    let Query(query) = query.map_err(|err| ServiceError::InvalidRequest(err.body_text()))?;
    let devices = search(&state, caller, query).await?;
    Ok(Json(DeviceList { devices }))
}

/// `GET /v1/devices/export`: one JSON [`DeviceInfo`] per line (`application/x-ndjson`).
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    query: std::result::Result<Query<DeviceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    // A bad query string answers the JSON `invalid_request`, not axum's plain-text rejection.
    let Query(query) = query.map_err(|err| ServiceError::InvalidRequest(err.body_text()))?;
    let devices = search(&state, caller, query).await?;
    Ok(json_lines(&devices))
}

/// `items` as JSON lines (`application/x-ndjson`), one per line.
fn json_lines<T: serde::Serialize>(items: &[T]) -> Response {
    let mut body = Vec::new();
    for item in items {
        body.extend(serde_json::to_vec(item).unwrap_or_default());
        body.push(b'\n');
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct RecordQuery {
    /// Records of this device only.
    #[serde(default)]
    pub device: Option<String>,
    /// Records of this certificate serial (hex) only.
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

const MAX_RECORDS: u32 = 10_000;

/// `GET /v1/cas/signing-records`: the environment's CA signing records (issuance and revocation),
/// newest first; `Accept: application/x-ndjson` answers JSON lines.
pub async fn signing_records(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: std::result::Result<Query<RecordQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    // A bad query string answers the JSON `invalid_request`, not axum's plain-text rejection.
    let Query(query) = query.map_err(|err| ServiceError::InvalidRequest(err.body_text()))?;
    caller.require(Operation::Read)?;
    let filter = CaRecordFilter {
        device_id: query.device,
        serial: query.serial.map(|serial| serial.to_ascii_lowercase()),
        limit: query.limit.unwrap_or(1000).clamp(1, MAX_RECORDS),
    };
    let records = state
        .blocking(move |state| {
            device_store(state)?.ca_signing_records(
                &caller.org.id,
                caller.credential.environment,
                &filter,
            )
        })
        .await?;
    let wants_lines = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("application/x-ndjson"));
    if !wants_lines {
        return Ok(Json(CaSigningRecordList { records }).into_response());
    }
    Ok(json_lines(&records))
}

/// Decodes an EST body: base64 with any line breaks (RFC 7030 §4.2.1), or raw DER.
pub fn est_body(body: &Bytes) -> Result<Vec<u8>> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|_| ServiceError::InvalidRequest("the body is not base64 DER".into()))
}
