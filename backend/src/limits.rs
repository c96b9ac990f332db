//! Fair use: token-bucket rate limits per credential, per organisation, per key and per login name.
//!
//! Buckets live in the database ([`Store::take_rate_tokens`](crate::store::Store::take_rate_tokens)),
//! so every service process sharing it enforces one limit, not one per process. An empty bucket answers
//! `429 rate_limited` with `Retry-After`.

use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::{CredentialRecord, OrgRecord, RateBucket};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Takes one token from every bucket or fails with `RateLimited`.
pub fn take(state: &AppState, buckets: &[RateBucket]) -> Result<()> {
    match state.store().take_rate_tokens(buckets, now_ms())? {
        None => Ok(()),
        Some(retry_after_secs) => Err(ServiceError::RateLimited { retry_after_secs }),
    }
}

/// The buckets every authenticated request draws from.
pub fn request_buckets(
    state: &AppState,
    org: &OrgRecord,
    credential: &CredentialRecord,
) -> Vec<RateBucket> {
    let config = state.config();
    let org_limit = if org.trial_expires_at.is_some() {
        config.trial_requests_per_minute
    } else {
        config.organisation_requests_per_minute
    };
    vec![
        RateBucket {
            name: format!("credential:{}", credential.id),
            per_minute: config.credential_requests_per_minute,
        },
        RateBucket {
            name: format!("organisation:{}", org.id),
            per_minute: org_limit,
        },
    ]
}

pub fn key_bucket(key_id: &str, per_minute: u32) -> RateBucket {
    RateBucket {
        name: format!("key:{key_id}"),
        per_minute,
    }
}

pub fn login_bucket(state: &AppState, organisation: &str, username: &str) -> RateBucket {
    RateBucket {
        name: format!("login:{organisation}/{username}"),
        per_minute: state.config().login_attempts_per_minute,
    }
}
