//! Key administration over HTTP: locks, scheduled deletion, restore, destruction, certificate chains,
//! and what is stored of a key (never the private key in clear).

#![allow(clippy::unwrap_used)]

mod common;

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
use common::{create_key, dev_token, expect_error, json, sha256, TestService};
use cryptera_backend::api::key_info;
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::keys::{KeyInfo, KeyList, KeyState};
use cryptera_proto::sign::SignResponse;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

/// A DER SEQUENCE wrapping `content` (definite long-form length), enough to frame test certificates.
fn der_sequence(content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(content.len()).unwrap().to_be_bytes();
    let mut out = vec![0x30, 0x82, len[0], len[1]];
    out.extend_from_slice(content);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_scheduled_deletion_restore_and_destruction() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin]);
    let session = service
        .mfa_session(&mut admin, Environment::Development)
        .await;
    let admin_token = dev_token(&service, &org, &[Operation::Admin, Operation::Read]);
    let signer = dev_token(&service, &org, &[Operation::Sign]);
    let key = create_key(
        &service,
        &session,
        json!({"label": "fw", "algorithm": "ed25519"}),
    )
    .await;
    let key_path = format!("/v1/keys/{}", key.id);
    let sign = |n: u32| json!({"mechanism": "ed25519", "data": Base64Bytes(b"x".to_vec()), "idempotency_key": format!("s{n}")});

    // A token can lock, but only a person with TOTP can unlock.
    let locked: KeyInfo = json(
        service
            .post(&admin_token, &format!("{key_path}/lock"), &json!({}))
            .await,
    )
    .await;
    assert!(locked.locked);
    expect_error(
        service.delete(&admin_token, &key_path).await,
        ErrorCode::KeyLocked,
    )
    .await;
    expect_error(
        service
            .delete(&admin_token, &format!("{key_path}/lock"))
            .await,
        ErrorCode::MfaRequired,
    )
    .await;
    let unlocked: KeyInfo = json(service.delete(&session, &format!("{key_path}/lock")).await).await;
    assert!(!unlocked.locked);

    // Deletion is scheduled, blocks signing, and can be undone.
    let deleted: KeyInfo = json(service.delete(&session, &key_path).await).await;
    assert_eq!(deleted.state, KeyState::PendingDeletion);
    let purge_at = deleted.purge_at.unwrap();
    assert!(purge_at > cryptera_backend::util::now() + 29 * 86_400);
    expect_error(
        service
            .post(&signer, &format!("{key_path}/sign"), &sign(1))
            .await,
        ErrorCode::KeyDeleted,
    )
    .await;
    let restored: KeyInfo = json(
        service
            .post(&session, &format!("{key_path}/restore"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(restored.state, KeyState::Active);
    assert_eq!(
        service
            .post(&signer, &format!("{key_path}/sign"), &sign(2))
            .await
            .status(),
        StatusCode::OK
    );

    // Once due, the key is destroyed: the sealed private key is erased and the key disappears.
    json::<KeyInfo>(service.delete(&session, &key_path).await).await;
    assert!(service
        .state
        .store()
        .purge_due_keys(purge_at - 1)
        .unwrap()
        .is_empty());
    let destroyed = service
        .state
        .store()
        .purge_due_keys(purge_at + 86_400)
        .unwrap();
    assert_eq!(destroyed, vec![key.id.clone()]);
    let record = service
        .state
        .store()
        .key_by_id(&org, &key.id)
        .unwrap()
        .unwrap();
    assert!(record.sealed_private_key.is_empty());
    expect_error(service.get(&session, &key_path).await, ErrorCode::NotFound).await;
    let list: KeyList = json(service.get(&session, "/v1/keys").await).await;
    assert!(list.keys.is_empty());

    let actions: Vec<String> = service
        .audit_records(&org, 1000)
        .into_iter()
        .map(|r| r.action)
        .collect();
    for expected in [
        "key.lock",
        "key.unlock",
        "key.delete",
        "key.restore",
        "key.purge",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected}");
    }
}

/// DER `ECDSA-Sig-Value` from the service's fixed-length `r || s`.
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        let mut value = if trimmed.first().is_some_and(|b| *b >= 0x80) {
            vec![0]
        } else {
            Vec::new()
        };
        value.extend_from_slice(&trimmed);
        let mut out = vec![0x02, u8::try_from(value.len()).unwrap()];
        out.extend(value);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

/// A self-signed certificate for `key`, its signature made by the service through the sign API, as a
/// certificate request flow would.
async fn self_signed(service: &TestService, signer: &str, key: &KeyInfo, subject: &str) -> Vec<u8> {
    use std::str::FromStr;
    use x509_cert::der::asn1::BitString;
    use x509_cert::der::oid::ObjectIdentifier;
    use x509_cert::der::{Decode, Encode};
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

    let algorithm = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        parameters: None,
    };
    let name = x509_cert::name::Name::from_str(subject).unwrap();
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::certificate::Version::V3,
        serial_number: x509_cert::serial_number::SerialNumber::new(&[0x01, 0x02]).unwrap(),
        signature: algorithm.clone(),
        issuer: name.clone(),
        validity: x509_cert::time::Validity::from_now(std::time::Duration::from_secs(86_400))
            .unwrap(),
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(key.public_key.as_slice())
            .unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let tbs_der = tbs.to_der().unwrap();
    let body = json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(sha256(&tbs_der)),
                      "artifact": {"name": "certificate", "description": subject},
                      "idempotency_key": format!("cert-{}", cryptera_backend::util::hex(&sha256(&tbs_der)))});
    let signed: SignResponse = json(
        service
            .post(signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await,
    )
    .await;
    let signature = ecdsa_der(signed.signature.as_slice());
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key.as_slice())
        .unwrap()
        .verify_sig(&tbs_der, &signature)
        .unwrap();
    x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_chains_must_match_the_key_and_name_the_environment() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let admin = dev_token(
        &service,
        &org,
        &[
            Operation::Admin,
            Operation::Keygen,
            Operation::Sign,
            Operation::Read,
        ],
    );
    let key = create_key(
        &service,
        &admin,
        json!({"label": "a", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let issuer = create_key(
        &service,
        &admin,
        json!({"label": "ca", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let path = format!("/v1/keys/{}/certificates", key.id);

    let leaf = self_signed(&service, &admin, &key, "CN=firmware,O=Acme (development)").await;
    let ca = self_signed(&service, &admin, &issuer, "CN=Acme CA (development)").await;
    let chain = json!({"certificates": [Base64Bytes(leaf.clone()), Base64Bytes(ca.clone())]});
    let updated: KeyInfo = json(service.put(&admin, &path, &chain).await).await;
    assert_eq!(
        updated.certificates,
        vec![Base64Bytes(leaf), Base64Bytes(ca.clone())]
    );
    let fetched: KeyInfo = json(service.get(&admin, &format!("/v1/keys/{}", key.id)).await).await;
    assert_eq!(fetched.certificates.len(), 2);

    // A development certificate that does not say so, another key's certificate, and non-DER are refused.
    let unmarked = self_signed(&service, &admin, &key, "CN=firmware,O=Acme").await;
    expect_error(
        service
            .put(
                &admin,
                &path,
                &json!({"certificates": [Base64Bytes(unmarked)]}),
            )
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;
    expect_error(
        service
            .put(&admin, &path, &json!({"certificates": [Base64Bytes(ca)]}))
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;
    let not_der = json!({"certificates": [Base64Bytes(der_sequence(key.public_key.as_slice()))]});
    expect_error(
        service.put(&admin, &path, &not_der).await,
        ErrorCode::InvalidRequest,
    )
    .await;

    json::<KeyInfo>(
        service
            .post(&admin, &format!("/v1/keys/{}/lock", key.id), &json!({}))
            .await,
    )
    .await;
    let clear = json!({"certificates": []});
    expect_error(
        service.put(&admin, &path, &clear).await,
        ErrorCode::KeyLocked,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_are_never_stored_in_clear() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "secret", "algorithm": "ecdsa_p256"}),
    )
    .await;

    let record = service
        .state
        .store()
        .key_by_id(&org, &key.id)
        .unwrap()
        .unwrap();
    assert_eq!(key_info(&record), key);
    let aad =
        cryptera_backend::api::private_key_aad(&record.id, &record.org_id, record.environment);
    let pkcs8 = service
        .state
        .kek()
        .open(&aad, &record.sealed_private_key)
        .unwrap();
    let wrong_env =
        cryptera_backend::api::private_key_aad(&record.id, &record.org_id, Environment::Production);
    assert!(service
        .state
        .kek()
        .open(&wrong_env, &record.sealed_private_key)
        .is_err());

    // The private scalar appears in no database file (main file or write-ahead log).
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
    )
    .unwrap();
    let scalar =
        aws_lc_rs::encoding::AsBigEndian::<aws_lc_rs::encoding::EcPrivateKeyBin>::as_be_bytes(
            &pair.private_key(),
        )
        .unwrap();
    let scalar = scalar.as_ref();
    assert_eq!(scalar.len(), 32);
    for entry in std::fs::read_dir(service.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(scalar.len()).any(|w| w == scalar));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_are_checked_applied_and_audited() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let admin = dev_token(
        &service,
        &org,
        &[Operation::Admin, Operation::Keygen, Operation::Read],
    );
    let signer = dev_token(&service, &org, &[Operation::Sign]);
    let key = create_key(
        &service,
        &admin,
        json!({"label": "p", "algorithm": "ed25519"}),
    )
    .await;
    let path = format!("/v1/keys/{}/policy", key.id);
    let sign =
        json!({"mechanism": "ed25519", "data": Base64Bytes(vec![7]), "idempotency_key": "p1"});
    assert_eq!(
        service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &sign)
            .await
            .status(),
        StatusCode::OK
    );

    let updated: KeyInfo = json(
        service
            .put(&admin, &path, &json!({"approvals_required": 1}))
            .await,
    )
    .await;
    assert_eq!(updated.policy.approvals_required, 1);
    let sign =
        json!({"mechanism": "ed25519", "data": Base64Bytes(vec![8]), "idempotency_key": "p2"});
    assert_eq!(
        service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &sign)
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    let bad = json!({"allowed_mechanisms": ["ecdsa_sha256"]});
    expect_error(
        service.put(&admin, &path, &bad).await,
        ErrorCode::UnsupportedMechanism,
    )
    .await;
    expect_error(
        service.put(&signer, &path, &json!({})).await,
        ErrorCode::InsufficientScope,
    )
    .await;
    let record = service
        .audit_records(&org, 1000)
        .into_iter()
        .find(|r| r.action == "key.policy")
        .unwrap();
    assert!(record.details["old"].contains("\"approvals_required\":0"));
    assert!(record.details["new"].contains("\"approvals_required\":1"));
}
