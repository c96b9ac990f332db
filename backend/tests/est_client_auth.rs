//! EST `simplereenroll` authenticated by the device's current certificate (RFC 7030 §3.3.2), over the
//! service's real TLS listener on 127.0.0.1 with a reqwest client whose identity is the device key
//! (made by OpenSSL in the test) and the certificate the service issued for it: renewal without an
//! access token, with the authentication method in the audit and CA signing records; superseded,
//! revoked, expired, foreign and other-device certificates refused with a clear message; requests
//! without a certificate still work with a Bearer token, and `simpleenroll` always needs one.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::devices::{est_base64, openssl_key_and_csr, DeviceSetup, P256};
use common::tls::{serve_tls, tls_client};
use common::{expect_error, json, TestService};
use cryptera_proto::devices::{
    AuthMethod, CaSigningRecordList, CertificateStatus, DeviceInfo, EnrollResponse,
};
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::Environment;
use reqwest::StatusCode;
use serde_json::json;

fn openssl(args: &[&str]) {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The EST body of a CSR: base64 of its DER.
fn est_body(dir: &Path, csr: &Path) -> String {
    let der = dir.join("body.der");
    openssl(&[
        "req",
        "-in",
        csr.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(der).unwrap())
}

/// An HTTPS client that trusts the test CA and, with `identity`, presents that key and certificate.
fn client(identity: Option<(&Path, &[u8])>) -> reqwest::Client {
    tls_client(identity).unwrap()
}

/// A device setup whose service also listens on HTTPS.
struct Tls {
    setup: DeviceSetup,
    port: u16,
}

impl std::ops::Deref for Tls {
    type Target = DeviceSetup;

    fn deref(&self) -> &DeviceSetup {
        &self.setup
    }
}

impl Tls {
    async fn start() -> Self {
        let setup = DeviceSetup::new(TestService::start().await, Environment::Development);
        setup.create_cas(&json!({})).await;
        let port = serve_tls(&setup.service).await;
        Self { setup, port }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// First enrolment with the access token; returns the device key and its certificate (DER).
    async fn enrol(&self, device: &str) -> (PathBuf, Vec<u8>) {
        let (key, csr) = openssl_key_and_csr(self.dir.path(), device, P256, device);
        let response = self.enroll(device, &csr, json!({})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let issued: EnrollResponse = json(response).await;
        (key, issued.certificate.certificate.0)
    }

    /// `simplereenroll` for a new key of `cn`, presenting `identity`, with an optional Bearer token.
    async fn reenroll(
        &self,
        identity: Option<(&Path, &[u8])>,
        cn: &str,
        bearer: Option<&str>,
        path: &str,
    ) -> (reqwest::Response, PathBuf) {
        let name = format!("{cn}-{}", rand_suffix());
        let (key, csr) = openssl_key_and_csr(self.dir.path(), &name, P256, cn);
        let mut request = client(identity)
            .post(self.url(path))
            .header("content-type", "application/pkcs10")
            .header("content-transfer-encoding", "base64")
            .body(est_body(self.dir.path(), &csr));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        (request.send().await.unwrap(), key)
    }
}

fn rand_suffix() -> String {
    cryptera_backend::util::new_id("k").unwrap()
}

/// The single certificate of an EST certs-only answer (DER).
async fn est_certificate(response: reqwest::Response) -> Vec<u8> {
    assert_eq!(response.status(), StatusCode::OK);
    let der = est_base64(&response.bytes().await.unwrap());
    use x509_cert::der::{Decode, Encode};
    let info = cms::content_info::ContentInfo::from_der(&der).unwrap();
    let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
    let certs = signed.certificates.unwrap();
    let cms::cert::CertificateChoices::Certificate(cert) = certs.0.iter().next().unwrap() else {
        panic!("not a certificate")
    };
    cert.to_der().unwrap()
}

async fn refused(response: reqwest::Response, code: ErrorCode, text: &str) {
    let status = response.status();
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, code, "{status}: {}", body.error.message);
    assert!(
        body.error.message.contains(text),
        "{:?} does not say {text:?}",
        body.error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_renews_with_its_current_certificate() {
    let tls = Tls::start().await;
    const REENROLL: &str = "/.well-known/est/simplereenroll";
    let (key, cert) = tls.enrol("dev-tls").await;

    // No access token: the TLS client certificate authenticates the renewal.
    let (response, new_key) = tls
        .reenroll(Some((&key, &cert)), "dev-tls", None, REENROLL)
        .await;
    let renewed = est_certificate(response).await;
    assert_ne!(renewed, cert);
    let info: DeviceInfo = json(tls.service.get(&tls.admin, "/v1/devices/dev-tls").await).await;
    assert_eq!(info.certificates.len(), 2);
    assert_eq!(info.certificates[0].certificate.0, renewed);
    assert_eq!(info.certificates[0].status, CertificateStatus::Active);
    assert_eq!(info.certificates[1].status, CertificateStatus::Superseded);

    // The audit record and the CA signing record say how the device authenticated.
    let audit = tls.service.audit_records(&tls.org, 1000);
    let issued = audit
        .iter()
        .rfind(|r| r.action == "device.certificate.issue")
        .unwrap();
    assert_eq!(issued.details["auth"], "client_certificate");
    assert_eq!(issued.actor, "device:dev-tls");
    assert_eq!(
        issued.details["client_certificate"],
        info.certificates[1].serial
    );
    assert_eq!(issued.details["renew"], "true");
    // The peer address reaches handlers over TLS too (truncated, as on plain HTTP).
    assert_eq!(issued.details["client_net"], "127.0.0.0/24");
    let records: CaSigningRecordList =
        json(tls.service.get(&tls.admin, "/v1/cas/signing-records").await).await;
    assert_eq!(records.records[0].auth, AuthMethod::ClientCertificate);
    assert_eq!(records.records[0].serial, info.certificates[0].serial);

    // The superseded certificate no longer renews (strict: only the newest one does).
    let (response, _) = tls
        .reenroll(Some((&key, &cert)), "dev-tls", None, REENROLL)
        .await;
    refused(response, ErrorCode::Unauthenticated, "superseded").await;
    // The newest one does, again.
    let (response, newest_key) = tls
        .reenroll(Some((&new_key, &renewed)), "dev-tls", None, REENROLL)
        .await;
    let newest = est_certificate(response).await;

    // A certificate renews only its own device.
    let (response, _) = tls
        .reenroll(Some((&newest_key, &newest)), "dev-other", None, REENROLL)
        .await;
    refused(response, ErrorCode::InsufficientScope, "device \"dev-tls\"").await;

    // `simpleenroll` is not authenticated by a certificate: it needs an access token.
    let (response, _) = tls
        .reenroll(
            Some((&newest_key, &newest)),
            "dev-tls",
            None,
            "/.well-known/est/simpleenroll",
        )
        .await;
    expect_error(response, ErrorCode::Unauthenticated).await;
    // Neither certificate nor token: refused.
    let (response, _) = tls.reenroll(None, "dev-tls", None, REENROLL).await;
    expect_error(response, ErrorCode::Unauthenticated).await;
    // With a token the certificate is not looked at (a token request keeps working as before).
    let (response, _) = tls
        .reenroll(
            Some((&key, &cert)),
            "dev-tls",
            Some(&tls.enroller),
            REENROLL,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = tls
        .reenroll(None, "dev-tls", Some(&tls.enroller), REENROLL)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_foreign_certificates_are_refused() {
    let tls = Tls::start().await;
    const REENROLL: &str = "/.well-known/est/simplereenroll";

    // Revoked.
    let (key, cert) = tls.enrol("dev-revoked").await;
    let response = tls
        .service
        .post(
            &tls.admin,
            "/v1/devices/dev-revoked/revoke",
            &json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = tls
        .reenroll(Some((&key, &cert)), "dev-revoked", None, REENROLL)
        .await;
    refused(response, ErrorCode::Unauthenticated, "revoked").await;

    // Expired (the registry is the authority on validity).
    let (key, cert) = tls.enrol("dev-expired").await;
    tls.service
        .sql("UPDATE device_certificates SET not_after = 1 WHERE device_id = 'dev-expired'")
        .unwrap();
    let (response, _) = tls
        .reenroll(Some((&key, &cert)), "dev-expired", None, REENROLL)
        .await;
    refused(response, ErrorCode::Unauthenticated, "expired").await;

    // Foreign: a self-signed certificate for the same device name, with its own key.
    let dir = tls.dir.path();
    let foreign_key = dir.join("foreign.key");
    let foreign_cert = dir.join("foreign.der");
    openssl(&[
        "req",
        "-x509",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        foreign_key.to_str().unwrap(),
        "-subj",
        "/CN=dev-expired",
        "-days",
        "1",
        "-outform",
        "DER",
        "-out",
        foreign_cert.to_str().unwrap(),
    ]);
    let foreign = std::fs::read(&foreign_cert).unwrap();
    let (response, _) = tls
        .reenroll(
            Some((&foreign_key, &foreign)),
            "dev-expired",
            None,
            REENROLL,
        )
        .await;
    refused(
        response,
        ErrorCode::Unauthenticated,
        "not a device certificate issued by this service",
    )
    .await;

    // Our certificate presented with another key never gets past the TLS handshake: the handshake
    // signature does not verify under the certificate's key.
    let (_, live_cert) = tls.enrol("dev-live").await;
    if let Ok(mismatched) = tls_client(Some((&foreign_key, &live_cert))) {
        let sent = mismatched.post(tls.url(REENROLL)).body("").send().await;
        assert!(sent.is_err(), "a handshake with the wrong key succeeded");
    }

    // Nothing was issued for any refused request.
    for device in ["dev-revoked", "dev-expired"] {
        let info: DeviceInfo = json(
            tls.service
                .get(&tls.admin, &format!("/v1/devices/{device}"))
                .await,
        )
        .await;
        assert_eq!(info.certificates.len(), 1, "{device}");
    }
}
