//! The HTTP surface: the `/v1` router, health endpoints, and the JSON extractor that turns every
//! malformed body into an `invalid_request` error with the standard error body.

mod approvals;
mod audit;
mod devices;
mod est;
mod key_admin;
mod keys;
mod profiles;
mod sign;
mod tokens;
mod users;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use cryptera_proto::Health;
use serde::de::DeserializeOwned;

use crate::error::{Result, ServiceError};
use crate::server::AppState;

pub use approvals::{decide_blocking, Decision};
pub use keys::{create_key, key_info, private_key_aad};
pub use tokens::create_token;
pub use users::{create_organisation, create_user, erase_user, login_session};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    use cryptera_proto::paths as p;
    use key_admin as admin;
    Router::new()
        .route(p::HEALTHZ, get(healthz))
        .route(p::METRICS, get(crate::metrics::serve))
        .route(p::READYZ, get(readyz))
        .route(p::OPENAPI, get(openapi))
        .route(p::LOGIN, post(users::login))
        .route(p::WHOAMI, get(users::whoami))
        .route(p::USERS, post(users::create).get(users::list))
        .route(p::USER, delete(users::erase))
        .route(p::TOTP_ENROL, post(users::enrol_totp))
        .route(p::TOTP_CONFIRM, post(users::confirm_totp))
        .route(p::TOKENS, post(tokens::create).get(tokens::list))
        .route(p::TOKEN, delete(tokens::revoke))
        .route(p::KEYS, post(keys::create).get(keys::list))
        .route(p::KEY, get(keys::get).delete(admin::delete))
        .route(p::KEY_RESTORE, post(admin::restore))
        .route(p::KEY_LOCK, post(admin::lock).delete(admin::unlock))
        .route(p::KEY_CERTIFICATES, put(admin::set_certificates))
        .route(p::KEY_POLICY, put(admin::set_policy))
        .route(p::KEY_SIGN, post(sign::sign))
        .route(p::SIGNING_REQUESTS, get(approvals::list))
        .route(p::SIGNING_REQUEST, get(approvals::get))
        .route(p::SIGNING_REQUEST_APPROVE, post(approvals::approve))
        .route(p::SIGNING_REQUEST_DENY, post(approvals::deny))
        .route(p::AUDIT_RECORDS, get(audit::records))
        .route(p::AUDIT_CHECKPOINT, get(audit::checkpoint))
        .route(p::AUDIT_CHECKPOINTS, get(audit::checkpoints))
        .route(p::CAS, post(devices::create_cas).get(devices::list_cas))
        .route(p::CA_CRL, get(devices::crl))
        .route(p::CA_SIGNING_RECORDS, get(devices::signing_records))
        .route(p::PROFILES, get(profiles::list))
        .route(
            p::PROFILE,
            get(profiles::get)
                .put(profiles::put)
                .delete(profiles::delete),
        )
        .route(p::DEVICES, get(devices::list))
        .route(p::DEVICES_EXPORT, get(devices::export))
        .route(p::DEVICE, get(devices::get))
        .route(p::DEVICE_ENROLL, post(devices::enroll))
        .route(p::DEVICE_REVOKE, post(devices::revoke))
        .route(p::EST_CACERTS, get(est::cacerts))
        .route(p::EST_SIMPLEENROLL, post(est::simpleenroll))
        .route(p::EST_SIMPLEREENROLL, post(est::simplereenroll))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<Health>> {
    // Ready means the database answers and the KEK still opens its secrets.
    state
        .blocking(|state| {
            state.store().ping()?;
            state.check_kek()
        })
        .await
        .map_err(|_| ServiceError::Unavailable)?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

/// The committed OpenAPI document (`backend/openapi.json`), compiled in so it always matches the binary.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
}

async fn not_found() -> ServiceError {
    ServiceError::NotFound("endpoint")
}

/// `Json<T>` whose rejections use the service's error body and codes.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ServiceError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ServiceError::PayloadTooLarge;
    }
    ServiceError::InvalidRequest(rejection.body_text())
}

/// Checks a user-chosen name (organisation, user, token, key label): 1..=64 of `[A-Za-z0-9._-]`.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest(format!(
            "{what} must be 1 to 64 characters of letters, digits, '.', '_' or '-'"
        )))
    }
}
