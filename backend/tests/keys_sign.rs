//! Key generation, listing with ETags, signing with every algorithm, and the checks around signing:
//! environments, token scopes, mechanism policy and idempotency.

#![allow(clippy::unwrap_used)]

mod common;

use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED,
    ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384,
};
use common::{all_keys, create_key, dev_token, expect_error, json, sha256, token, TestService};
use cryptera_proto::auth::{KeyScope, Operation, Role};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::keys::{KeyInfo, KeyList};
use cryptera_proto::sign::SignResponse;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

const SIGNER_OPS: &[Operation] = &[Operation::Sign, Operation::Read];

fn verify(
    alg: &'static dyn VerificationAlgorithm,
    key: &KeyInfo,
    message: &[u8],
    signature: &Base64Bytes,
) {
    ParsedPublicKey::new(alg, key.public_key.as_slice())
        .unwrap()
        .verify_sig(message, signature.as_slice())
        .unwrap_or_else(|_| panic!("signature by {:?} does not verify", key.algorithm));
}

fn sign_body(mechanism: &str, digest: &[u8], idempotency_key: &str) -> serde_json::Value {
    json!({
        "mechanism": mechanism,
        "digest": Base64Bytes(digest.to_vec()),
        "artifact": {"name": "firmware.bin", "hash": "sha256:test", "description": "nightly"},
        "idempotency_key": idempotency_key,
    })
}

/// A GET with `If-None-Match: etag`.
async fn get_if_none_match(
    service: &TestService,
    token: &str,
    path: &str,
    etag: &str,
) -> reqwest::Response {
    service
        .client
        .get(service.url(path))
        .bearer_auth(token)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_generates_and_signs_verifiably() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin]);
    let session = service
        .mfa_session(&mut admin, Environment::Development)
        .await;
    let signer = dev_token(&service, &org, SIGNER_OPS);
    let message = b"release 1.2.3 firmware image";
    let digest256 = sha256(message);
    let digest384 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, message);

    let cases: [(&str, &str, Vec<u8>, &'static dyn VerificationAlgorithm); 5] = [
        (
            "rsa2048",
            "rsa_pkcs1_sha256",
            digest256.clone(),
            &RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            "rsa3072",
            "rsa_pss_sha384",
            digest384.as_ref().to_vec(),
            &RSA_PSS_2048_8192_SHA384,
        ),
        (
            "ecdsa_p256",
            "ecdsa_sha256",
            digest256.clone(),
            &ECDSA_P256_SHA256_FIXED,
        ),
        (
            "ecdsa_p384",
            "ecdsa_sha384",
            digest384.as_ref().to_vec(),
            &ECDSA_P384_SHA384_FIXED,
        ),
        ("ed25519", "ed25519", Vec::new(), &ED25519),
    ];
    for (index, (algorithm, mechanism, digest, verifier)) in cases.into_iter().enumerate() {
        let key = create_key(
            &service,
            &session,
            json!({"label": format!("key-{algorithm}"), "algorithm": algorithm}),
        )
        .await;
        assert_eq!(key.algorithm.as_str(), algorithm);
        assert_eq!(key.environment, Environment::Development);
        let body = if mechanism == "ed25519" {
            json!({"mechanism": "ed25519", "data": Base64Bytes(message.to_vec()), "idempotency_key": format!("k{index}")})
        } else {
            sign_body(mechanism, &digest, &format!("k{index}"))
        };
        let response = service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{algorithm}");
        let signed: SignResponse = json(response).await;
        assert_eq!(signed.key_id, key.id);
        verify(verifier, &key, message, &signed.signature);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa4096_keys_and_bad_key_requests() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "big", "algorithm": "rsa4096"}),
    )
    .await;
    let spki = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key.as_slice());
    assert!(spki.is_ok());

    let duplicate = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "big", "algorithm": "ed25519"}),
        )
        .await;
    expect_error(duplicate, ErrorCode::AlreadyExists).await;
    let unknown_alg = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "x", "algorithm": "rsa1024"}),
        )
        .await;
    expect_error(unknown_alg, ErrorCode::InvalidRequest).await;
    let bad_policy = service
        .post(&keygen, "/v1/keys", &json!({"label": "x", "algorithm": "ed25519", "policy": {"allowed_mechanisms": ["rsa_pss_sha256"]}}))
        .await;
    expect_error(bad_policy, ErrorCode::UnsupportedMechanism).await;
    let bad_label = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "no spaces please", "algorithm": "ed25519"}),
        )
        .await;
    expect_error(bad_label, ErrorCode::InvalidRequest).await;

    let list: KeyList = json(service.get(&keygen, "/v1/keys").await).await;
    assert_eq!(list.keys.len(), 1, "failed requests created nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lists_carry_etags_and_answer_304_until_something_changes() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let first = create_key(
        &service,
        &keygen,
        json!({"label": "a", "algorithm": "ed25519"}),
    )
    .await;

    let response = service.get(&keygen, "/v1/keys").await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let list: KeyList = json(response).await;
    assert_eq!(list.keys, vec![first.clone()]);

    let cached = get_if_none_match(&service, &keygen, "/v1/keys", &etag).await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    create_key(
        &service,
        &keygen,
        json!({"label": "b", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let changed = get_if_none_match(&service, &keygen, "/v1/keys", &etag).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);

    let one = service
        .get(&keygen, &format!("/v1/keys/{}", first.id))
        .await;
    let one_etag = one.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(json::<KeyInfo>(one).await, first);
    let cached_one = get_if_none_match(
        &service,
        &keygen,
        &format!("/v1/keys/{}", first.id),
        &one_etag,
    )
    .await;
    assert_eq!(cached_one.status(), StatusCode::NOT_MODIFIED);
    expect_error(
        service.get(&keygen, "/v1/keys/key_0000000000000000").await,
        ErrorCode::NotFound,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_and_production_never_mix() {
    let mut config = common::test_config();
    config.allow_production_with_file_kek = true;
    let service = TestService::start_with(config).await;
    let org = service.org("acme");
    let dev_keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let prod_keygen = token(
        &service,
        &org,
        Environment::Production,
        &[Operation::Keygen, Operation::Read],
        all_keys(),
    );
    let dev_signer = dev_token(&service, &org, SIGNER_OPS);
    let prod_signer = token(
        &service,
        &org,
        Environment::Production,
        SIGNER_OPS,
        all_keys(),
    );
    let dev_key = create_key(
        &service,
        &dev_keygen,
        json!({"label": "dev", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let prod_key = create_key(
        &service,
        &prod_keygen,
        json!({"label": "prod", "algorithm": "ecdsa_p256"}),
    )
    .await;
    assert_eq!(prod_key.environment, Environment::Production);
    let digest = sha256(b"artifact");

    let response = service
        .post(
            &prod_signer,
            &format!("/v1/keys/{}/sign", dev_key.id),
            &sign_body("ecdsa_sha256", &digest, "x1"),
        )
        .await;
    expect_error(response, ErrorCode::EnvironmentMismatch).await;
    let response = service
        .post(
            &dev_signer,
            &format!("/v1/keys/{}/sign", prod_key.id),
            &sign_body("ecdsa_sha256", &digest, "x2"),
        )
        .await;
    expect_error(response, ErrorCode::EnvironmentMismatch).await;
    expect_error(
        service
            .get(&prod_signer, &format!("/v1/keys/{}", dev_key.id))
            .await,
        ErrorCode::EnvironmentMismatch,
    )
    .await;
    let prod_list: KeyList = json(service.get(&prod_signer, "/v1/keys").await).await;
    assert_eq!(prod_list.keys, vec![prod_key.clone()]);

    // Each works in its own environment.
    let response = service
        .post(
            &prod_signer,
            &format!("/v1/keys/{}/sign", prod_key.id),
            &sign_body("ecdsa_sha256", &digest, "x3"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_keys_need_an_hsm_kek_by_default() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let prod_keygen = token(
        &service,
        &org,
        Environment::Production,
        &[Operation::Keygen, Operation::Read],
        all_keys(),
    );
    let response = service
        .post(
            &prod_keygen,
            "/v1/keys",
            &json!({"label": "prod", "algorithm": "ed25519"}),
        )
        .await;
    expect_error(response, ErrorCode::ProductionRequiresHsmKek).await;
    let list: KeyList = json(service.get(&prod_keygen, "/v1/keys").await).await;
    assert!(list.keys.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_scopes_and_key_policy_are_enforced() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let release = create_key(
        &service,
        &keygen,
        json!({"label": "release-1", "algorithm": "rsa2048", "policy": {"allowed_mechanisms": ["rsa_pss_sha256"]}}),
    )
    .await;
    let other = create_key(
        &service,
        &keygen,
        json!({"label": "internal", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let scoped = token(
        &service,
        &org,
        Environment::Development,
        SIGNER_OPS,
        KeyScope {
            ids: Vec::new(),
            label_patterns: vec!["release-*".into()],
        },
    );
    let reader = dev_token(&service, &org, &[Operation::Read]);
    let digest = sha256(b"artifact");

    // Out of scope looks like nonexistent.
    let response = service
        .post(
            &scoped,
            &format!("/v1/keys/{}/sign", other.id),
            &sign_body("ecdsa_sha256", &digest, "a"),
        )
        .await;
    expect_error(response, ErrorCode::NotFound).await;
    let list: KeyList = json(service.get(&scoped, "/v1/keys").await).await;
    assert_eq!(
        list.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [release.id.as_str()]
    );
    // Read-only tokens cannot sign.
    let response = service
        .post(
            &reader,
            &format!("/v1/keys/{}/sign", release.id),
            &sign_body("rsa_pss_sha256", &digest, "b"),
        )
        .await;
    expect_error(response, ErrorCode::InsufficientScope).await;
    // Policy, algorithm and input checks.
    let path = format!("/v1/keys/{}/sign", release.id);
    expect_error(
        service
            .post(&scoped, &path, &sign_body("rsa_pkcs1_sha256", &digest, "c"))
            .await,
        ErrorCode::MechanismNotAllowed,
    )
    .await;
    expect_error(
        service
            .post(&scoped, &path, &sign_body("ecdsa_sha256", &digest, "d"))
            .await,
        ErrorCode::UnsupportedMechanism,
    )
    .await;
    expect_error(
        service
            .post(
                &scoped,
                &path,
                &sign_body("rsa_pss_sha256", &digest[..20], "e"),
            )
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;
    expect_error(
        service
            .post(&scoped, &path, &sign_body("rsa_pss_sha256", &digest, ""))
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;
    let both = json!({"mechanism": "rsa_pss_sha256", "digest": Base64Bytes(digest.clone()), "data": Base64Bytes(b"x".to_vec()), "idempotency_key": "f"});
    expect_error(
        service.post(&scoped, &path, &both).await,
        ErrorCode::InvalidRequest,
    )
    .await;
    let response = service
        .post(&scoped, &path, &sign_body("rsa_pss_sha256", &digest, "g"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_never_signs_twice() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let signer = dev_token(&service, &org, SIGNER_OPS);
    // ECDSA signatures are randomised: getting the same bytes back proves nothing was signed again.
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "ci", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let path = format!("/v1/keys/{}/sign", key.id);
    let digest = sha256(b"build 42");

    let first: SignResponse = json(
        service
            .post(
                &signer,
                &path,
                &sign_body("ecdsa_sha256", &digest, "build-42"),
            )
            .await,
    )
    .await;
    let retry: SignResponse = json(
        service
            .post(
                &signer,
                &path,
                &sign_body("ecdsa_sha256", &digest, "build-42"),
            )
            .await,
    )
    .await;
    assert_eq!(first, retry);
    let fresh: SignResponse = json(
        service
            .post(
                &signer,
                &path,
                &sign_body("ecdsa_sha256", &digest, "build-43"),
            )
            .await,
    )
    .await;
    assert_ne!(fresh.signature, first.signature);

    let other_digest = sha256(b"build 42 tampered");
    let conflict = service
        .post(
            &signer,
            &path,
            &sign_body("ecdsa_sha256", &other_digest, "build-42"),
        )
        .await;
    expect_error(conflict, ErrorCode::IdempotencyConflict).await;

    let org_id = org.clone();
    let signatures = service
        .audit_records(&org_id, 1000)
        .into_iter()
        .filter(|r| r.action == "key.sign" && r.outcome == "ok")
        .count();
    assert_eq!(signatures, 2, "two signing requests, two signatures");
}
