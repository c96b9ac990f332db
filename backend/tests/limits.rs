//! Fair use over HTTP: per-token, per-organisation, per-key and per-login-name token buckets answering
//! 429 with Retry-After, and trial quotas.

#![allow(clippy::unwrap_used)]

mod common;

use common::{all_keys, create_key, dev_token, expect_error, token, TestService};
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

async fn expect_limited(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    expect_error(response, ErrorCode::RateLimited).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_and_each_organisation_has_a_bucket() {
    let mut config = common::test_config();
    config.credential_requests_per_minute = 5;
    config.organisation_requests_per_minute = 8;
    let service = TestService::start_with(config).await;
    let org = service.org("acme");
    let first = dev_token(&service, &org, &[Operation::Read]);
    let second = dev_token(&service, &org, &[Operation::Read]);
    for _ in 0..5 {
        assert_eq!(
            service.get(&first, "/v1/keys").await.status(),
            StatusCode::OK
        );
    }
    expect_limited(service.get(&first, "/v1/keys").await).await;
    // The other token has its own bucket, but the organisation's is nearly empty: 5 + 3 = 8.
    for _ in 0..3 {
        assert_eq!(
            service.get(&second, "/v1/keys").await.status(),
            StatusCode::OK
        );
    }
    expect_limited(service.get(&second, "/v1/keys").await).await;

    // Another organisation is unaffected.
    let other_org = service.org("globex");
    let other = dev_token(&service, &other_org, &[Operation::Read]);
    assert_eq!(
        service.get(&other, "/v1/keys").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_can_limit_their_signature_rate() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen]);
    let signer = dev_token(&service, &org, &[Operation::Sign]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "slow", "algorithm": "ed25519", "policy": {"rate_limit_per_minute": 2}}),
    )
    .await;
    let sign = |n: u32| json!({"mechanism": "ed25519", "data": Base64Bytes(vec![1]), "idempotency_key": format!("r{n}")});
    let path = format!("/v1/keys/{}/sign", key.id);
    assert_eq!(
        service.post(&signer, &path, &sign(1)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        service.post(&signer, &path, &sign(2)).await.status(),
        StatusCode::OK
    );
    expect_limited(service.post(&signer, &path, &sign(3)).await).await;
    let refused = service
        .audit_records(&org, 100)
        .into_iter()
        .filter(|r| r.action == "key.sign" && r.outcome == "rate_limited")
        .count();
    assert_eq!(refused, 1, "a refused signature is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited_per_username() {
    let mut config = common::test_config();
    config.login_attempts_per_minute = 3;
    let service = TestService::start_with(config).await;
    let org = service.org("acme");
    let _alice = service.user(&org, "alice", &[Role::Signer]);
    let attempt = |password: &str| json!({"organisation": "acme", "username": "alice", "password": password, "environment": "development"});
    for _ in 0..3 {
        let response = service
            .post_public("/v1/login", &attempt("guess guess guess"))
            .await;
        expect_error(response, ErrorCode::LoginFailed).await;
    }
    // Even the right password waits now: guessing cannot be sped up.
    let response = service
        .post_public("/v1/login", &attempt(common::PASSWORD))
        .await;
    expect_limited(response).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_organisations_have_small_quotas_and_only_the_trial_environment() {
    let service = TestService::start().await;
    let org = service.trial_org("tryout");
    let keygen = token(
        &service,
        &org,
        Environment::Trial,
        &[Operation::Keygen, Operation::Read],
        all_keys(),
    );
    for n in 0..5 {
        let response = service
            .post(
                &keygen,
                "/v1/keys",
                &json!({"label": format!("k{n}"), "algorithm": "ed25519"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "k5", "algorithm": "ed25519"}),
        )
        .await;
    expect_error(response, ErrorCode::QuotaExceeded).await;

    let mut user = service.user(&org, "tess", &[Role::Signer]);
    let response = service.login(&mut user, Environment::Development).await;
    expect_error(response, ErrorCode::InvalidRequest).await;
    assert_eq!(
        service.login(&mut user, Environment::Trial).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_limit_of_zero_is_refused() {
    // Found by schemathesis: 0 was accepted and stored, but enforced as 1 per minute.
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Admin]);
    let zero = json!({"rate_limit_per_minute": 0});
    let response = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "zero", "algorithm": "ed25519", "policy": zero}),
        )
        .await;
    expect_error(response, ErrorCode::InvalidRequest).await;
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "one", "algorithm": "ed25519", "policy": {"rate_limit_per_minute": 1}}),
    )
    .await;
    let response = service
        .put(&keygen, &format!("/v1/keys/{}/policy", key.id), &zero)
        .await;
    expect_error(response, ErrorCode::InvalidRequest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_organisations_hold_certificates_for_at_most_25_devices() {
    use common::devices::{openssl_csr, P256};
    let service = TestService::start().await;
    let org = service.trial_org("tryout");
    let admin = token(
        &service,
        &org,
        Environment::Trial,
        &[Operation::Admin, Operation::Read],
        all_keys(),
    );
    let enroller = token(
        &service,
        &org,
        Environment::Trial,
        &[Operation::Sign, Operation::Read],
        all_keys(),
    );
    let response = service.post(&admin, "/v1/cas", &json!({})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let dir = tempfile::tempdir().unwrap();
    let enroll = |device: String, csr: std::path::PathBuf, renew: bool| {
        let body = json!({"csr_pem": std::fs::read_to_string(csr).unwrap(), "renew": renew});
        let (service, enroller) = (&service, &enroller);
        async move {
            service
                .post(enroller, &format!("/v1/devices/{device}/enroll"), &body)
                .await
        }
    };
    let first = openssl_csr(dir.path(), "d0", P256, "d0");
    for n in 0..25 {
        let csr = if n == 0 {
            first.clone()
        } else {
            openssl_csr(dir.path(), &format!("d{n}"), P256, &format!("d{n}"))
        };
        let response = enroll(format!("d{n}"), csr, false).await;
        assert_eq!(response.status(), StatusCode::CREATED, "device {n}");
    }
    // The 26th device is refused, and nothing is stored for it.
    let extra = openssl_csr(dir.path(), "d25", P256, "d25");
    expect_error(
        enroll("d25".into(), extra, false).await,
        ErrorCode::QuotaExceeded,
    )
    .await;
    let response = service.get(&enroller, "/v1/devices/d25").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // A device the organisation has may still retry and renew.
    let response = enroll("d0".into(), first.clone(), false).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = enroll("d0".into(), first, true).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
