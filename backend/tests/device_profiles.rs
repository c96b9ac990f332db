//! Certificate profiles an organisation defines (issue 10) and the CA signing records: a custom profile
//! (30 days, serverAuth, a DNS SAN template) gives exactly that certificate (parsed with `x509-cert`),
//! a key type it does not allow is refused with nothing stored, only admins edit profiles, bad templates
//! are refused, a built-in profile can be replaced and comes back on delete; every issuance and
//! revocation has a CA signing record (digest of the TBSCertificate, the CA's signature) listed and
//! exported as JSON lines.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::str::FromStr;

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
use common::devices::{openssl_csr, DeviceSetup, P256, RSA};
use common::{assert_success, expect_error, json, sha256, token, TestService};
use const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
use cryptera_proto::auth::{KeyScope, Operation};
use cryptera_proto::devices::{
    AuthMethod, CaList, CaSigningKind, CaSigningRecord, CaSigningRecordList, CertificateProfile,
    EnrollResponse, ProfileInfo, ProfileList,
};
use cryptera_proto::error::ErrorCode;
use cryptera_proto::keys::Mechanism;
use cryptera_proto::Environment;
use reqwest::StatusCode;
use serde_json::json;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::Certificate;

async fn setup() -> DeviceSetup {
    let setup = DeviceSetup::new(TestService::start().await, Environment::Development);
    setup
        .create_cas(&json!({"public_url": "https://sign.example.test"}))
        .await;
    setup
}

impl DeviceSetup {
    async fn put_profile(
        &self,
        token: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.service
            .put(token, &format!("/v1/profiles/{name}"), body)
            .await
    }

    async fn enroll_profile(&self, device: &str, csr: &Path, profile: &str) -> reqwest::Response {
        self.enroll(device, csr, json!({ "profile": profile }))
            .await
    }
}

fn web_profile() -> serde_json::Value {
    json!({
        "key_types": ["ecdsa_p256", "ecdsa_p384"],
        "validity_days": 30,
        "key_usage": ["digital_signature"],
        "extended_key_usage": ["server_auth"],
        "subject": "CN={device_id}.example.com,O={org},OU={environment}",
        "san": ["dns:{device_id}.example.com"],
    })
}

fn extension<T: for<'a> Decode<'a> + const_oid::AssociatedOid>(cert: &Certificate) -> T {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|ext| ext.extn_id == T::OID)
        .unwrap();
    T::from_der(ext.extn_value.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_profile_issues_exactly_what_it_says() {
    let setup = setup().await;
    let dir = setup.dir.path();

    // The built-in profiles are listed until the organisation defines its own.
    let list: ProfileList = json(setup.service.get(&setup.admin, "/v1/profiles").await).await;
    let names: Vec<&str> = list.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["code_signing", "device"]);
    assert!(list.profiles.iter().all(|p| p.built_in));

    // Only admins edit profiles.
    let response = setup
        .put_profile(&setup.enroller, "web", &web_profile())
        .await;
    expect_error(response, ErrorCode::InsufficientScope).await;
    let response = setup
        .service
        .delete(&setup.enroller, "/v1/profiles/device")
        .await;
    expect_error(response, ErrorCode::InsufficientScope).await;

    // Bad definitions are refused.
    for (field, value) in [
        ("validity_days", json!(0)),
        ("validity_days", json!(826)),
        ("subject", json!("CN={serial}")),
        ("subject", json!("CN={device_id")),
        ("san", json!(["dns:{device_id}..example.com"])),
        ("san", json!(["ip:10.0.0.1"])),
        ("san", json!([])),
        ("key_types", json!([])),
        ("extended_key_usage", json!(["any"])),
    ] {
        let mut body = web_profile();
        body[field] = value.clone();
        let response = setup.put_profile(&setup.admin, "web", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{field} = {value}"
        );
    }
    let response = setup
        .put_profile(&setup.admin, "bad%20name", &web_profile())
        .await;
    expect_error(response, ErrorCode::InvalidRequest).await;

    let response = setup.put_profile(&setup.admin, "web", &web_profile()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: ProfileInfo = json(response).await;
    assert!(!info.built_in);
    assert_eq!(info.definition.validity_days, 30);
    let fetched: ProfileInfo =
        json(setup.service.get(&setup.enroller, "/v1/profiles/web").await).await;
    assert_eq!(fetched, info);

    // The certificate is exactly what the profile says.
    let csr = openssl_csr(dir, "dev-web-1", P256, "dev-web-1");
    let response = setup.enroll_profile("dev-web-1", &csr, "web").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let issued: EnrollResponse = json(response).await;
    assert_eq!(issued.certificate.profile.as_str(), "web");
    assert_eq!(
        issued.certificate.not_after - issued.certificate.not_before,
        30 * 86_400
    );
    let cert = Certificate::from_der(&issued.certificate.certificate.0).unwrap();
    let validity = &cert.tbs_certificate.validity;
    assert_eq!(
        validity.not_after.to_unix_duration() - validity.not_before.to_unix_duration(),
        std::time::Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        cert.tbs_certificate.subject,
        x509_cert::name::Name::from_str("CN=dev-web-1.example.com,O=acme,OU=development").unwrap()
    );
    let eku: ExtendedKeyUsage = extension(&cert);
    assert_eq!(eku.0, vec![ID_KP_SERVER_AUTH]);
    let usage: KeyUsage = extension(&cert);
    assert_eq!(usage, KeyUsage(KeyUsages::DigitalSignature.into()));
    let san: SubjectAltName = extension(&cert);
    match san.0.as_slice() {
        [GeneralName::DnsName(name)] => assert_eq!(name.as_str(), "dev-web-1.example.com"),
        other => panic!("unexpected SAN {other:?}"),
    }

    // A key type the profile does not allow is refused, and nothing is stored.
    let rsa = openssl_csr(dir, "dev-web-2", RSA, "dev-web-2");
    let response = setup.enroll_profile("dev-web-2", &rsa, "web").await;
    let body = response.text().await.unwrap();
    assert!(body.contains("does not allow rsa keys"), "{body}");
    expect_error(
        setup
            .service
            .get(&setup.admin, "/v1/devices/dev-web-2")
            .await,
        ErrorCode::NotFound,
    )
    .await;
    // A device id that does not fit the DNS template is refused too.
    let odd = openssl_csr(dir, "dev-web_x", P256, "dev-web_x");
    let response = setup.enroll_profile("dev-web_x", &odd, "web").await;
    let body = response.text().await.unwrap();
    assert!(body.contains("not a valid dns name"), "{body}");
    // An unknown profile is not found.
    let other = openssl_csr(dir, "dev-web-3", P256, "dev-web-3");
    expect_error(
        setup.enroll_profile("dev-web-3", &other, "nope").await,
        ErrorCode::NotFound,
    )
    .await;
    expect_error(
        setup
            .enroll_profile("dev-web-3", &other, "not a name")
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;

    // Replacing the built-in `device` profile changes what `device` issues; deleting it restores it.
    let mut short = web_profile();
    short["validity_days"] = json!(7);
    short["extended_key_usage"] = json!(["client_auth"]);
    short["subject"] = json!("CN={device_id},O={org}");
    short["san"] = json!(["uri:urn:example:{environment}:{device_id}"]);
    let response = setup.put_profile(&setup.admin, "device", &short).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = setup.enroll_profile("dev-web-3", &other, "device").await;
    let issued: EnrollResponse = json(response).await;
    assert_eq!(
        issued.certificate.not_after - issued.certificate.not_before,
        7 * 86_400
    );
    let list: ProfileList = json(setup.service.get(&setup.admin, "/v1/profiles").await).await;
    let device = list
        .profiles
        .iter()
        .find(|p| p.name == CertificateProfile::DEVICE)
        .unwrap();
    assert!(!device.built_in);
    let response = setup
        .service
        .delete(&setup.admin, "/v1/profiles/device")
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let device: ProfileInfo =
        json(setup.service.get(&setup.admin, "/v1/profiles/device").await).await;
    assert!(device.built_in);
    assert_eq!(device.definition.validity_days, 365);
    expect_error(
        setup
            .service
            .delete(&setup.admin, "/v1/profiles/device")
            .await,
        ErrorCode::NotFound,
    )
    .await;

    // Profile changes are audit records.
    let records = setup.service.audit_records(&setup.org, 1000);
    let puts: Vec<_> = records
        .iter()
        .filter(|r| r.action == "profile.put")
        .collect();
    assert_eq!(puts.len(), 2);
    assert!(puts[0].details["definition"].contains("server_auth"));
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "profile.delete")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_and_revocation_are_ca_signing_records() {
    let setup = setup().await;
    let dir = setup.dir.path();
    let cas: CaList = json(setup.service.get(&setup.admin, "/v1/cas").await).await;
    let issuing = &cas.cas[1];
    let issuing_cert = Certificate::from_der(&issuing.certificate.0).unwrap();
    let ca_spki = issuing_cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();

    let csr = openssl_csr(dir, "dev-rec-1", P256, "dev-rec-1");
    let first: EnrollResponse = json(setup.enroll_profile("dev-rec-1", &csr, "device").await).await;
    // A retry returns the same certificate and signs nothing.
    let retry: EnrollResponse = json(setup.enroll_profile("dev-rec-1", &csr, "device").await).await;
    assert!(retry.existing);
    let response = setup
        .service
        .post(
            &setup.admin,
            "/v1/devices/dev-rec-1/revoke",
            &json!({"reason": "cessation_of_operation"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Fetching the CRL signs a CRL but records nothing.
    let response = setup
        .service
        .get_public(&format!("/v1/cas/{}/crl", issuing.id))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let list: CaSigningRecordList = json(
        setup
            .service
            .get(&setup.enroller, "/v1/cas/signing-records")
            .await,
    )
    .await;
    assert_eq!(list.records.len(), 2, "{list:?}");
    let (revoke, issue) = (&list.records[0], &list.records[1]);
    assert_eq!(issue.kind, CaSigningKind::Issue);
    assert_eq!(issue.serial, first.certificate.serial);
    assert_eq!(issue.device_id, "dev-rec-1");
    assert_eq!(issue.ca_id, issuing.id);
    assert_eq!(issue.profile, CertificateProfile::DEVICE);
    assert_eq!(issue.auth, AuthMethod::Bearer);
    assert_eq!(issue.mechanism, Some(Mechanism::EcdsaSha256));
    assert!(issue.actor.starts_with("tok_"));
    // The record holds the CA's signature over the certificate's TBS, which verifies under the CA key.
    let cert = Certificate::from_der(&first.certificate.certificate.0).unwrap();
    let tbs = cert.tbs_certificate.to_der().unwrap();
    assert_eq!(issue.digest.as_ref().unwrap().0, sha256(&tbs));
    let signature = &issue.signature.as_ref().unwrap().0;
    assert_eq!(signature.as_slice(), cert.signature.raw_bytes());
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &ca_spki)
        .unwrap()
        .verify_sig(&tbs, signature)
        .unwrap();
    assert_eq!(revoke.kind, CaSigningKind::Revoke);
    assert_eq!(revoke.serial, first.certificate.serial);
    assert_eq!(
        revoke.reason,
        Some(cryptera_proto::devices::RevocationReason::CessationOfOperation)
    );
    assert!(revoke.signature.is_none());

    // The audit records name their signing records.
    let audit = setup.service.audit_records(&setup.org, 1000);
    let issued = audit
        .iter()
        .find(|r| r.action == "device.certificate.issue")
        .unwrap();
    assert_eq!(issued.details["signing_record"], issue.id);
    assert_eq!(issued.details["auth"], "bearer");
    assert_eq!(
        issued.details["tbs_sha256"],
        cryptera_backend::util::hex(&sha256(&tbs))
    );
    let revoked = audit
        .iter()
        .find(|r| r.action == "device.certificate.revoke")
        .unwrap();
    assert_eq!(revoked.details["signing_record"], revoke.id);

    // Filters, and the JSON-lines export.
    let path = format!("/v1/cas/signing-records?serial={}", issue.serial);
    let by_serial: CaSigningRecordList = json(setup.service.get(&setup.admin, &path).await).await;
    assert_eq!(by_serial.records.len(), 2);
    let none: CaSigningRecordList = json(
        setup
            .service
            .get(&setup.admin, "/v1/cas/signing-records?device=dev-other")
            .await,
    )
    .await;
    assert!(none.records.is_empty());
    expect_error(
        setup
            .service
            .get(&setup.admin, "/v1/cas/signing-records?limit=many")
            .await,
        ErrorCode::InvalidRequest,
    )
    .await;
    let response = setup
        .service
        .client
        .get(setup.service.url("/v1/cas/signing-records"))
        .bearer_auth(&setup.admin)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<CaSigningRecord> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, list.records);

    // Another environment sees none of them.
    let trial = token(
        &setup.service,
        &setup.org,
        Environment::Trial,
        &[Operation::Read],
        KeyScope::default(),
    );
    let other: CaSigningRecordList =
        json(setup.service.get(&trial, "/v1/cas/signing-records").await).await;
    assert!(other.records.is_empty());
}

/// Profiles and CA signing records are in backups (a SQLite file, on either database) and restores
/// (into an empty PostgreSQL database, when one is available).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_and_signing_records_survive_backup_and_restore() {
    let setup = setup().await;
    let response = setup.put_profile(&setup.admin, "web", &web_profile()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let csr = openssl_csr(setup.dir.path(), "dev-bak-1", P256, "dev-bak-1");
    assert_eq!(
        setup
            .enroll_profile("dev-bak-1", &csr, "web")
            .await
            .status(),
        StatusCode::CREATED
    );
    let profiles: ProfileList = json(setup.service.get(&setup.admin, "/v1/profiles").await).await;
    let records: CaSigningRecordList = json(
        setup
            .service
            .get(&setup.admin, "/v1/cas/signing-records")
            .await,
    )
    .await;
    assert_eq!(records.records.len(), 1);

    let restore = tempfile::tempdir().unwrap();
    let backup = restore.path().join("cryptera.db");
    setup.service.backup(&backup);
    setup.service.copy_master_key(restore.path());
    let mut copies = Vec::new();
    if let Some(server) = common::postgres_server() {
        let target = tempfile::tempdir().unwrap();
        setup.service.copy_master_key(target.path());
        let database =
            cryptera_backend::store::Database::Postgres(common::fresh_postgres_database(&server));
        let output = common::restore(target.path(), &database, &backup);
        assert_success(&output);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(stdout.contains("certificate_profiles: 1 rows"), "{stdout}");
        assert!(stdout.contains("ca_signing_records: 1 rows"), "{stdout}");
        copies.push(TestService::start_from(target, database).await);
    }
    copies.push(TestService::start_from(restore, cryptera_backend::store::Database::DataDir).await);
    for restored in &copies {
        let again: ProfileList = json(restored.get(&setup.admin, "/v1/profiles").await).await;
        assert_eq!(again, profiles);
        let again: CaSigningRecordList =
            json(restored.get(&setup.admin, "/v1/cas/signing-records").await).await;
        assert_eq!(again, records);
    }
}
