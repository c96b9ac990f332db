//! The service's one error enum, its stable wire codes and its HTTP rendering.
//!
//! Every handler returns `Result<_, ServiceError>`; [`ServiceError::code`] is the single exhaustive mapping
//! onto `cryptera_proto::error::ErrorCode`, which fixes the HTTP status. Internal failures are logged here
//! with their cause and answered with a generic message, so storage or crypto details never reach clients.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::error::{ErrorBody, ErrorCode, ErrorDetail};
use cryptera_proto::Environment;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unsupported mechanism: {0}")]
    UnsupportedMechanism(String),
    #[error("missing or unknown credential")]
    Unauthenticated,
    #[error("the credential has expired")]
    TokenExpired,
    #[error("the access token has been revoked")]
    TokenRevoked,
    #[error("login failed")]
    LoginFailed,
    /// A TLS client certificate that does not authenticate a device (unknown, revoked, expired...).
    #[error("client certificate refused: {0}")]
    ClientCertificate(String),
    /// An authenticated device asked for something outside its own certificate (another device).
    #[error("{0}")]
    DeviceMismatch(String),
    #[error("the credential does not grant the `{}` operation", .0.as_str())]
    InsufficientScope(Operation),
    #[error("this action needs a login verified with a TOTP code")]
    MfaRequired,
    #[error("the key is a {key} key and cannot be used through a {credential} credential")]
    EnvironmentMismatch {
        key: Environment,
        credential: Environment,
    },
    #[error("the key's policy does not allow mechanism {0}")]
    MechanismNotAllowed(&'static str),
    #[error("production keys need a KEK held by a PKCS#11 module")]
    ProductionRequiresHsmKek,
    #[error("the requester cannot approve their own signing request")]
    SelfApprovalRefused,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("the idempotency key was already used for a different request")]
    IdempotencyConflict,
    #[error("the key is locked against deletion")]
    KeyLocked,
    #[error("the key is scheduled for deletion")]
    KeyDeleted,
    #[error("the signing request is no longer pending")]
    RequestNotPending,
    #[error("quota exceeded: {0}")]
    QuotaExceeded(&'static str),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A storage failure; the text is for the log only.
    #[error("storage: {0}")]
    Storage(String),
    /// A cryptographic failure; deliberately opaque.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// An I/O failure outside storage (KEK file, data directory).
    #[error("i/o: {0}")]
    Io(String),
    #[error("service unavailable")]
    Unavailable,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    /// The stable wire code. Exhaustive on purpose: a new variant must choose its code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::UnsupportedMechanism(_) => ErrorCode::UnsupportedMechanism,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::TokenRevoked => ErrorCode::TokenRevoked,
            Self::LoginFailed => ErrorCode::LoginFailed,
            Self::ClientCertificate(_) => ErrorCode::Unauthenticated,
            Self::DeviceMismatch(_) => ErrorCode::InsufficientScope,
            Self::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Self::MfaRequired => ErrorCode::MfaRequired,
            Self::EnvironmentMismatch { .. } => ErrorCode::EnvironmentMismatch,
            Self::MechanismNotAllowed(_) => ErrorCode::MechanismNotAllowed,
            Self::ProductionRequiresHsmKek => ErrorCode::ProductionRequiresHsmKek,
            Self::SelfApprovalRefused => ErrorCode::SelfApprovalRefused,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            Self::KeyLocked => ErrorCode::KeyLocked,
            Self::KeyDeleted => ErrorCode::KeyDeleted,
            Self::RequestNotPending => ErrorCode::RequestNotPending,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::PreconditionFailed => ErrorCode::PreconditionFailed,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Storage(_) | Self::Crypto(_) | Self::Io(_) => ErrorCode::Internal,
            Self::Unavailable => ErrorCode::Unavailable,
        }
    }

    /// The message clients see: internal causes are replaced by a generic text.
    fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "internal error; see the service log".to_owned(),
            _ => self.to_string(),
        }
    }

    pub fn storage(err: impl std::fmt::Display) -> Self {
        Self::Storage(err.to_string())
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let code = self.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self, "request failed inside the service");
        }
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.public_message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
