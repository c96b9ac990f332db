//! The error body every 4xx/5xx answer carries, and the stable error codes clients match on.
//!
//! Clients decide by [`ErrorCode`], never by the human message. New codes may be added; a client that
//! meets one it does not know sees [`ErrorCode::Unknown`].

use serde::{Deserialize, Serialize};

/// `{ "error": { "code": "...", "message": "..." } }`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// Stable machine-readable error codes. The HTTP status of each is fixed (see [`ErrorCode::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not valid JSON, a field is missing or has a bad value.
    InvalidRequest,
    /// 400: the mechanism is unknown or does not fit the key's algorithm.
    UnsupportedMechanism,
    /// 401: no credential, or a credential the service does not recognise.
    Unauthenticated,
    /// 401: the access token or session has expired.
    TokenExpired,
    /// 401: the access token has been revoked.
    TokenRevoked,
    /// 401: username, password or TOTP code wrong (deliberately not saying which).
    LoginFailed,
    /// 403: the credential lacks the operation or key scope needed.
    InsufficientScope,
    /// 403: the action needs a login verified with TOTP.
    MfaRequired,
    /// 403: the key and the credential belong to different environments.
    EnvironmentMismatch,
    /// 403: the key's policy does not allow this mechanism.
    MechanismNotAllowed,
    /// 403: production keys need a KEK held by a PKCS#11 module (or the explicit config override).
    ProductionRequiresHsmKek,
    /// 403: the requester may not approve their own signing request.
    SelfApprovalRefused,
    /// 404: no such resource in the caller's organisation.
    NotFound,
    /// 409: a resource with that name already exists.
    AlreadyExists,
    /// 409: the idempotency key was used before with a different request.
    IdempotencyConflict,
    /// 409: the key (or certificate) is locked against deletion.
    KeyLocked,
    /// 409: the key is scheduled for deletion and cannot be used.
    KeyDeleted,
    /// 409: the signing request is no longer pending (approved, denied or expired).
    RequestNotPending,
    /// 409: the organisation reached a quota (trial organisations).
    QuotaExceeded,
    /// 412: `If-Match` did not match.
    PreconditionFailed,
    /// 413: the body is larger than the service accepts.
    PayloadTooLarge,
    /// 429: too many requests; retry after the `Retry-After` header's seconds.
    RateLimited,
    /// 500: something failed inside the service; the log has the details (never secrets).
    Internal,
    /// 503: the service is not ready (storage or KEK unavailable).
    Unavailable,
    /// A code this client version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code the service can answer with (all but [`ErrorCode::Unknown`]).
    pub const ALL: [ErrorCode; 24] = [
        Self::InvalidRequest,
        Self::UnsupportedMechanism,
        Self::Unauthenticated,
        Self::TokenExpired,
        Self::TokenRevoked,
        Self::LoginFailed,
        Self::InsufficientScope,
        Self::MfaRequired,
        Self::EnvironmentMismatch,
        Self::MechanismNotAllowed,
        Self::ProductionRequiresHsmKek,
        Self::SelfApprovalRefused,
        Self::NotFound,
        Self::AlreadyExists,
        Self::IdempotencyConflict,
        Self::KeyLocked,
        Self::KeyDeleted,
        Self::RequestNotPending,
        Self::QuotaExceeded,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The HTTP status code that always accompanies this error code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::UnsupportedMechanism => 400,
            Self::Unauthenticated | Self::TokenExpired | Self::TokenRevoked | Self::LoginFailed => {
                401
            }
            Self::InsufficientScope
            | Self::MfaRequired
            | Self::EnvironmentMismatch
            | Self::MechanismNotAllowed
            | Self::ProductionRequiresHsmKek
            | Self::SelfApprovalRefused => 403,
            Self::NotFound => 404,
            Self::AlreadyExists
            | Self::IdempotencyConflict
            | Self::KeyLocked
            | Self::KeyDeleted
            | Self::RequestNotPending
            | Self::QuotaExceeded => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal | Self::Unknown => 500,
            Self::Unavailable => 503,
        }
    }

    /// Whether a client may retry the identical request later and expect a different outcome.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_on_the_wire() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::EnvironmentMismatch,
                message: "m".into(),
            },
        };
        let json = serde_json::to_string(&body).expect("serialize");
        assert_eq!(
            json,
            r#"{"error":{"code":"environment_mismatch","message":"m"}}"#
        );
    }

    #[test]
    fn unknown_codes_do_not_break_old_clients() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#).expect("parse");
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }
}
