//! TLS with rustls: the service speaks HTTPS from PEM files, clients that trust the CA get through,
//! plain HTTP and untrusted clients do not. Fixtures in `tests/fixtures/` are a test-only CA and a
//! `localhost` / 127.0.0.1 certificate.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::tls::{fixture, serve_tls, tls_client};
use common::{dev_token, Server, TestService};
use cryptera_proto::auth::{Operation, Whoami};

fn trusting_client() -> reqwest::Client {
    tls_client(None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    // A plain service provides the data directory and state; a TLS server is started on the same state.
    let service = TestService::start().await;
    let org = service.org("acme");
    let reader = dev_token(&service, &org, &[Operation::Read]);
    let port = serve_tls(&service).await;

    let client = trusting_client();
    for host in ["localhost", "127.0.0.1"] {
        let whoami: Whoami = client
            .get(format!("https://{host}:{port}/v1/whoami"))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(whoami.organisation, "acme");
    }
    // Plain HTTP to the TLS port gets no answer, and a client that does not trust the CA refuses.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err());
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .is_err());
    // A silent client does not hold up others (handshakes run off the accept loop).
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let response = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn the_binary_serves_tls_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = common::test_database();
    let init = common::backend(&data, &database)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success());
    let only_cert = common::backend(&data, &database)
        .args(["serve", "--tls-cert"])
        .arg(fixture("localhost-test-cert.pem"))
        .output()
        .unwrap();
    assert!(!only_cert.status.success(), "a certificate needs its key");

    let child = common::backend(&data, &database)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(fixture("localhost-test-cert.pem"))
        .arg("--tls-key")
        .arg(fixture("localhost-test-key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Server(child);
    let address = common::listening_address(&mut guard.0);
    let port = address.rsplit(':').next().unwrap().to_owned();
    let runtime = common::runtime();
    let status = runtime.block_on(async {
        trusting_client()
            .get(format!("https://localhost:{port}/readyz"))
            .send()
            .await
            .map(|r| r.status())
    });
    drop(guard);
    assert_eq!(status.unwrap(), 200);
}
