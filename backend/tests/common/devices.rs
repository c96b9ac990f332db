//! Device certificate helpers: an organisation with an admin and an enrolling token, keys and CSRs made
//! by OpenSSL, and PEM.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use cryptera_proto::auth::{KeyScope, Operation};
use cryptera_proto::devices::CaList;
use cryptera_proto::Environment;
use reqwest::{Response, StatusCode};

use super::{json, token, TestService};

/// `openssl req` arguments for a new key of each kind.
pub const RSA: &[&str] = &["-newkey", "rsa:2048"];
pub const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
pub const ED25519: &[&str] = &["-newkey", "ed25519"];

/// Makes a key (`name.key`, PKCS#8 PEM) and its CSR for `/CN=cn` (`name.csr`, PEM) with `openssl req`;
/// returns both paths.
pub fn openssl_key_and_csr(
    dir: &Path,
    name: &str,
    key_args: &[&str],
    cn: &str,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let output = Command::new("openssl")
        .args(["req", "-new", "-nodes"])
        .args(key_args)
        .arg("-keyout")
        .arg(&key)
        .args(["-subj", &format!("/CN={cn}"), "-out"])
        .arg(&csr)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (key, csr)
}

/// Makes a key and a CSR for `/CN=cn` with `openssl req`; returns the CSR PEM path.
pub fn openssl_csr(dir: &Path, name: &str, key_args: &[&str], cn: &str) -> PathBuf {
    openssl_key_and_csr(dir, name, key_args, cn).1
}

/// `der` as PEM with `label`, 64 characters a line.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The bytes of a base64 body as EST sends it (line breaks allowed).
pub fn est_base64(body: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A service with organisation `acme`, its admin token and a token that enrols devices `dev-*`, and a
/// temporary directory for keys, CSRs and certificates.
pub struct DeviceSetup {
    pub service: TestService,
    pub org: String,
    pub admin: String,
    pub enroller: String,
    pub dir: tempfile::TempDir,
}

impl DeviceSetup {
    /// Creates `acme` on `service` with, in `environment`, an admin token (admin, read, audit) and an
    /// enrolling token (sign, read; keys and devices `dev-*`).
    pub fn new(service: TestService, environment: Environment) -> Self {
        let org = service.org("acme");
        let admin = token(
            &service,
            &org,
            environment,
            &[Operation::Admin, Operation::Read, Operation::Audit],
            KeyScope::default(),
        );
        let enroller = token(
            &service,
            &org,
            environment,
            &[Operation::Sign, Operation::Read],
            KeyScope {
                ids: Vec::new(),
                label_patterns: vec!["dev-*".into()],
            },
        );
        Self {
            service,
            org,
            admin,
            enroller,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Creates the environment's CAs with the admin token and `body`; panics unless they are created.
    pub async fn create_cas(&self, body: &serde_json::Value) -> CaList {
        let response = self.service.post(&self.admin, "/v1/cas", body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json(response).await
    }

    /// Enrols `device` with the enrolling token: the CSR PEM at `csr` plus the request's other `fields`.
    pub async fn enroll(&self, device: &str, csr: &Path, fields: serde_json::Value) -> Response {
        let mut body = fields;
        body["csr_pem"] = std::fs::read_to_string(csr).unwrap().into();
        self.service
            .post(
                &self.enroller,
                &format!("/v1/devices/{device}/enroll"),
                &body,
            )
            .await
    }
}
