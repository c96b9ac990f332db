//! Erasing a person (GDPR): the name, password and TOTP go, sessions end, approvals lose the name, and
//! the audit chain (which only ever held the pseudonymous id) still verifies.

#![allow(clippy::unwrap_used)]

mod common;

use common::{create_key, dev_token, expect_error, json, sha256, TestService};
use cryptera_backend::audit::verify_chain;
use cryptera_proto::auth::{Operation, Role, UserList};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::sign::SigningRequestInfo;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_person_keeps_the_chain_valid() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin]);
    let admin = service
        .mfa_session(&mut admin, Environment::Development)
        .await;
    let mut erin_user = service.user(&org, "erin", &[Role::Approver]);
    let erin = service
        .mfa_session(&mut erin_user, Environment::Development)
        .await;

    let keygen = dev_token(&service, &org, &[Operation::Keygen]);
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "k", "algorithm": "ecdsa_p256", "policy": {"approvals_required": 1}}),
    )
    .await;
    let body = json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(sha256(b"x")), "idempotency_key": "e1"});
    let pending: SigningRequestInfo = json(
        service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await,
    )
    .await;
    let path = format!("/v1/signing-requests/{}", pending.id);
    let approved: SigningRequestInfo = json(
        service
            .post(&erin, &format!("{path}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(approved.approvals[0].approver, "erin");

    let response = service
        .delete(&admin, &format!("/v1/users/{}", erin_user.id))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    expect_error(
        service.get(&erin, "/v1/whoami").await,
        ErrorCode::TokenRevoked,
    )
    .await;
    expect_error(
        service
            .login(&mut erin_user, Environment::Development)
            .await,
        ErrorCode::LoginFailed,
    )
    .await;
    let users: UserList = json(service.get(&admin, "/v1/users").await).await;
    let erased = users.users.iter().find(|u| u.id == erin_user.id).unwrap();
    assert_eq!(erased.username, format!("erased-{}", erin_user.id));
    assert!(erased.roles.is_empty() && !erased.totp_enrolled);
    let request: SigningRequestInfo = json(service.get(&signer, &path).await).await;
    assert_eq!(request.approvals[0].approver_id, erin_user.id);
    assert_eq!(
        request.approvals[0].approver,
        format!("erased-{}", erin_user.id)
    );

    let records = service.audit_records(&org, 10_000);
    verify_chain(&org, &records).unwrap();
    assert!(records
        .iter()
        .any(|r| r.action == "user.erase" && r.target == erin_user.id));
    assert!(!serde_json::to_string(&records).unwrap().contains("erin"));
    expect_error(
        service
            .delete(&admin, "/v1/users/usr_0000000000000000")
            .await,
        ErrorCode::NotFound,
    )
    .await;
}
