//! The service over HTTPS: the test-only CA and `localhost` certificate in `tests/fixtures/`, a TLS
//! listener on a service's state, and clients that trust the test CA.

use std::path::{Path, PathBuf};

use cryptera_backend::{server, tls};

use super::devices::pem;
use super::TestService;

/// A file in `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Serves `service`'s state over HTTPS with the `localhost` test certificate on a random port of
/// 127.0.0.1 (for the rest of the test); returns the port.
pub async fn serve_tls(service: &TestService) -> u16 {
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
    port
}

/// An HTTPS client that trusts the test CA and, with `identity`, presents that key (a PEM file) and
/// certificate (DER).
pub fn tls_client(identity: Option<(&Path, &[u8])>) -> reqwest::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("test-ca-cert.pem")).unwrap())
        .unwrap();
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
    if let Some((key, cert_der)) = identity {
        let mut bundle = std::fs::read(key).unwrap();
        bundle.extend(pem("CERTIFICATE", cert_der).into_bytes());
        builder = builder.identity(reqwest::Identity::from_pem(&bundle)?);
    }
    builder.build()
}
