//! Signing requests that need M-of-N approvals: 202 with Location and Retry-After, approval by distinct
//! MFA-verified approvers, self-approval refused, deny, approver groups and expiry.

#![allow(clippy::unwrap_used)]

mod common;

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED};
use common::{create_key, dev_token, expect_error, json, sha256, TestService};
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::keys::KeyInfo;
use cryptera_proto::sign::{
    SignResponse, SigningRequestInfo, SigningRequestList, SigningRequestStatus,
};
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

fn sign_body(digest: &[u8], idempotency_key: &str) -> serde_json::Value {
    json!({
        "mechanism": "ecdsa_sha256",
        "digest": Base64Bytes(digest.to_vec()),
        "artifact": {"name": "app.apk"},
        "idempotency_key": idempotency_key,
    })
}

async fn key_with_policy(service: &TestService, org: &str, policy: serde_json::Value) -> KeyInfo {
    let keygen = dev_token(service, org, &[Operation::Keygen]);
    create_key(
        service,
        &keygen,
        json!({"label": "release", "algorithm": "ecdsa_p256", "policy": policy}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_n_approvals_then_the_signature() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let key = key_with_policy(&service, &org, json!({"approvals_required": 2})).await;
    // The requester is a human who is also an approver: they still never count.
    let mut requester = service.user(&org, "rita", &[Role::Signer, Role::Approver]);
    let mut ann = service.user(&org, "ann", &[Role::Approver]);
    let mut bob = service.user(&org, "bob", &[Role::Approver]);
    let rita = service
        .mfa_session(&mut requester, Environment::Development)
        .await;
    let ann = service
        .mfa_session(&mut ann, Environment::Development)
        .await;
    let bob = service
        .mfa_session(&mut bob, Environment::Development)
        .await;
    let digest = sha256(b"app release 7");
    let sign_path = format!("/v1/keys/{}/sign", key.id);

    let response = service
        .post(&rita, &sign_path, &sign_body(&digest, "release-7"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let pending: SigningRequestInfo = json(response).await;
    assert_eq!(location, format!("/v1/signing-requests/{}", pending.id));
    assert_eq!(pending.status, SigningRequestStatus::Pending);
    assert_eq!(pending.approvals_required, 2);
    assert_eq!(pending.digest.as_slice(), digest.as_slice());
    assert!(pending.signature.is_none());

    let listed: SigningRequestList = json(
        service
            .get(&ann, "/v1/signing-requests?status=pending")
            .await,
    )
    .await;
    assert_eq!(listed.requests, vec![pending.clone()]);

    let approve = format!("{location}/approve");
    expect_error(
        service.post(&rita, &approve, &json!({})).await,
        ErrorCode::SelfApprovalRefused,
    )
    .await;
    let once: SigningRequestInfo = json(service.post(&ann, &approve, &json!({})).await).await;
    assert_eq!(once.status, SigningRequestStatus::Pending);
    assert_eq!(once.approvals.len(), 1);
    expect_error(
        service.post(&ann, &approve, &json!({})).await,
        ErrorCode::AlreadyExists,
    )
    .await;
    // Retrying the sign request while pending answers 202 again, without a second request.
    let response = service
        .post(&rita, &sign_path, &sign_body(&digest, "release-7"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(json::<SigningRequestInfo>(response).await.id, pending.id);

    let done: SigningRequestInfo = json(service.post(&bob, &approve, &json!({})).await).await;
    assert_eq!(done.status, SigningRequestStatus::Completed);
    let approvers: Vec<&str> = done.approvals.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(approvers, ["ann", "bob"]);
    let signature = done.signature.clone().unwrap();
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key.as_slice())
        .unwrap()
        .verify_sig(b"app release 7", signature.as_slice())
        .unwrap();

    // Polling and retrying both give the same signature now.
    let polled: SigningRequestInfo = json(service.get(&rita, &location).await).await;
    assert_eq!(polled.signature, Some(signature.clone()));
    let response = service
        .post(&rita, &sign_path, &sign_body(&digest, "release-7"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json::<SignResponse>(response).await.signature, signature);
    expect_error(
        service.post(&bob, &approve, &json!({})).await,
        ErrorCode::RequestNotPending,
    )
    .await;

    let audit = service.audit_records(&org, 1000);
    let approval = audit
        .iter()
        .rev()
        .find(|r| r.action == "sign.approve")
        .unwrap();
    assert_eq!(approval.details["status"], "completed");
    assert!(approval.details["approvers"].contains(','));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_requests_never_sign() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let key = key_with_policy(&service, &org, json!({"approvals_required": 1})).await;
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let mut ann = service.user(&org, "ann", &[Role::Approver]);
    let ann = service
        .mfa_session(&mut ann, Environment::Development)
        .await;
    let digest = sha256(b"suspicious build");
    let sign_path = format!("/v1/keys/{}/sign", key.id);

    let pending: SigningRequestInfo = json(
        service
            .post(&signer, &sign_path, &sign_body(&digest, "b1"))
            .await,
    )
    .await;
    let path = format!("/v1/signing-requests/{}", pending.id);
    let denied: SigningRequestInfo = json(
        service
            .post(
                &ann,
                &format!("{path}/deny"),
                &json!({"reason": "not from the release branch"}),
            )
            .await,
    )
    .await;
    assert_eq!(denied.status, SigningRequestStatus::Denied);
    assert!(denied.signature.is_none());
    expect_error(
        service
            .post(&ann, &format!("{path}/approve"), &json!({}))
            .await,
        ErrorCode::RequestNotPending,
    )
    .await;
    expect_error(
        service
            .post(&signer, &sign_path, &sign_body(&digest, "b1"))
            .await,
        ErrorCode::RequestNotPending,
    )
    .await;
    // Tokens with only sign/read cannot approve.
    expect_error(
        service
            .post(&signer, &format!("{path}/approve"), &json!({}))
            .await,
        ErrorCode::InsufficientScope,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approver_groups_mfa_and_expiry() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let key = key_with_policy(
        &service,
        &org,
        json!({"approvals_required": 1, "approvers": ["carol"], "request_expiry_seconds": 2}),
    )
    .await;
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let mut carol_user = service.user(&org, "carol", &[Role::Approver]);
    let mut dave_user = service.user(&org, "dave", &[Role::Approver]);
    let carol_plain = service
        .session(&mut carol_user, Environment::Development)
        .await;
    let carol = service
        .mfa_session(&mut carol_user, Environment::Development)
        .await;
    let dave = service
        .mfa_session(&mut dave_user, Environment::Development)
        .await;
    let sign_path = format!("/v1/keys/{}/sign", key.id);

    let pending: SigningRequestInfo = json(
        service
            .post(&signer, &sign_path, &sign_body(&sha256(b"one"), "g1"))
            .await,
    )
    .await;
    let approve = format!("/v1/signing-requests/{}/approve", pending.id);
    expect_error(
        service.post(&dave, &approve, &json!({})).await,
        ErrorCode::InsufficientScope,
    )
    .await;
    expect_error(
        service.post(&carol_plain, &approve, &json!({})).await,
        ErrorCode::MfaRequired,
    )
    .await;
    let done: SigningRequestInfo = json(service.post(&carol, &approve, &json!({})).await).await;
    assert_eq!(done.status, SigningRequestStatus::Completed);

    let late: SigningRequestInfo = json(
        service
            .post(&signer, &sign_path, &sign_body(&sha256(b"two"), "g2"))
            .await,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let polled: SigningRequestInfo = json(
        service
            .get(&signer, &format!("/v1/signing-requests/{}", late.id))
            .await,
    )
    .await;
    assert_eq!(polled.status, SigningRequestStatus::Expired);
    let pending_list: SigningRequestList = json(
        service
            .get(&signer, "/v1/signing-requests?status=pending")
            .await,
    )
    .await;
    assert!(pending_list.requests.iter().all(|r| r.id != late.id));
    let expired_list: SigningRequestList = json(
        service
            .get(&signer, "/v1/signing-requests?status=expired")
            .await,
    )
    .await;
    assert_eq!(
        expired_list
            .requests
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [late.id.as_str()]
    );
    let approve = format!("/v1/signing-requests/{}/approve", late.id);
    expect_error(
        service.post(&carol, &approve, &json!({})).await,
        ErrorCode::RequestNotPending,
    )
    .await;
    let stored = service
        .state
        .store()
        .signing_request(&org, &late.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, SigningRequestStatus::Expired);
    assert!(stored.signature.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_window_covers_a_release_pipeline() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let key = key_with_policy(
        &service,
        &org,
        json!({"approvals_required": 1, "approval_window": {"max_signatures": 3, "hours": 2}}),
    )
    .await;
    let pipeline = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let other = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let mut ann = service.user(&org, "ann", &[Role::Approver]);
    let ann = service
        .mfa_session(&mut ann, Environment::Development)
        .await;
    let sign_path = format!("/v1/keys/{}/sign", key.id);

    let first: SigningRequestInfo = json(
        service
            .post(&pipeline, &sign_path, &sign_body(&sha256(b"file 1"), "f1"))
            .await,
    )
    .await;
    assert_eq!(first.status, SigningRequestStatus::Pending);
    let approved: SigningRequestInfo = json(
        service
            .post(
                &ann,
                &format!("/v1/signing-requests/{}/approve", first.id),
                &json!({}),
            )
            .await,
    )
    .await;
    assert_eq!(approved.status, SigningRequestStatus::Completed);

    // Two more files sign at once under the window (three signatures in all) ...
    for n in 2..=3 {
        let response = service
            .post(
                &pipeline,
                &sign_path,
                &sign_body(&sha256(format!("file {n}").as_bytes()), &format!("f{n}")),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "file {n}");
        let signed: SignResponse = json(response).await;
        let request: SigningRequestInfo = json(
            service
                .get(
                    &pipeline,
                    &format!("/v1/signing-requests/{}", signed.request_id),
                )
                .await,
        )
        .await;
        assert_eq!(request.approved_under.as_deref(), Some(first.id.as_str()));
        assert!(request.approvals.is_empty());
    }
    // ... then the window is used up, and it never covered another requester.
    let response = service
        .post(&pipeline, &sign_path, &sign_body(&sha256(b"file 4"), "f4"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = service
        .post(&other, &sign_path, &sign_body(&sha256(b"file 5"), "f5"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_scheduled_for_deletion_signs_no_approved_request() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let key = key_with_policy(&service, &org, json!({"approvals_required": 1})).await;
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let admin = dev_token(&service, &org, &[Operation::Admin, Operation::Read]);
    let mut ann = service.user(&org, "ann", &[Role::Approver]);
    let ann = service
        .mfa_session(&mut ann, Environment::Development)
        .await;
    let pending: SigningRequestInfo = json(
        service
            .post(
                &signer,
                &format!("/v1/keys/{}/sign", key.id),
                &sign_body(&sha256(b"late"), "d1"),
            )
            .await,
    )
    .await;
    let response = service
        .delete(&admin, &format!("/v1/keys/{}", key.id))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let approve = format!("/v1/signing-requests/{}/approve", pending.id);
    expect_error(
        service.post(&ann, &approve, &json!({})).await,
        ErrorCode::KeyDeleted,
    )
    .await;
    let stored = service
        .state
        .store()
        .signing_request(&org, &pending.id)
        .unwrap()
        .unwrap();
    assert!(stored.signature.is_none() && stored.approvals.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_messages_wait_for_approval_and_are_then_signed() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "ed", "algorithm": "ed25519", "policy": {"approvals_required": 1}}),
    )
    .await;
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    let mut ann = service.user(&org, "ann", &[Role::Approver]);
    let ann = service
        .mfa_session(&mut ann, Environment::Development)
        .await;
    let message = b"manifest.json contents".to_vec();
    let body = json!({"mechanism": "ed25519", "data": Base64Bytes(message.clone()), "idempotency_key": "m1"});
    let pending: SigningRequestInfo = json(
        service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await,
    )
    .await;
    // Approvers see the SHA-256 of the message, not the message.
    assert_eq!(pending.digest.as_slice(), sha256(&message).as_slice());
    let done: SigningRequestInfo = json(
        service
            .post(
                &ann,
                &format!("/v1/signing-requests/{}/approve", pending.id),
                &json!({}),
            )
            .await,
    )
    .await;
    ParsedPublicKey::new(&aws_lc_rs::signature::ED25519, key.public_key.as_slice())
        .unwrap()
        .verify_sig(&message, done.signature.unwrap().as_slice())
        .unwrap();
    let stored = service
        .state
        .store()
        .signing_request(&org, &pending.id)
        .unwrap()
        .unwrap();
    assert!(stored.data.is_none(), "the message is dropped once signed");
}
