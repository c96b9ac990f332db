//! Signing throughput and latency of the real service over loopback HTTP, audit log on: RSA-2048, P-256
//! and Ed25519 at 1, 8 and 64 concurrent clients. Each case is bounded in requests and time and talks
//! only to 127.0.0.1. Run with `cargo bench -p cryptera-backend --bench signing` (SQLite in a temp data
//! directory); with `CRYPTERA_TEST_POSTGRES` naming a PostgreSQL server (e.g. under
//! `backend/scripts/with-postgres.sh`) it runs on a fresh database there instead.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptera_backend::audit::AuditEvent;
use cryptera_backend::store::Database;
use cryptera_backend::{api, server, AppState, ServiceConfig};
use cryptera_proto::auth::{CreateTokenRequest, KeyScope, Operation};
use cryptera_proto::keys::{CreateKeyRequest, KeyAlgorithm, KeyPolicy};
use cryptera_proto::sign::SignRequest;
use cryptera_proto::{Base64Bytes, Environment};

const CONCURRENCY: [usize; 3] = [1, 8, 64];
const MAX_REQUESTS: usize = 3000;
const MAX_DURATION: Duration = Duration::from_secs(6);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::test_database();
    server::init(dir.path(), &database).unwrap();
    let config = ServiceConfig {
        credential_requests_per_minute: u32::MAX / 2,
        organisation_requests_per_minute: u32::MAX / 2,
        ..ServiceConfig::default()
    };
    let state = AppState::open(dir.path(), &database, config).unwrap();
    let org = api::create_organisation(&state, "bench", None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = state.clone();
    tokio::spawn(async move {
        server::serve(listener, serving, std::future::pending())
            .await
            .unwrap();
    });
    let token = api::create_token(
        &state,
        &org,
        AuditEvent::new(&org.id, "svc", "token.create", ""),
        Environment::Development,
        &CreateTokenRequest {
            name: "bench".into(),
            operations: vec![Operation::Sign],
            keys: KeyScope {
                ids: Vec::new(),
                label_patterns: vec!["*".into()],
            },
            expires_in_seconds: 3600,
        },
    )
    .unwrap()
    .token;

    let store = match database {
        Database::DataDir => "SQLite",
        Database::Postgres(_) => "PostgreSQL",
    };
    println!("store: {store}; audit log on; loopback HTTP");
    println!("| algorithm | clients | signatures | signatures/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let cases = [
        (KeyAlgorithm::Rsa2048, "rsa_pkcs1_sha256"),
        (KeyAlgorithm::EcdsaP256, "ecdsa_sha256"),
        (KeyAlgorithm::Ed25519, "ed25519"),
    ];
    for (algorithm, mechanism) in cases {
        let key = api::create_key(
            &state,
            &org,
            AuditEvent::new(&org.id, "svc", "key.create", ""),
            Environment::Development,
            &CreateKeyRequest {
                label: algorithm.as_str().into(),
                algorithm,
                policy: KeyPolicy::default(),
            },
        )
        .unwrap();
        for clients in CONCURRENCY {
            let mechanism = cryptera_proto::keys::Mechanism::parse(mechanism).unwrap();
            let url = format!("{base}/v1/keys/{}/sign", key.id);
            let (count, elapsed, mut latencies) = measure(&url, &token, mechanism, clients).await;
            latencies.sort();
            let pct = |p: f64| {
                let index =
                    ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
                latencies[index].as_secs_f64() * 1000.0
            };
            println!(
                "| {} | {clients} | {count} | {:.0} | {:.2} | {:.2} |",
                algorithm.as_str(),
                count as f64 / elapsed.as_secs_f64(),
                pct(0.50),
                pct(0.99)
            );
        }
    }
}

async fn measure(
    url: &str,
    token: &str,
    mechanism: cryptera_proto::keys::Mechanism,
    clients: usize,
) -> (usize, Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, issued, url, token) = (
            client.clone(),
            Arc::clone(&issued),
            url.to_owned(),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= MAX_REQUESTS || started.elapsed() > MAX_DURATION {
                    return latencies;
                }
                let input = format!("artifact {n} {clients} {}", mechanism.as_str()).into_bytes();
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
                let request = SignRequest {
                    mechanism,
                    digest: (mechanism.digest_len().is_some())
                        .then(|| Base64Bytes(digest.as_ref().to_vec())),
                    data: mechanism
                        .digest_len()
                        .is_none()
                        .then(|| Base64Bytes(input.clone())),
                    artifact: Default::default(),
                    idempotency_key: format!("{}-{clients}-{n}", mechanism.as_str()),
                };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&request)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all.len(), started.elapsed(), all)
}
