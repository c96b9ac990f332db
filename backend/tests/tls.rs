//! TLS with rustls: the service speaks HTTPS from PEM files, clients that trust the CA get through,
//! plain HTTP and untrusted clients do not. Fixtures in `tests/fixtures/` are a test-only CA and a
//! `localhost` / 127.0.0.1 certificate.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use common::{all_keys, token, TestService};
use cryptera_backend::{server, tls};
use cryptera_proto::auth::{Operation, Whoami};
use cryptera_proto::Environment;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn trusting_client() -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("test-ca-cert.pem")).unwrap())
        .unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    // A plain service provides the data directory and state; a TLS server is started on the same state.
    let service = TestService::start().await;
    let org = service.org("acme");
    let reader = token(
        &service,
        &org,
        Environment::Development,
        &[Operation::Read],
        all_keys(),
    );
    let config = tls::load_config(
        &fixture("localhost-test-cert.pem"),
        &fixture("localhost-test-key.pem"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(server::serve_tls(
        listener,
        config,
        service.state.clone(),
        std::future::pending(),
    ));

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
    let mut line = String::new();
    BufReader::new(guard.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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

/// Stops the server we started, whatever happens in the test.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
