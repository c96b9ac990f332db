//! Two service instances on one database (as two processes behind a load balancer): idempotency,
//! approvals and the audit chain stay correct when requests race across them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{create_key, dev_token, json, sha256, TestService};
use cryptera_backend::audit::verify_chain;
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::sign::{SignResponse, SigningRequestInfo, SigningRequestStatus};
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

fn sign_body(digest: &[u8], idempotency_key: &str) -> serde_json::Value {
    json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(digest.to_vec()), "idempotency_key": idempotency_key})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_across_two_instances() {
    let first = TestService::start().await;
    let second = first.second_on_same_database().await;
    let org = first.org("acme");
    let keygen = dev_token(&first, &org, &[Operation::Keygen]);
    let signer = dev_token(&first, &org, &[Operation::Sign, Operation::Read]);
    let key = create_key(
        &first,
        &keygen,
        json!({"label": "shared", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let path = format!("/v1/keys/{}/sign", key.id);
    let digest = sha256(b"one artifact");

    // The same idempotency key sent 16 times at once through both instances: one signature.
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (base, client, signer, path, body) = {
            let service = if n % 2 == 0 { &first } else { &second };
            (
                service.base.clone(),
                service.client.clone(),
                signer.clone(),
                path.clone(),
                sign_body(&digest, "same"),
            )
        };
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(format!("{base}{path}"))
                .bearer_auth(signer)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<SignResponse>().await.unwrap()
        }));
    }
    let mut signatures = HashSet::new();
    for task in tasks {
        signatures.insert(task.await.unwrap().signature);
    }
    assert_eq!(
        signatures.len(),
        1,
        "ECDSA is randomised: one distinct signature means one signing"
    );

    // Distinct requests racing through both instances all succeed and the chain never forks.
    let mut tasks = Vec::new();
    for n in 0..24 {
        let service = if n % 2 == 0 { &first } else { &second };
        let (base, client, signer, path) = (
            service.base.clone(),
            service.client.clone(),
            signer.clone(),
            path.clone(),
        );
        let body = sign_body(
            &sha256(format!("artifact {n}").as_bytes()),
            &format!("k{n}"),
        );
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(format!("{base}{path}"))
                .bearer_auth(signer)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let records = first.audit_records(&org, 10_000);
    verify_chain(&org, &records).unwrap();
    let signed = records
        .iter()
        .filter(|r| r.action == "key.sign" && r.outcome == "ok")
        .count();
    assert_eq!(signed, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_approvals_on_two_instances_sign_once() {
    let first = TestService::start().await;
    let second = first.second_on_same_database().await;
    let org = first.org("acme");
    let keygen = dev_token(&first, &org, &[Operation::Keygen]);
    let signer = dev_token(&first, &org, &[Operation::Sign, Operation::Read]);
    let key = create_key(
        &first,
        &keygen,
        json!({"label": "k", "algorithm": "ecdsa_p256", "policy": {"approvals_required": 2}}),
    )
    .await;
    let mut ann = first.user(&org, "ann", &[Role::Approver]);
    let mut bob = first.user(&org, "bob", &[Role::Approver]);
    let mut cid = first.user(&org, "cid", &[Role::Approver]);
    let ann = first.mfa_session(&mut ann, Environment::Development).await;
    let bob = second.mfa_session(&mut bob, Environment::Development).await;
    let cid = second.mfa_session(&mut cid, Environment::Development).await;

    let pending: SigningRequestInfo = json(
        first
            .post(
                &signer,
                &format!("/v1/keys/{}/sign", key.id),
                &sign_body(&sha256(b"x"), "r"),
            )
            .await,
    )
    .await;
    let approve = format!("/v1/signing-requests/{}/approve", pending.id);
    // Three approvers race for a 2-of-N request across both instances: exactly two approvals count,
    // the third finds the request no longer pending, and one signature exists.
    let mut tasks = Vec::new();
    for (n, session) in [ann, bob, cid].into_iter().enumerate() {
        let service = if n % 2 == 0 { &first } else { &second };
        let (base, client, approve) = (
            service.base.clone(),
            service.client.clone(),
            approve.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}{approve}"))
                .bearer_auth(session)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::CONFLICT]
    );
    let done: SigningRequestInfo = json(
        second
            .get(&signer, &format!("/v1/signing-requests/{}", pending.id))
            .await,
    )
    .await;
    assert_eq!(done.status, SigningRequestStatus::Completed);
    assert_eq!(done.approvals.len(), 2);
    assert!(done.signature.is_some());
}
