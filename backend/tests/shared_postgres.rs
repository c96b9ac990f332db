//! Two `cryptera-backend serve` processes on one PostgreSQL database, as behind a load balancer: the
//! same idempotency key sent to both at once signs once, racing approvals through both count exactly
//! M, the audit chain verifies after concurrent writes from both, and a rate limit holds across both.
//!
//! Runs when `CRYPTERA_TEST_POSTGRES` names a server (`backend/scripts/with-postgres.sh` starts one);
//! without it each test says so and passes. `shared_database.rs` covers two instances on SQLite.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;

use common::{create_key, dev_token, json, sha256, Server, TestService};
use cryptera_backend::audit::verify_chain;
use cryptera_backend::store::Database;
use cryptera_backend::{server, AppState};
use cryptera_proto::auth::{Operation, Role};
use cryptera_proto::sign::{SignResponse, SigningRequestInfo, SigningRequestStatus};
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

/// A data directory initialised on a fresh PostgreSQL database, or `None` without a server.
fn setup() -> Option<(Arc<tempfile::TempDir>, Database)> {
    let Some(server) = common::postgres_server() else {
        eprintln!(
            "skipped: set {} to run on PostgreSQL",
            common::POSTGRES_VARIABLE
        );
        return None;
    };
    let database = Database::Postgres(common::fresh_postgres_database(&server));
    let dir = tempfile::tempdir().unwrap();
    server::init(dir.path(), &database).unwrap();
    Some((Arc::new(dir), database))
}

/// Starts `serve` on a random loopback port and returns it with a test handle on it.
fn serve(
    dir: &Arc<tempfile::TempDir>,
    database: &Database,
    flags: &[&str],
) -> (Server, TestService) {
    let mut child = common::backend(dir.path(), database)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--login-failure-delay-ms",
            "10",
        ])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = common::listening_address(&mut child);
    // This process's own state on the same database, for setup (as the CLI would do).
    let state = AppState::open(dir.path(), database, common::test_config()).unwrap();
    let handle = TestService::attach(
        format!("http://{address}"),
        state,
        Arc::clone(dir),
        database.clone(),
    );
    (Server(child), handle)
}

fn sign_body(digest: &[u8], idempotency_key: &str) -> serde_json::Value {
    json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(digest.to_vec()), "idempotency_key": idempotency_key})
}

async fn post_status(
    service: &TestService,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, String) {
    let response = service.post(token, path, &body).await;
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_idempotency_approvals_and_the_audit_chain() {
    let Some((dir, database)) = setup() else {
        return;
    };
    let (_first_process, first) = serve(&dir, &database, &[]);
    let (_second_process, second) = serve(&dir, &database, &[]);
    let services = [Arc::new(first), Arc::new(second)];
    let org = services[0].org("acme");
    let keygen = dev_token(&services[0], &org, &[Operation::Keygen]);
    let signer = dev_token(&services[0], &org, &[Operation::Sign, Operation::Read]);
    let key = create_key(
        &services[1],
        &keygen,
        json!({"label": "shared", "algorithm": "ecdsa_p256"}),
    )
    .await;
    let path = format!("/v1/keys/{}/sign", key.id);

    // One idempotency key, 16 requests at once through both processes: one signature.
    let digest = sha256(b"one artifact");
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (service, signer, path) = (Arc::clone(&services[n % 2]), signer.clone(), path.clone());
        let body = sign_body(&digest, "same");
        tasks.push(tokio::spawn(async move {
            let (status, text) = post_status(&service, &signer, &path, body).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            serde_json::from_str::<SignResponse>(&text)
                .unwrap()
                .signature
        }));
    }
    let mut signatures = HashSet::new();
    for task in tasks {
        signatures.insert(task.await.unwrap());
    }
    assert_eq!(
        signatures.len(),
        1,
        "ECDSA is randomised: one distinct signature means one signing"
    );

    // Distinct requests racing through both processes all succeed and the chain never forks.
    let mut tasks = Vec::new();
    for n in 0..32 {
        let (service, signer, path) = (Arc::clone(&services[n % 2]), signer.clone(), path.clone());
        let body = sign_body(
            &sha256(format!("artifact {n}").as_bytes()),
            &format!("k{n}"),
        );
        tasks.push(tokio::spawn(async move {
            post_status(&service, &signer, &path, body).await
        }));
    }
    for task in tasks {
        let (status, text) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
    }

    // Three approvers race for a 2-of-N request through both processes: two approvals count, the
    // third finds the request no longer pending, one signature exists.
    let guarded = create_key(
        &services[0],
        &keygen,
        json!({"label": "guarded", "algorithm": "ecdsa_p256", "policy": {"approvals_required": 2}}),
    )
    .await;
    let mut sessions = Vec::new();
    for (n, name) in ["ann", "bob", "cid"].into_iter().enumerate() {
        let mut user = services[0].user(&org, name, &[Role::Approver]);
        sessions.push(
            services[n % 2]
                .mfa_session(&mut user, Environment::Development)
                .await,
        );
    }
    let pending: SigningRequestInfo = json(
        services[0]
            .post(
                &signer,
                &format!("/v1/keys/{}/sign", guarded.id),
                &sign_body(&sha256(b"x"), "r"),
            )
            .await,
    )
    .await;
    let approve = format!("/v1/signing-requests/{}/approve", pending.id);
    let mut tasks = Vec::new();
    for (n, session) in sessions.into_iter().enumerate() {
        let (service, approve) = (Arc::clone(&services[n % 2]), approve.clone());
        tasks.push(tokio::spawn(async move {
            post_status(&service, &session, &approve, json!({})).await.0
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
        services[1]
            .get(&signer, &format!("/v1/signing-requests/{}", pending.id))
            .await,
    )
    .await;
    assert_eq!(done.status, SigningRequestStatus::Completed);
    assert_eq!(done.approvals.len(), 2);
    assert!(done.signature.is_some());

    // Every write of both processes is in one unforked chain, and `audit verify` agrees.
    let records = services[0].audit_records(&org, 10_000);
    verify_chain(&org, &records).unwrap();
    let signed = records
        .iter()
        .filter(|r| r.action == "key.sign" && r.outcome == "ok")
        .count();
    assert_eq!(
        signed,
        1 + 32 + 1,
        "idempotent batch, distinct batch, the pending request"
    );
    let verify = services[0]
        .command()
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && out.contains(": ok,"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_both_processes() {
    let Some((dir, database)) = setup() else {
        return;
    };
    let limit = ["--credential-requests-per-minute", "6"];
    let (_first_process, first) = serve(&dir, &database, &limit);
    let (_second_process, second) = serve(&dir, &database, &limit);
    let org = first.org("acme");
    let reader = dev_token(&first, &org, &[Operation::Read]);
    // Six requests (three through each process) use up the one bucket both share.
    for n in 0..6 {
        let service = if n % 2 == 0 { &first } else { &second };
        let response = service.get(&reader, "/v1/keys").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Per-process buckets would still allow three more on each; the shared one is empty for both.
    for service in [&first, &second, &first, &second] {
        let response = service.get(&reader, "/v1/keys").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
    }
}
