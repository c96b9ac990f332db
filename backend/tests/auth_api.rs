//! Users, logins with TOTP, scoped access tokens and the error contract, over real HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use common::{expect_error, json, TestService};
use cryptera_proto::auth::{CreatedToken, Operation, Role, TokenList, UserInfo, UserList, Whoami};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::Environment;
use reqwest::StatusCode;
use serde_json::json;

/// A POST of `body` as it is, labelled JSON.
async fn post_json_text(
    service: &TestService,
    token: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    service
        .client
        .post(service.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_unknown_routes() {
    let service = TestService::start().await;
    let response = service.get_public("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = service.get_public("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = service.get_public("/v1/nothing").await;
    expect_error(response, ErrorCode::NotFound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_credential_are_refused() {
    let service = TestService::start().await;
    let response = service.get_public("/v1/keys").await;
    expect_error(response, ErrorCode::Unauthenticated).await;
    let response = service.get("not-a-token", "/v1/keys").await;
    expect_error(response, ErrorCode::Unauthenticated).await;
    let forged = "cryptera_at_tok_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let response = service.get(forged, "/v1/keys").await;
    expect_error(response, ErrorCode::Unauthenticated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_the_right_password_and_totp_once_enrolled() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut alice = service.user(&org, "alice", &[Role::Admin]);

    // Wrong password: one opaque code, whatever was wrong.
    let response = service.post_public("/v1/login", &json!({"organisation": "acme", "username": "alice", "password": "wrong password!!", "environment": "development"})).await;
    expect_error(response, ErrorCode::LoginFailed).await;
    let response = service.post_public("/v1/login", &json!({"organisation": "acme", "username": "nobody", "password": "wrong password!!", "environment": "development"})).await;
    expect_error(response, ErrorCode::LoginFailed).await;

    // Without TOTP the session is not MFA-verified, so admin work is refused.
    let plain = service.session(&mut alice, Environment::Development).await;
    let response = service.get(&plain, "/v1/users").await;
    expect_error(response, ErrorCode::MfaRequired).await;

    let mfa = service
        .mfa_session(&mut alice, Environment::Development)
        .await;
    let whoami: Whoami = json(service.get(&mfa, "/v1/whoami").await).await;
    assert!(whoami.mfa_verified);
    assert_eq!(whoami.id, alice.id);
    assert_eq!(whoami.environment, Environment::Development);
    let users: UserList = json(service.get(&mfa, "/v1/users").await).await;
    assert!(users.users[0].totp_enrolled);

    // Once enrolled, a password alone no longer logs in, and a used code is not accepted again.
    let secret = alice.totp_secret.take().unwrap();
    let response = service.login(&mut alice, Environment::Development).await;
    expect_error(response, ErrorCode::LoginFailed).await;
    let replayed = cryptera_backend::totp::code_for_step(&secret, alice.last_step);
    let response = service
        .post_public(
            "/v1/login",
            &json!({"organisation": "acme", "username": "alice", "password": common::PASSWORD,
                      "totp_code": replayed, "environment": "development"}),
        )
        .await;
    expect_error(response, ErrorCode::LoginFailed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_users_and_bad_bodies_change_nothing() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin]);
    let mfa = service
        .mfa_session(&mut admin, Environment::Development)
        .await;

    let response = service
        .post(
            &mfa,
            "/v1/users",
            &json!({"username": "bob", "password": "another long password", "roles": ["signer"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let bob: UserInfo = json(response).await;
    assert_eq!(bob.roles, vec![Role::Signer]);
    assert!(!bob.totp_enrolled);

    let duplicate = service
        .post(
            &mfa,
            "/v1/users",
            &json!({"username": "bob", "password": "another long password", "roles": ["signer"]}),
        )
        .await;
    expect_error(duplicate, ErrorCode::AlreadyExists).await;
    let short = service
        .post(
            &mfa,
            "/v1/users",
            &json!({"username": "carol", "password": "short", "roles": ["signer"]}),
        )
        .await;
    expect_error(short, ErrorCode::InvalidRequest).await;
    let unknown_field = service
        .post(&mfa, "/v1/users", &json!({"username": "dave", "password": "another long password", "roles": ["signer"], "is_root": true}))
        .await;
    expect_error(unknown_field, ErrorCode::InvalidRequest).await;
    let not_json = post_json_text(&service, &mfa, "/v1/users", "{not json").await;
    expect_error(not_json, ErrorCode::InvalidRequest).await;
    let huge = post_json_text(
        &service,
        &mfa,
        "/v1/users",
        format!("{{\"username\":\"{}\"}}", "x".repeat(200_000)),
    )
    .await;
    expect_error(huge, ErrorCode::PayloadTooLarge).await;

    let users: UserList = json(service.get(&mfa, "/v1/users").await).await;
    let names: Vec<&str> = users.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_scoped_shown_once_revocable_and_expire() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin]);
    let mfa = service
        .mfa_session(&mut admin, Environment::Development)
        .await;

    let response = service
        .post(&mfa, "/v1/tokens", &json!({"name": "ci", "operations": ["read"], "keys": {"label_patterns": ["release-*"]}, "expires_in_seconds": 3600}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: CreatedToken = json(response).await;
    assert!(created.token.starts_with("cryptera_at_"));
    assert_eq!(created.info.environment, Environment::Development);
    assert_eq!(created.info.operations, vec![Operation::Read]);

    // The token works, and only for what it was given.
    let whoami: Whoami = json(service.get(&created.token, "/v1/whoami").await).await;
    assert_eq!(whoami.kind, "token");
    let response = service.get(&created.token, "/v1/tokens").await;
    expect_error(response, ErrorCode::InsufficientScope).await;
    let response = service
        .post(
            &created.token,
            "/v1/keys",
            &json!({"label": "x", "algorithm": "ed25519"}),
        )
        .await;
    expect_error(response, ErrorCode::InsufficientScope).await;

    // Listing never shows a secret, nor anything the secret could be recomputed from.
    let response = service.get(&mfa, "/v1/tokens").await;
    let text = response.text().await.unwrap();
    let secret_part = created.token.rsplit('_').next().unwrap();
    assert!(!text.contains(secret_part));
    let list: TokenList = serde_json::from_str(&text).unwrap();
    assert_eq!(list.tokens.len(), 1);

    // A wrong secret for a real token id is just unknown.
    let mut tampered = created.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    expect_error(
        service.get(&tampered, "/v1/whoami").await,
        ErrorCode::Unauthenticated,
    )
    .await;

    // Revocation takes effect at once.
    let response = service
        .delete(&mfa, &format!("/v1/tokens/{}", created.info.id))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        service.get(&created.token, "/v1/whoami").await,
        ErrorCode::TokenRevoked,
    )
    .await;
    let response = service
        .delete(&mfa, "/v1/tokens/tok_0000000000000000")
        .await;
    expect_error(response, ErrorCode::NotFound).await;

    // Expiry.
    let response = service
        .post(
            &mfa,
            "/v1/tokens",
            &json!({"name": "short", "operations": ["read"], "expires_in_seconds": 1}),
        )
        .await;
    let short: CreatedToken = json(response).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    expect_error(
        service.get(&short.token, "/v1/whoami").await,
        ErrorCode::TokenExpired,
    )
    .await;

    let response = service
        .post(
            &mfa,
            "/v1/tokens",
            &json!({"name": "forever", "operations": ["read"], "expires_in_seconds": 999999999}),
        )
        .await;
    expect_error(response, ErrorCode::InvalidRequest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_never_see_each_other() {
    let service = TestService::start().await;
    let acme = service.org("acme");
    let globex = service.org("globex");
    let mut acme_admin = service.user(&acme, "admin", &[Role::Admin]);
    let mut globex_admin = service.user(&globex, "admin", &[Role::Admin]);
    let acme_session = service
        .mfa_session(&mut acme_admin, Environment::Development)
        .await;
    let globex_session = service
        .mfa_session(&mut globex_admin, Environment::Development)
        .await;

    let created: CreatedToken = json(
        service
            .post(
                &acme_session,
                "/v1/tokens",
                &json!({"name": "ci", "operations": ["read"], "expires_in_seconds": 60}),
            )
            .await,
    )
    .await;
    let response = service
        .delete(&globex_session, &format!("/v1/tokens/{}", created.info.id))
        .await;
    expect_error(response, ErrorCode::NotFound).await;
    let list: TokenList = json(service.get(&globex_session, "/v1/tokens").await).await;
    assert!(list.tokens.is_empty());
    let users: UserList = json(service.get(&globex_session, "/v1/users").await).await;
    assert_eq!(users.users.len(), 1);
}
