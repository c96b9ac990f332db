//! Organisations, users, login (password + TOTP) and TOTP enrolment.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cryptera_proto::auth::{
    CreateUserRequest, KeyScope, LoginRequest, LoginResponse, Operation, TotpConfirmRequest,
    TotpEnrolment, UserInfo, UserList, Whoami,
};
use cryptera_proto::Environment;
use zeroize::{Zeroize, Zeroizing};

use super::{check_name, ApiJson};
use crate::audit::AuditEvent;
use crate::auth::{issue, Caller, ClientNet};
use crate::error::{Result, ServiceError};
use crate::kek::Aad;
use crate::server::AppState;
use crate::store::{CredentialKind, CredentialRecord, OrgRecord, TotpUpdate, UserRecord};
use crate::util::{new_id, now, random_bytes};
use crate::{password, totp};

pub fn user_info(user: &UserRecord) -> UserInfo {
    UserInfo {
        id: user.id.clone(),
        username: user.username.clone(),
        roles: user.roles.clone(),
        totp_enrolled: user.totp_sealed.is_some(),
        created_at: user.created_at,
    }
}

fn totp_aad(user: &UserRecord) -> Aad {
    Aad::new("cryptera-totp-v1", &[&user.id, &user.org_id])
}

/// Trial organisations live only in the trial environment.
pub fn check_org_environment(org: &OrgRecord, environment: Environment) -> Result<()> {
    if org.trial_expires_at.is_some() && environment != Environment::Trial {
        return Err(ServiceError::InvalidRequest(
            "a trial organisation only has the trial environment".into(),
        ));
    }
    Ok(())
}

/// Creates an organisation (CLI); `trial_days` makes it a trial organisation that expires.
pub fn create_organisation(
    state: &AppState,
    name: &str,
    trial_days: Option<u32>,
) -> Result<OrgRecord> {
    check_name("organisation name", name)?;
    let created_at = now();
    let org = OrgRecord {
        id: new_id("org")?,
        name: name.to_owned(),
        trial_expires_at: trial_days.map(|days| created_at + i64::from(days) * 86_400),
        created_at,
    };
    let audit = AuditEvent::new(&org.id, "svc", "org.create", &org.id).detail("name", name);
    state.store().create_org(&org, &audit)?;
    Ok(org)
}

/// Adds a user to an organisation (CLI and `POST /v1/users`); `actor` is who did it.
pub fn create_user(
    state: &AppState,
    audit: AuditEvent,
    request: &CreateUserRequest,
) -> Result<UserRecord> {
    check_name("username", &request.username)?;
    password::check_policy(&request.password)?;
    if request.roles.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "a user needs at least one role".into(),
        ));
    }
    let mut roles = request.roles.clone();
    roles.sort();
    roles.dedup();
    let user = UserRecord {
        id: new_id("usr")?,
        org_id: audit.organisation_id.clone(),
        username: request.username.clone(),
        password_hash: password::hash(&request.password)?,
        roles,
        totp_sealed: None,
        totp_pending_sealed: None,
        totp_last_step: 0,
        created_at: now(),
    };
    let mut audit = audit;
    audit.target.clone_from(&user.id);
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    let audit = audit.detail("roles", roles.join(","));
    state.store().create_user(&user, &audit)?;
    Ok(user)
}

pub async fn login(
    State(state): State<AppState>,
    ClientNet(client_net): ClientNet,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    let delay = state.config().login_failure_delay;
    let outcome = state
        .blocking(move |state| {
            let mut request = request;
            let outcome = login_session(state, &request, &client_net);
            request.password.zeroize();
            outcome
        })
        .await;
    if let Err(ServiceError::LoginFailed) = outcome {
        tokio::time::sleep(delay).await;
    }
    outcome.map(Json)
}

/// Verifies password and TOTP and opens a session (HTTP login and CLI commands acting as a user).
pub fn login_session(
    state: &AppState,
    request: &LoginRequest,
    client_net: &str,
) -> Result<LoginResponse> {
    let store = state.store();
    // Every attempt counts, so password guessing is slowed down per username whatever the outcome.
    crate::limits::take(
        state,
        &[crate::limits::login_bucket(
            state,
            &request.organisation,
            &request.username,
        )],
    )?;
    let org = store.org_by_name(&request.organisation)?;
    let user = match &org {
        Some(org) => store.user_by_name(&org.id, &request.username)?,
        None => None,
    };
    // Always run Argon2, also for unknown users, so timing does not reveal who exists.
    let password_ok = password::verify(
        &request.password,
        user.as_ref().map(|user| user.password_hash.as_str()),
    );
    let (Some(org), Some(user), true) = (org, user, password_ok) else {
        return Err(ServiceError::LoginFailed);
    };
    let fail = |reason: &str| -> ServiceError {
        let event = AuditEvent::new(&org.id, &user.id, "login", &user.id)
            .outcome("login_failed")
            .detail("reason", reason)
            .detail("client_net", client_net);
        if let Err(err) = store.append_audit(&event) {
            tracing::error!(error = %err, "could not audit a failed login");
        }
        ServiceError::LoginFailed
    };
    let mfa_verified = match (&user.totp_sealed, &request.totp_code) {
        (None, None) => false,
        (None, Some(_)) | (Some(_), None) => return Err(fail("totp")),
        (Some(sealed), Some(code)) => {
            let secret = state.kek().open(&totp_aad(&user), sealed)?;
            let step = totp::verify(&secret, code, now()).ok_or_else(|| fail("totp"))?;
            if step <= user.totp_last_step {
                return Err(fail("totp_replay"));
            }
            store
                .update_user_totp(&org.id, &user.id, &TotpUpdate::UsedStep(step), None)
                .map_err(|_| fail("totp_replay"))?;
            true
        }
    };
    check_org_environment(&org, request.environment)?;
    let mut operations: Vec<Operation> = user
        .roles
        .iter()
        .flat_map(|role| role.operations().iter().copied())
        .collect();
    operations.sort();
    operations.dedup();
    let issued = issue(CredentialKind::Session)?;
    let created_at = now();
    let credential = CredentialRecord {
        id: issued.id.clone(),
        org_id: org.id.clone(),
        kind: CredentialKind::Session,
        name: format!("session of {}", user.id),
        user_id: Some(user.id.clone()),
        secret_hash: issued.secret_hash.clone(),
        operations,
        key_scope: KeyScope::default(),
        environment: request.environment,
        mfa_verified,
        created_at,
        expires_at: created_at + state.config().session_lifetime_secs,
        revoked_at: None,
    };
    let audit = AuditEvent::new(&org.id, &user.id, "login", &credential.id)
        .detail("environment", request.environment.as_str())
        .detail("mfa", mfa_verified.to_string())
        .detail("client_net", client_net);
    store.create_credential(&credential, &audit)?;
    Ok(LoginResponse {
        session_token: issued.token.to_string(),
        expires_at: credential.expires_at,
        mfa_verified,
        user: user_info(&user),
    })
}

pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami {
        organisation_id: caller.org.id.clone(),
        organisation: caller.org.name.clone(),
        environment: caller.credential.environment,
        kind: if caller.is_user() { "user" } else { "token" }.to_owned(),
        id: caller.actor().to_owned(),
        operations: caller.credential.operations.clone(),
        mfa_verified: caller.credential.mfa_verified,
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserInfo>)> {
    caller.require(Operation::Admin)?;
    let audit = caller.audit("user.create", "");
    let user = state
        .blocking(move |state| {
            let mut request = request;
            let created = create_user(state, audit, &request);
            request.password.zeroize();
            created
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user_info(&user))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<UserList>> {
    caller.require(Operation::Admin)?;
    let org_id = caller.org.id.clone();
    let users = state.db(move |store| store.list_users(&org_id)).await?;
    Ok(Json(UserList {
        users: users.iter().map(user_info).collect(),
    }))
}

/// Erases a person (CLI and `DELETE /v1/users/{id}`); see [`crate::store::Store::erase_user`].
pub fn erase_user(state: &AppState, audit: AuditEvent, user_id: &str) -> Result<()> {
    let mut audit = audit;
    user_id.clone_into(&mut audit.target);
    let org_id = audit.organisation_id.clone();
    if state.store().erase_user(&org_id, user_id, now(), &audit)? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("user"))
    }
}

pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode> {
    caller.require(Operation::Admin)?;
    let audit = caller.audit("user.erase", &id);
    state
        .blocking(move |state| erase_user(state, audit, &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn session_user(state: &AppState, caller: &Caller) -> Result<UserRecord> {
    let user_id = caller
        .credential
        .user_id
        .as_deref()
        .ok_or(ServiceError::InsufficientScope(Operation::Read))?;
    state
        .store()
        .user_by_id(&caller.org.id, user_id)?
        .ok_or(ServiceError::Unauthenticated)
}

pub async fn enrol_totp(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TotpEnrolment>> {
    state
        .blocking(move |state| {
            let user = session_user(state, &caller)?;
            // Replacing a working second factor needs that factor: a stolen password alone must not do it.
            if user.totp_sealed.is_some() && !caller.credential.mfa_verified {
                return Err(ServiceError::MfaRequired);
            }
            let secret = Zeroizing::new(random_bytes::<{ totp::SECRET_LEN }>()?);
            let sealed = state.kek().seal(&totp_aad(&user), secret.as_ref())?;
            state.store().update_user_totp(
                &user.org_id,
                &user.id,
                &TotpUpdate::SetPending(sealed),
                None,
            )?;
            let secret_base32 = totp::encode_base32(secret.as_ref());
            let otpauth_uri = format!(
                "otpauth://totp/Cryptera:{}%3A{}?secret={secret_base32}&issuer=Cryptera&algorithm=SHA1&digits=6&period=30",
                caller.org.name, user.username
            );
            Ok(Json(TotpEnrolment {
                secret_base32,
                otpauth_uri,
            }))
        })
        .await
}

pub async fn confirm_totp(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<TotpConfirmRequest>,
) -> Result<StatusCode> {
    state
        .blocking(move |state| {
            let user = session_user(state, &caller)?;
            let sealed = user.totp_pending_sealed.as_ref().ok_or_else(|| {
                ServiceError::InvalidRequest("no TOTP enrolment is pending".into())
            })?;
            let secret = state.kek().open(&totp_aad(&user), sealed)?;
            let step = totp::verify(&secret, &request.code, now())
                .ok_or_else(|| ServiceError::InvalidRequest("the TOTP code is not valid".into()))?;
            let audit = caller.audit("user.totp_enrol", &user.id);
            state.store().update_user_totp(
                &user.org_id,
                &user.id,
                &TotpUpdate::ConfirmPending { step },
                Some(&audit),
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}
