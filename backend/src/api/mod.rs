//! The HTTP surface: the `/v1` router, health endpoints, and the JSON extractor that turns every
//! malformed body into an `invalid_request` error with the standard error body.

mod approvals;
mod audit;
mod key_admin;
mod keys;
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
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/login", post(users::login))
        .route("/v1/whoami", get(users::whoami))
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/users/{id}", delete(users::erase))
        .route("/v1/users/me/totp", post(users::enrol_totp))
        .route("/v1/users/me/totp/confirm", post(users::confirm_totp))
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", get(keys::get).delete(key_admin::delete))
        .route("/v1/keys/{id}/restore", post(key_admin::restore))
        .route(
            "/v1/keys/{id}/lock",
            post(key_admin::lock).delete(key_admin::unlock),
        )
        .route(
            "/v1/keys/{id}/certificates",
            put(key_admin::set_certificates),
        )
        .route("/v1/keys/{id}/policy", put(key_admin::set_policy))
        .route("/v1/keys/{id}/sign", post(sign::sign))
        .route("/v1/signing-requests", get(approvals::list))
        .route("/v1/signing-requests/{id}", get(approvals::get))
        .route(
            "/v1/signing-requests/{id}/approve",
            post(approvals::approve),
        )
        .route("/v1/signing-requests/{id}/deny", post(approvals::deny))
        .route("/v1/audit/records", get(audit::records))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
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
