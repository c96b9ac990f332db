//! Device certificate provisioning (issue 10) over real HTTP: CA creation, enrolment from OpenSSL-made
//! CSRs (RSA, P-256, Ed25519), idempotent retries, renewal, revocation with the CRL checked by
//! `openssl verify -crl_check`, environment separation, EST through `curl` with RFC 7030 content types,
//! and malformed or mismatched CSRs refused with nothing stored.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::devices::{est_base64, openssl_csr, pem, DeviceSetup, ED25519, P256, RSA};
use common::{expect_error, json, test_config, token, TestService};
use cryptera_proto::auth::{KeyScope, Operation};
use cryptera_proto::devices::{CaKind, CaList, CertificateStatus, DeviceInfo, EnrollResponse};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn write_cert(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem("CERTIFICATE", der)).unwrap();
    path
}

/// `openssl verify` of `leaf` against `root` with `issuing` untrusted, optionally with a CRL.
fn verify(root: &Path, issuing: &Path, leaf: &Path, crl: Option<&Path>) -> (bool, String) {
    let mut command = Command::new("openssl");
    command.arg("verify").arg("-CAfile").arg(root);
    command.arg("-untrusted").arg(issuing);
    if let Some(crl) = crl {
        command.arg("-crl_check").arg("-CRLfile").arg(crl);
    }
    command.arg(leaf);
    run(&mut command)
}

async fn create_cas(setup: &DeviceSetup) -> CaList {
    setup
        .create_cas(&json!({"public_url": "https://sign.example.test"}))
        .await
}

async fn enroll(setup: &DeviceSetup, device: &str, csr: &Path, renew: bool) -> reqwest::Response {
    setup.enroll(device, csr, json!({ "renew": renew })).await
}

async fn crl_file(setup: &DeviceSetup, ca_id: &str, name: &str) -> PathBuf {
    let response = setup
        .service
        .get_public(&format!("/v1/cas/{ca_id}/crl"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pkix-crl");
    let der = response.bytes().await.unwrap();
    let path = setup.dir.path().join(name);
    std::fs::write(&path, pem("X509 CRL", &der)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_retry_renew_and_revoke_for_rsa_p256_and_ed25519() {
    let setup = DeviceSetup::new(TestService::start().await, Environment::Development);
    let cas = create_cas(&setup).await;
    assert_eq!(cas.cas.len(), 2);
    let (root, issuing) = (&cas.cas[0], &cas.cas[1]);
    assert_eq!(root.kind, CaKind::Root);
    assert_eq!(root.name, "acme Development Root CA");
    assert_eq!(issuing.name, "acme Development Issuing CA");
    assert_eq!(
        issuing.crl_url,
        format!("https://sign.example.test/v1/cas/{}/crl", issuing.id)
    );
    // A second creation for the same environment is refused.
    let again = setup
        .service
        .post(&setup.admin, "/v1/cas", &json!({}))
        .await;
    expect_error(again, ErrorCode::AlreadyExists).await;

    let dir = setup.dir.path();
    let root_pem = write_cert(dir, "root.pem", &root.certificate.0);
    let issuing_pem = write_cert(dir, "issuing.pem", &issuing.certificate.0);

    for (kind, key_args) in [("rsa", RSA), ("p256", P256), ("ed25519", ED25519)] {
        let device = format!("dev-{kind}-1");
        let csr = openssl_csr(dir, &device, key_args, &device);
        let response = enroll(&setup, &device, &csr, false).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{kind}");
        let first: EnrollResponse = json(response).await;
        assert!(!first.existing);
        assert_eq!(first.chain.len(), 2);
        assert_eq!(first.chain[0], issuing.certificate);
        assert_eq!(first.chain[1], root.certificate);

        // A factory line retrying gets the same certificate, not a second one.
        let response = enroll(&setup, &device, &csr, false).await;
        assert_eq!(response.status(), StatusCode::OK, "{kind}");
        let retry: EnrollResponse = json(response).await;
        assert!(retry.existing);
        assert_eq!(retry.certificate, first.certificate);

        let leaf = write_cert(
            dir,
            &format!("{device}.pem"),
            &first.certificate.certificate.0,
        );
        let (ok, text) = verify(&root_pem, &issuing_pem, &leaf, None);
        assert!(ok, "{kind}: {text}");
        let (ok, text) = run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf));
        assert!(ok);
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        assert!(text.contains(&issuing.crl_url), "{text}");
        assert!(text.contains(&format!("CN = {device}")), "{text}");

        // Renewal with a new key: a new certificate, the old one superseded (still valid).
        let renewed_csr = openssl_csr(dir, &format!("{device}-2"), key_args, &device);
        let response = enroll(&setup, &device, &renewed_csr, true).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{kind}");
        let renewed: EnrollResponse = json(response).await;
        assert_ne!(renewed.certificate.serial, first.certificate.serial);
        let renewed_leaf = write_cert(
            dir,
            &format!("{device}-2.pem"),
            &renewed.certificate.certificate.0,
        );

        let crl = crl_file(&setup, &issuing.id, &format!("{device}-before.crl")).await;
        let (ok, text) = verify(&root_pem, &issuing_pem, &renewed_leaf, Some(&crl));
        assert!(ok, "{kind} before revocation: {text}");

        let response = setup
            .service
            .post(
                &setup.admin,
                &format!("/v1/devices/{device}/revoke"),
                &json!({"serial": renewed.certificate.serial, "reason": "key_compromise"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let info: DeviceInfo = json(response).await;
        assert_eq!(info.certificates.len(), 2);
        assert_eq!(info.certificates[0].status, CertificateStatus::Revoked);
        assert_eq!(info.certificates[1].status, CertificateStatus::Superseded);

        let crl = crl_file(&setup, &issuing.id, &format!("{device}-after.crl")).await;
        let (ok, text) = verify(&root_pem, &issuing_pem, &renewed_leaf, Some(&crl));
        assert!(!ok, "{kind}: a revoked certificate verified");
        assert!(text.contains("certificate revoked"), "{text}");
        let (ok, text) = verify(&root_pem, &issuing_pem, &leaf, Some(&crl));
        assert!(ok, "{kind}: the superseded certificate stays valid: {text}");
    }

    // Registry: search and export.
    let response = setup.service.get(&setup.admin, "/v1/devices?q=p256").await;
    let list: cryptera_proto::devices::DeviceList = json(response).await;
    assert_eq!(list.devices.len(), 1);
    assert_eq!(list.devices[0].device_id, "dev-p256-1");
    let response = setup.service.get(&setup.admin, "/v1/devices/export").await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<DeviceInfo> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);

    // Issuance and revocation are in the audit chain.
    let records = setup.service.audit_records(&setup.org, 1000);
    let count = |action: &str| records.iter().filter(|r| r.action == action).count();
    assert_eq!(count("ca.create"), 1);
    assert_eq!(count("device.certificate.issue"), 6);
    assert_eq!(count("device.certificate.revoke"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_mismatched_requests_are_refused_and_nothing_is_stored() {
    let setup = DeviceSetup::new(TestService::start().await, Environment::Development);
    // Before any CA exists, enrolment says so.
    let dir = setup.dir.path();
    let csr = openssl_csr(dir, "dev-a", P256, "dev-a");
    expect_error(
        enroll(&setup, "dev-a", &csr, false).await,
        ErrorCode::NotFound,
    )
    .await;
    create_cas(&setup).await;

    let post = |device: &str, body: serde_json::Value| {
        let path = format!("/v1/devices/{device}/enroll");
        let service = &setup.service;
        let token = setup.enroller.clone();
        async move { service.post(&token, &path, &body).await }
    };
    // Not a CSR at all.
    let response = post("dev-a", json!({"csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"})).await;
    expect_error(response, ErrorCode::InvalidRequest).await;
    let response = post(
        "dev-a",
        json!({"csr_der": Base64Bytes(vec![0x30, 0x03, 1, 2, 3])}),
    )
    .await;
    expect_error(response, ErrorCode::InvalidRequest).await;
    let response = post("dev-a", json!({})).await;
    expect_error(response, ErrorCode::InvalidRequest).await;

    // A tampered CSR: its signature no longer verifies (no proof of possession).
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-outform", "DER", "-in"])
        .arg(&csr)
        .arg("-out")
        .arg(dir.join("dev-a.der")));
    assert!(ok, "{text}");
    let mut der = std::fs::read(dir.join("dev-a.der")).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let response = post("dev-a", json!({"csr_der": Base64Bytes(der)})).await;
    let body = response.text().await.unwrap();
    assert!(body.contains("proof of possession"), "{body}");

    // The subject names another device.
    let response = enroll(&setup, "dev-b", &csr, false).await;
    let body = response.text().await.unwrap();
    assert!(body.contains("is not the device id"), "{body}");

    // Outside the token's scope.
    let other = openssl_csr(dir, "lab-x", P256, "lab-x");
    expect_error(
        enroll(&setup, "lab-x", &other, false).await,
        ErrorCode::NotFound,
    )
    .await;

    // Nothing was stored for any of them.
    for device in ["dev-a", "dev-b", "lab-x"] {
        let response = setup
            .service
            .get(&setup.admin, &format!("/v1/devices/{device}"))
            .await;
        expect_error(response, ErrorCode::NotFound).await;
    }

    // A second key for an enrolled device without `renew` is refused; the first stays the only one.
    let response = enroll(&setup, "dev-a", &csr, false).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let second = openssl_csr(dir, "dev-a-2", P256, "dev-a");
    let response = enroll(&setup, "dev-a", &second, false).await;
    expect_error(response, ErrorCode::AlreadyExists).await;
    let response = setup.service.get(&setup.admin, "/v1/devices/dev-a").await;
    let info: DeviceInfo = json(response).await;
    assert_eq!(info.certificates.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_certificate_never_chains_to_the_production_root() {
    // A file KEK refuses production CAs, like production keys.
    let plain = DeviceSetup::new(TestService::start().await, Environment::Production);
    let response = plain
        .service
        .post(&plain.admin, "/v1/cas", &json!({}))
        .await;
    expect_error(response, ErrorCode::ProductionRequiresHsmKek).await;
    drop(plain);

    let config = cryptera_backend::ServiceConfig {
        allow_production_with_file_kek: true,
        ..test_config()
    };
    let dev = DeviceSetup::new(
        TestService::start_with(config).await,
        Environment::Development,
    );
    let dev_cas = create_cas(&dev).await;
    let prod_admin = token(
        &dev.service,
        &dev.org,
        Environment::Production,
        &[Operation::Admin, Operation::Read],
        KeyScope::default(),
    );
    let response = dev.service.post(&prod_admin, "/v1/cas", &json!({})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let prod_cas: CaList = json(response).await;
    assert_eq!(prod_cas.cas[0].name, "acme Root CA");
    assert_eq!(prod_cas.cas[1].name, "acme Issuing CA");

    let dir = dev.dir.path();
    let csr = openssl_csr(dir, "dev-sep", P256, "dev-sep");
    let response = enroll(&dev, "dev-sep", &csr, false).await;
    let issued: EnrollResponse = json(response).await;
    assert_eq!(issued.environment, Environment::Development);
    let leaf = write_cert(dir, "leaf.pem", &issued.certificate.certificate.0);
    let dev_root = write_cert(dir, "dev-root.pem", &dev_cas.cas[0].certificate.0);
    let dev_issuing = write_cert(dir, "dev-issuing.pem", &dev_cas.cas[1].certificate.0);
    let prod_root = write_cert(dir, "prod-root.pem", &prod_cas.cas[0].certificate.0);
    let prod_issuing = write_cert(dir, "prod-issuing.pem", &prod_cas.cas[1].certificate.0);
    assert!(verify(&dev_root, &dev_issuing, &leaf, None).0);
    let (ok, _) = verify(&prod_root, &prod_issuing, &leaf, None);
    assert!(
        !ok,
        "a development certificate verified against the production root"
    );
    let (ok, _) = verify(&prod_root, &dev_issuing, &leaf, None);
    assert!(
        !ok,
        "the development issuing CA chains to the production root"
    );
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-sS", "-D", "-"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "curl {args:?}");
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap();
    let headers = String::from_utf8_lossy(&output.stdout[..split]).to_lowercase();
    (headers, output.stdout[split + 4..].to_vec())
}

/// The certificates of a base64 certs-only PKCS#7, as `openssl pkcs7 -print_certs` prints them.
fn pkcs7_certs(dir: &Path, name: &str, body: &[u8]) -> String {
    let der = est_base64(body);
    let path = dir.join(name);
    std::fs::write(&path, der).unwrap();
    let (ok, text) = run(Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
        .arg(&path));
    assert!(ok, "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_cacerts_simpleenroll_and_simplereenroll_through_curl() {
    let setup = DeviceSetup::new(TestService::start().await, Environment::Development);
    create_cas(&setup).await;
    let dir = setup.dir.path();
    let auth = format!("Authorization: Bearer {}", setup.enroller);

    let (headers, body) = curl(&["-H", &auth, &setup.service.url("/.well-known/est/cacerts")]);
    assert!(
        headers.contains("content-type: application/pkcs7-mime"),
        "{headers}"
    );
    assert!(
        headers.contains("content-transfer-encoding: base64"),
        "{headers}"
    );
    let certs = pkcs7_certs(dir, "cacerts.p7", &body);
    assert!(certs.contains("acme Development Issuing CA"), "{certs}");
    assert!(certs.contains("CN = acme Development Root CA"), "{certs}");

    let csr = openssl_csr(dir, "dev-est", P256, "dev-est");
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-outform", "DER", "-in"])
        .arg(&csr)
        .arg("-out")
        .arg(dir.join("dev-est.der")));
    assert!(ok, "{text}");
    let der = std::fs::read(dir.join("dev-est.der")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body_path = dir.join("dev-est.b64");
    std::fs::write(&body_path, &b64).unwrap();
    let data = format!("@{}", body_path.display());
    let enroll = |path: &str| {
        curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/pkcs10",
            "-H",
            "Content-Transfer-Encoding: base64",
            "--data-binary",
            &data,
            &setup.service.url(path),
        ])
    };
    let (headers, body) = enroll("/.well-known/est/simpleenroll");
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("content-type: application/pkcs7-mime; smime-type=certs-only"),
        "{headers}"
    );
    let first = pkcs7_certs(dir, "enrolled.p7", &body);
    assert!(first.contains("subject=O = acme, CN = dev-est"), "{first}");

    // A retry returns the same certificate; re-enrolment issues a new one.
    let (_, body) = enroll("/.well-known/est/simpleenroll");
    assert_eq!(pkcs7_certs(dir, "retry.p7", &body), first);
    let (_, body) = enroll("/.well-known/est/simplereenroll");
    assert_ne!(pkcs7_certs(dir, "renewed.p7", &body), first);

    let response = setup.service.get(&setup.admin, "/v1/devices/dev-est").await;
    let info: DeviceInfo = json(response).await;
    assert_eq!(info.certificates.len(), 2);
    assert_eq!(info.certificates[0].status, CertificateStatus::Active);
    assert_eq!(info.certificates[1].status, CertificateStatus::Superseded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_create_on_the_command_line() {
    let service = TestService::start().await;
    service.org("acme");
    let output = service
        .command()
        .args(["ca", "create", "--org", "acme", "--environment", "trial"])
        .args(["--public-url", "https://sign.example.test"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: CaList = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list.cas[0].name, "acme Trial Root CA");
    assert_eq!(list.cas[1].name, "acme Trial Issuing CA");
    let output = service
        .command()
        .args([
            "ca",
            "create",
            "--org",
            "acme",
            "--environment",
            "production",
        ])
        .args(["--public-url", "https://sign.example.test"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "production CAs need a PKCS#11 KEK"
    );
}
