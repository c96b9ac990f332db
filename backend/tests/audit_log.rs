//! The hash-chained audit log: every operation is recorded, the export verifies, checkpoints are signed,
//! and `cryptera-backend audit verify` catches edited, removed and reordered records.

#![allow(clippy::unwrap_used)]

mod common;

use aws_lc_rs::signature::{ParsedPublicKey, ED25519};
use common::{create_key, dev_token, expect_error, json, sha256, TestService, PASSWORD};
use cryptera_backend::audit::verify_chain;
use cryptera_backend::store::Database;
use cryptera_proto::audit::{AuditCheckpoint, AuditRecordList};
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

fn audit_verify(service: &TestService) -> (bool, String) {
    let output = service
        .command()
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Opens the database as an attacker with full access would, dropping the append-only triggers.
fn tamper(service: &TestService, sql: &str) {
    let drop_triggers = match service.database {
        Database::DataDir => {
            "DROP TRIGGER audit_records_no_update; DROP TRIGGER audit_records_no_delete;"
        }
        Database::Postgres(_) => {
            "DROP TRIGGER audit_records_no_update ON audit_records;
             DROP TRIGGER audit_records_no_delete ON audit_records;"
        }
    };
    service.sql(drop_triggers).unwrap();
    service.sql(sql).unwrap();
}

async fn busy_org(service: &TestService) -> (String, String) {
    let org = service.org("acme");
    let mut admin = service.user(&org, "admin", &[Role::Admin, Role::Auditor]);
    let session = service
        .mfa_session(&mut admin, Environment::Development)
        .await;
    let key = create_key(
        service,
        &session,
        json!({"label": "k", "algorithm": "ed25519"}),
    )
    .await;
    let signer = dev_token(service, &org, &[Operation::Sign]);
    for i in 0..3 {
        let body = json!({"mechanism": "ed25519", "data": Base64Bytes(format!("file {i}").into_bytes()),
                          "artifact": {"name": format!("file-{i}")}, "idempotency_key": format!("i{i}")});
        let response = service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    (org, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_recorded_and_the_export_verifies() {
    let service = TestService::start().await;
    let (org, session) = busy_org(&service).await;

    let list: AuditRecordList = json(service.get(&session, "/v1/audit/records").await).await;
    let actions: Vec<&str> = list.records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions[0], "org.create");
    for expected in [
        "user.create",
        "login",
        "user.totp_enrol",
        "key.create",
        "token.create",
        "key.sign",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions.iter().filter(|a| **a == "key.sign").count(), 3);
    let head = verify_chain(&org, &list.records).unwrap().unwrap();
    assert_eq!(head.0, list.records.len() as u64);

    let signing = list
        .records
        .iter()
        .find(|r| r.action == "key.sign")
        .unwrap();
    assert_eq!(signing.details["artifact_name"], "file-0");
    assert_eq!(
        signing.details["digest"],
        cryptera_backend::util::hex(&sha256(b"file 0"))
    );
    assert_eq!(signing.details["client_net"], "127.0.0.0/24");
    assert!(signing.actor.starts_with("tok_"));

    // JSON lines export has the same records.
    let response = service
        .client
        .get(service.url("/v1/audit/records?after=2&limit=3"))
        .bearer_auth(&session)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<cryptera_proto::audit::AuditRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, list.records[2..5].to_vec());

    // Signing records can be queried on their own, e.g. for one key.
    let key_id = signing.target.clone();
    let response = service
        .get(
            &session,
            &format!("/v1/audit/records?action=key.sign&target={key_id}&since=0"),
        )
        .await;
    let signing_only: AuditRecordList = json(response).await;
    assert_eq!(signing_only.records.len(), 3);
    assert!(signing_only
        .records
        .iter()
        .all(|r| r.action == "key.sign" && r.target == key_id));
    let none: AuditRecordList = json(
        service
            .get(&session, "/v1/audit/records?action=key.sign&until=1")
            .await,
    )
    .await;
    assert!(none.records.is_empty());
    expect_error(
        service.get(&session, "/v1/audit/records?limit=many").await,
        ErrorCode::InvalidRequest,
    )
    .await;

    // No secret ever reaches the audit log.
    let everything = serde_json::to_string(&list).unwrap();
    assert!(!everything.contains(PASSWORD));
    assert!(!everything.contains(&session[20..]));

    // Only credentials with the audit operation read it.
    let signer = dev_token(&service, &org, &[Operation::Sign, Operation::Read]);
    expect_error(
        service.get(&signer, "/v1/audit/records").await,
        ErrorCode::InsufficientScope,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_sign_the_chain_head() {
    let service = TestService::start().await;
    let (org, session) = busy_org(&service).await;
    let checkpoint: AuditCheckpoint =
        json(service.get(&session, "/v1/audit/checkpoint").await).await;
    let head = service.state.store().audit_head(&org).unwrap().unwrap();
    assert_eq!((checkpoint.seq, checkpoint.head_hash.clone()), head);
    let message =
        AuditCheckpoint::signed_message(&org, checkpoint.seq, &checkpoint.head_hash, checkpoint.at);
    ParsedPublicKey::new(&ED25519, checkpoint.public_key.as_slice())
        .unwrap()
        .verify_sig(&message, checkpoint.signature.as_slice())
        .unwrap();
    let kept: cryptera_proto::audit::AuditCheckpointList =
        json(service.get(&session, "/v1/audit/checkpoints").await).await;
    // A background checkpoint of the same head may have been kept first; either proves the head.
    let last = kept.checkpoints.last().unwrap();
    assert_eq!(
        (last.seq, &last.head_hash),
        (checkpoint.seq, &checkpoint.head_hash),
        "on-demand checkpoints are kept"
    );
    let forged = AuditCheckpoint::signed_message(
        &org,
        checkpoint.seq + 1,
        &checkpoint.head_hash,
        checkpoint.at,
    );
    assert!(
        ParsedPublicKey::new(&ED25519, checkpoint.public_key.as_slice())
            .unwrap()
            .verify_sig(&forged, checkpoint.signature.as_slice())
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_audit_edits() {
    let service = TestService::start().await;
    busy_org(&service).await;
    for sql in [
        "UPDATE audit_records SET outcome = 'x'",
        "DELETE FROM audit_records",
    ] {
        let refused = service.sql(sql).unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
    if let Database::Postgres(_) = service.database {
        let refused = service.sql("TRUNCATE audit_records").unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_an_edited_record() {
    let service = TestService::start().await;
    busy_org(&service).await;
    let (ok, out) = audit_verify(&service);
    assert!(ok, "{out}");
    assert!(out.contains(": ok,"));
    tamper(&service, "UPDATE audit_records SET details = replace(details, 'file-1', 'evil-1') WHERE action = 'key.sign'");
    let (ok, out) = audit_verify(&service);
    assert!(!ok);
    assert!(out.contains("TAMPERED") && out.contains("edited"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_a_removed_record() {
    let service = TestService::start().await;
    busy_org(&service).await;
    tamper(&service, "DELETE FROM audit_records WHERE seq = 3");
    let (ok, out) = audit_verify(&service);
    assert!(!ok);
    assert!(
        out.contains("record 4: expected sequence number 3"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_reordered_records() {
    let service = TestService::start().await;
    busy_org(&service).await;
    // Swap the content of two records while keeping the sequence numbers in place.
    tamper(
        &service,
        "UPDATE audit_records SET seq = -1 WHERE seq = 4;
         UPDATE audit_records SET seq = 4 WHERE seq = 5;
         UPDATE audit_records SET seq = 5 WHERE seq = -1;",
    );
    let (ok, out) = audit_verify(&service);
    assert!(!ok);
    assert!(out.contains("record 4"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_checkpoints_catch_a_removed_tail() {
    let mut config = common::test_config();
    config.checkpoint_interval = std::time::Duration::from_millis(200);
    let service = TestService::start_with(config).await;
    let (org, _) = busy_org(&service).await;
    // The service checkpoints on its own once the chain has moved.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let kept = service.state.store().checkpoints(&org).unwrap();
    let head = service.state.store().audit_head(&org).unwrap().unwrap();
    assert_eq!(
        kept.last().map(|c| (c.seq, c.head_hash.clone())),
        Some(head.clone())
    );
    assert_eq!(
        cryptera_backend::checkpoint::checkpoint_all(&service.state, 0).unwrap(),
        0,
        "nothing moved"
    );

    let (ok, out) = audit_verify(&service);
    assert!(ok, "{out}");
    // Removing the newest records leaves a chain that is valid on its own; the checkpoint is not.
    tamper(
        &service,
        &format!("DELETE FROM audit_records WHERE seq >= {}", head.0 - 1),
    );
    let (ok, out) = audit_verify(&service);
    assert!(!ok);
    assert!(out.contains("no longer matches the chain"), "{out}");
}
