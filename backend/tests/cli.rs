//! The built `cryptera-backend` binary end to end: init, org create, user add, key create, token create,
//! serve on a random loopback port, a signed digest over HTTP, and a signature approved with
//! `cryptera-backend approve` (password and TOTP code on standard input).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519};
use common::{listening_address, Server};
use cryptera_backend::store::Database;
use cryptera_backend::totp;
use cryptera_proto::auth::{LoginResponse, TotpEnrolment};
use cryptera_proto::keys::KeyInfo;
use cryptera_proto::sign::{SignResponse, SigningRequestInfo, SigningRequestStatus};
use cryptera_proto::Base64Bytes;

fn cli(data_dir: &Path, database: &Database, args: &[&str]) -> std::process::Output {
    common::backend(data_dir, database)
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn from_nothing_to_a_signed_digest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = common::test_database();
    ok(cli(&data, &database, &["init"]));
    let mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !cli(&data, &database, &["init"]).status.success(),
        "init never overwrites a KEK"
    );

    ok(cli(&data, &database, &["org", "create", "--name", "acme"]));
    let mut add_user = common::backend(&data, &database)
        .args([
            "user",
            "add",
            "--org",
            "acme",
            "--username",
            "alice",
            "--role",
            "admin",
            "--role",
            "approver",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add_user
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let user_id = ok(add_user.wait_with_output().unwrap());
    assert!(user_id.trim().starts_with("usr_"));

    let key: KeyInfo = serde_json::from_str(&ok(cli(
        &data,
        &database,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--label",
            "fw",
            "--algorithm",
            "ed25519",
            "--environment",
            "development",
        ],
    )))
    .unwrap();
    let token = ok(cli(
        &data,
        &database,
        &[
            "token",
            "create",
            "--org",
            "acme",
            "--name",
            "ci",
            "--operation",
            "sign",
            "--key-pattern",
            "fw",
            "--environment",
            "development",
            "--expires-in-days",
            "1",
        ],
    ));
    let token = token.trim().to_owned();
    assert!(token.starts_with("cryptera_at_"));

    // Plain HTTP is refused off loopback.
    let refused = cli(&data, &database, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!refused.status.success());

    let child = common::backend(&data, &database)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let address = listening_address(&mut server.0);

    let runtime = common::runtime();
    let signed: SignResponse = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://{address}/v1/keys/{}/sign", key.id))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "mechanism": "ed25519",
                "data": Base64Bytes(b"hello".to_vec()),
                "idempotency_key": "cli-1",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    ParsedPublicKey::new(&ED25519, key.public_key.as_slice())
        .unwrap()
        .verify_sig(b"hello", signed.signature.as_slice())
        .unwrap();

    // An approval through the CLI: a key that needs one approval, and alice approving with password + TOTP.
    let guarded: KeyInfo = serde_json::from_str(&ok(cli(
        &data,
        &database,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--label",
            "fw-release",
            "--algorithm",
            "ecdsa_p256",
            "--environment",
            "development",
            "--approvals-required",
            "1",
        ],
    )))
    .unwrap();
    let ci = ok(cli(
        &data,
        &database,
        &[
            "token",
            "create",
            "--org",
            "acme",
            "--name",
            "release",
            "--operation",
            "sign",
            "--operation",
            "read",
            "--key-pattern",
            "fw-*",
            "--environment",
            "development",
            "--expires-in-days",
            "1",
        ],
    ));
    let ci = ci.trim().to_owned();
    let (request_id, secret) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{address}");
        let login: LoginResponse = http
            .post(format!("{base}/v1/login"))
            .json(&serde_json::json!({"organisation": "acme", "username": "alice",
                                      "password": "a long enough password", "environment": "development"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let enrolment: TotpEnrolment = http
            .post(format!("{base}/v1/users/me/totp"))
            .bearer_auth(&login.session_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = totp::decode_base32(&enrolment.secret_base32).unwrap();
        let step = totp::step_at(cryptera_backend::util::now()) - 1;
        let confirmed = http
            .post(format!("{base}/v1/users/me/totp/confirm"))
            .bearer_auth(&login.session_token)
            .json(&serde_json::json!({"code": totp::code_for_step(&secret, step)}))
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), 204);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"release");
        let response = http
            .post(format!("{base}/v1/keys/{}/sign", guarded.id))
            .bearer_auth(&ci)
            .json(&serde_json::json!({"mechanism": "ecdsa_sha256",
                                      "digest": Base64Bytes(digest.as_ref().to_vec()),
                                      "idempotency_key": "release-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let pending: SigningRequestInfo = response.json().await.unwrap();
        (pending.id, secret)
    });
    let code = totp::code_for_step(&secret, totp::step_at(cryptera_backend::util::now()) + 1);
    let mut approve = common::backend(&data, &database)
        .args([
            "approve",
            "--org",
            "acme",
            "--username",
            "alice",
            "--request",
            &request_id,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    approve
        .stdin
        .take()
        .unwrap()
        .write_all(format!("a long enough password\n{code}\n").as_bytes())
        .unwrap();
    let approved: SigningRequestInfo =
        serde_json::from_str(&ok(approve.wait_with_output().unwrap())).unwrap();
    assert_eq!(approved.status, SigningRequestStatus::Completed);
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, guarded.public_key.as_slice())
        .unwrap()
        .verify_sig(b"release", approved.signature.unwrap().as_slice())
        .unwrap();
    drop(server);

    let verify = ok(cli(&data, &database, &["audit", "verify"]));
    assert!(verify.contains(": ok,"), "{verify}");
}
