//! Scoped access tokens for machines: create (secret shown once), list (never secrets), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cryptera_proto::auth::{CreateTokenRequest, CreatedToken, Operation, TokenInfo, TokenList};
use cryptera_proto::Environment;

use super::users::check_org_environment;
use super::{check_name, ApiJson};
use crate::audit::AuditEvent;
use crate::auth::{issue, Caller};
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::{CredentialKind, CredentialRecord, OrgRecord};
use crate::util::now;

/// The longest lifetime a token can be given: one year.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 366 * 86_400;

pub fn token_info(credential: &CredentialRecord) -> TokenInfo {
    TokenInfo {
        id: credential.id.clone(),
        name: credential.name.clone(),
        operations: credential.operations.clone(),
        keys: credential.key_scope.clone(),
        environment: credential.environment,
        created_at: credential.created_at,
        expires_at: credential.expires_at,
        revoked_at: credential.revoked_at,
    }
}

/// Creates an access token in `environment` (CLI and `POST /v1/tokens`).
pub fn create_token(
    state: &AppState,
    org: &OrgRecord,
    audit: AuditEvent,
    environment: Environment,
    request: &CreateTokenRequest,
) -> Result<CreatedToken> {
    check_name("token name", &request.name)?;
    check_org_environment(org, environment)?;
    if request.operations.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "a token needs at least one operation".into(),
        ));
    }
    if request.expires_in_seconds == 0 || request.expires_in_seconds > MAX_TOKEN_LIFETIME_SECS {
        return Err(ServiceError::InvalidRequest(format!(
            "expires_in_seconds must be between 1 and {MAX_TOKEN_LIFETIME_SECS}"
        )));
    }
    let mut operations = request.operations.clone();
    operations.sort();
    operations.dedup();
    let issued = issue(CredentialKind::Access)?;
    let created_at = now();
    let credential = CredentialRecord {
        id: issued.id.clone(),
        org_id: org.id.clone(),
        kind: CredentialKind::Access,
        name: request.name.clone(),
        user_id: None,
        secret_hash: issued.secret_hash.clone(),
        operations,
        key_scope: request.keys.clone(),
        environment,
        mfa_verified: false,
        created_at,
        // The cap above keeps this far from overflow.
        expires_at: created_at + i64::try_from(request.expires_in_seconds).unwrap_or(0),
        revoked_at: None,
    };
    let mut audit = audit;
    audit.target.clone_from(&credential.id);
    let ops: Vec<&str> = credential.operations.iter().map(|op| op.as_str()).collect();
    let audit = audit
        .detail("name", request.name.clone())
        .detail("environment", environment.as_str())
        .detail("operations", ops.join(","));
    state.store().create_credential(&credential, &audit)?;
    Ok(CreatedToken {
        token: issued.token.to_string(),
        info: token_info(&credential),
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    caller.require(Operation::Admin)?;
    let created = state
        .blocking(move |state| {
            let audit = caller.audit("token.create", "");
            create_token(
                state,
                &caller.org,
                audit,
                caller.credential.environment,
                &request,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<TokenList>> {
    caller.require(Operation::Admin)?;
    let org_id = caller.org.id.clone();
    let tokens = state
        .db(move |store| store.list_access_tokens(&org_id))
        .await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(token_info).collect(),
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Operation::Admin)?;
    let found = state
        .db(move |store| {
            let audit = caller.audit("token.revoke", &id);
            let visible = store
                .credential_by_id(&id)?
                .is_some_and(|c| c.org_id == caller.org.id && c.kind == CredentialKind::Access);
            if !visible {
                return Ok(false);
            }
            store.revoke_credential(&caller.org.id, &id, now(), &audit)
        })
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServiceError::NotFound("token"))
    }
}
