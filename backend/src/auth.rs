//! Credentials: the bearer-token format, hash-only storage, and the [`Caller`] every handler receives.
//!
//! A token is `cryptera_at_<id>_<secret>` (access token) or `cryptera_us_<id>_<secret>` (user session).
//! The id finds the row; the service keeps only SHA-256 of the 256-bit secret and compares it in constant
//! time. Revocation, expiry and trial expiry are checked on every request.

use std::net::SocketAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cryptera_proto::auth::Operation;
use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::{CredentialKind, CredentialRecord, KeyRecord, OrgRecord};
use crate::util::{new_id, new_secret, now, truncate_ip, wildcard_match};

const ACCESS_PREFIX: &str = "cryptera_at_";
const SESSION_PREFIX: &str = "cryptera_us_";
/// `tok_` + 16 hex digits.
const ID_LEN: usize = 20;

/// A freshly issued credential: the token text is shown once and zeroized on drop.
pub struct IssuedToken {
    pub id: String,
    pub token: Zeroizing<String>,
    pub secret_hash: Vec<u8>,
}

pub fn issue(kind: CredentialKind) -> Result<IssuedToken> {
    let id = new_id("tok")?;
    let secret = new_secret()?;
    let prefix = match kind {
        CredentialKind::Access => ACCESS_PREFIX,
        CredentialKind::Session => SESSION_PREFIX,
    };
    Ok(IssuedToken {
        token: Zeroizing::new(format!("{prefix}{id}_{}", secret.as_str())),
        secret_hash: hash_secret(secret.as_bytes()),
        id,
    })
}

fn hash_secret(secret: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret).as_ref().to_vec()
}

/// Splits a presented token into kind, id and secret; `None` if it is not one of ours.
fn parse(token: &str) -> Option<(CredentialKind, &str, &str)> {
    let (kind, rest) = if let Some(rest) = token.strip_prefix(ACCESS_PREFIX) {
        (CredentialKind::Access, rest)
    } else {
        (CredentialKind::Session, token.strip_prefix(SESSION_PREFIX)?)
    };
    let id = rest.get(..ID_LEN)?;
    let secret = rest.get(ID_LEN..)?.strip_prefix('_')?;
    (id.starts_with("tok_") && !secret.is_empty()).then_some((kind, id, secret))
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub org: OrgRecord,
    pub credential: CredentialRecord,
    /// The client's network, truncated (never the full address).
    pub client_net: String,
}

impl Caller {
    /// The pseudonymous id recorded in audit records and signing requests.
    pub fn actor(&self) -> &str {
        self.credential
            .user_id
            .as_deref()
            .unwrap_or(&self.credential.id)
    }

    pub fn is_user(&self) -> bool {
        self.credential.kind == CredentialKind::Session
    }

    /// Requires `operation`; admin and approval work by a user also requires a TOTP-verified login.
    pub fn require(&self, operation: Operation) -> Result<()> {
        if !self.credential.operations.contains(&operation) {
            return Err(ServiceError::InsufficientScope(operation));
        }
        let needs_mfa = matches!(operation, Operation::Admin | Operation::Approve);
        if needs_mfa && self.is_user() && !self.credential.mfa_verified {
            return Err(ServiceError::MfaRequired);
        }
        Ok(())
    }

    /// Whether the credential's key scope covers `key` (users see every key of their organisation).
    pub fn can_use_key(&self, key: &KeyRecord) -> bool {
        if self.is_user() {
            return true;
        }
        let scope = &self.credential.key_scope;
        scope.ids.contains(&key.id)
            || scope
                .label_patterns
                .iter()
                .any(|pattern| wildcard_match(pattern, &key.label))
    }

    /// An audit event for this caller, carrying its truncated network.
    pub fn audit(&self, action: &str, target: &str) -> AuditEvent {
        AuditEvent::new(&self.org.id, self.actor(), action, target)
            .detail("client_net", self.client_net.clone())
            .detail("credential", self.credential.id.clone())
    }
}

pub fn client_net(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| truncate_ip(info.0.ip()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The client's truncated network, for handlers without a [`Caller`] (login).
pub struct ClientNet(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientNet {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Ok(Self(client_net(parts)))
    }
}

/// Checks a presented bearer token and returns its caller, drawing from the rate-limit buckets.
/// Used by the HTTP extractor and by CLI commands that act as a logged-in user.
pub fn authenticate(state: &AppState, token: &str, client_net: String) -> Result<Caller> {
    let (kind, id, secret) = parse(token).ok_or(ServiceError::Unauthenticated)?;
    let presented_hash = hash_secret(secret.as_bytes());
    let store = state.store();
    let credential = store
        .credential_by_id(id)?
        .ok_or(ServiceError::Unauthenticated)?;
    let org = store
        .org_by_id(&credential.org_id)?
        .ok_or(ServiceError::Unauthenticated)?;
    if credential.kind != kind
        || verify_slices_are_equal(&credential.secret_hash, &presented_hash).is_err()
    {
        return Err(ServiceError::Unauthenticated);
    }
    if credential.revoked_at.is_some() {
        return Err(ServiceError::TokenRevoked);
    }
    let now = now();
    if credential.expires_at <= now || org.trial_expires_at.is_some_and(|end| end <= now) {
        return Err(ServiceError::TokenExpired);
    }
    // Only authenticated requests reach the shared buckets, so unknown tokens cannot drain them.
    crate::limits::take(
        state,
        &crate::limits::request_buckets(state, &org, &credential),
    )?;
    Ok(Caller {
        org,
        credential,
        client_net,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|header| header.strip_prefix("Bearer "))
            .map(|token| Zeroizing::new(token.trim().to_owned()))
            .ok_or(ServiceError::Unauthenticated)?;
        let client_net = client_net(parts);
        state
            .blocking(move |state| authenticate(state, &token, client_net))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_back_and_only_the_hash_is_kept() {
        let issued = issue(CredentialKind::Access).expect("issue");
        let (kind, id, secret) = parse(&issued.token).expect("parse");
        assert_eq!(kind, CredentialKind::Access);
        assert_eq!(id, issued.id);
        assert_eq!(hash_secret(secret.as_bytes()), issued.secret_hash);
        assert!(!issued
            .token
            .contains(&crate::util::hex(&issued.secret_hash)));
        assert!(parse("cryptera_at_tok_short_x").is_none());
        assert!(parse("Bearer nonsense").is_none());
    }
}
