//! Operations: Prometheus metrics, readiness, and `cryptera-backend backup` producing a usable copy.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{all_keys, assert_success, create_key, dev_token, json, Server, TestService};
use cryptera_backend::store::Database;
use cryptera_proto::auth::Operation;
use cryptera_proto::keys::{KeyInfo, KeyList};
use cryptera_proto::{Base64Bytes, Environment};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_latencies_and_signatures() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let admin = dev_token(
        &service,
        &org,
        &[Operation::Keygen, Operation::Sign, Operation::Read],
    );
    let key = create_key(
        &service,
        &admin,
        json!({"label": "m", "algorithm": "ed25519"}),
    )
    .await;
    for n in 0..3 {
        let body = json!({"mechanism": "ed25519", "data": Base64Bytes(vec![n]), "idempotency_key": format!("m{n}")});
        assert_eq!(
            service
                .post(&admin, &format!("/v1/keys/{}/sign", key.id), &body)
                .await
                .status(),
            StatusCode::OK
        );
    }
    service.get("bad-token", "/v1/keys").await;

    let response = service.get_public("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("cryptera_requests_total{method=\"POST\",route=\"/v1/keys/{id}/sign\",status=\"200\"} 3"), "{text}");
    assert!(
        text.contains(
            "cryptera_requests_total{method=\"GET\",route=\"/v1/keys\",status=\"401\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cryptera_signatures_total{{organisation=\"{org}\",key=\"{}\"}} 3",
            key.id
        )),
        "{text}"
    );
    assert!(
        text.contains("cryptera_request_duration_seconds_count{route=\"/v1/keys/{id}/sign\"} 3"),
        "{text}"
    );
    assert!(!text.contains(&admin), "no secrets in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_a_consistent_usable_copy() {
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "b", "algorithm": "ecdsa_p384"}),
    )
    .await;

    let restore = tempfile::tempdir().unwrap();
    // On either database the backup is a SQLite file, which a data directory can serve as is.
    service.backup(&restore.path().join("cryptera.db"));
    // Restoring is the backup plus the separately kept master key.
    service.copy_master_key(restore.path());

    let restored = TestService::start_from(restore, Database::DataDir).await;
    let keys: KeyList = json(restored.get(&keygen, "/v1/keys").await).await;
    assert_eq!(keys.keys, vec![key]);
    let verify = restored
        .command()
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success());

    let again = service
        .command()
        .args(["backup", "--output"])
        .arg(restored.dir.path().join("cryptera.db"))
        .output()
        .unwrap();
    assert!(!again.status.success(), "backup never overwrites");
}

#[test]
fn a_wrong_master_key_is_refused_at_start() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let databases = [common::test_database(), common::test_database()];
    for (dir, database) in [&first, &second].into_iter().zip(&databases) {
        cryptera_backend::server::init(dir.path(), database).unwrap();
    }
    std::fs::remove_file(first.path().join("master.key")).unwrap();
    std::fs::copy(
        second.path().join("master.key"),
        first.path().join("master.key"),
    )
    .unwrap();
    let error =
        cryptera_backend::AppState::open(first.path(), &databases[0], common::test_config())
            .err()
            .unwrap()
            .to_string();
    assert!(error.contains("wrong master key"), "{error}");
    let output = common::backend(first.path(), &databases[0])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong master key"));
}

#[test]
fn sigterm_stops_the_service_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::test_database();
    cryptera_backend::server::init(dir.path(), &database).unwrap();
    let mut child = common::backend(dir.path(), &database)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::listening_address(&mut child);
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn json_logs_name_routes_but_carry_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::test_database();
    cryptera_backend::server::init(dir.path(), &database).unwrap();
    let child = common::backend(dir.path(), &database)
        .args(["--log-json", "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let address = common::listening_address(&mut server.0);
    let secret = "cryptera_at_tok_0123456789abcdef_doNotLogThisSecretValueAAAAAAAAAAAAAAAAAAA";
    let runtime = common::runtime();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("http://{address}/v1/keys"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    });
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let _ = server.0.wait();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut server.0.stderr.take().unwrap(), &mut logs).unwrap();
    let request = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["fields"]["route"] == "/v1/keys")
        .unwrap_or_else(|| panic!("no JSON request log in {logs}"));
    assert_eq!(request["fields"]["status"], 401);
    assert!(!logs.contains("doNotLogThisSecretValue"));
}

#[test]
fn serve_flags_set_retention_and_rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::test_database();
    cryptera_backend::server::init(dir.path(), &database).unwrap();
    let token = {
        let state =
            cryptera_backend::AppState::open(dir.path(), &database, common::test_config()).unwrap();
        let org = cryptera_backend::api::create_organisation(&state, "acme", None).unwrap();
        let request = cryptera_proto::auth::CreateTokenRequest {
            name: "ops".into(),
            operations: vec![Operation::Admin, Operation::Keygen],
            keys: all_keys(),
            expires_in_seconds: 600,
        };
        let audit = cryptera_backend::audit::AuditEvent::new(&org.id, "svc", "token.create", "");
        cryptera_backend::api::create_token(&state, &org, audit, Environment::Development, &request)
            .unwrap()
            .token
    };
    let child = common::backend(dir.path(), &database)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--deletion-retention-days",
            "2",
        ])
        .args(["--credential-requests-per-minute", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let base = format!("http://{}", common::listening_address(&mut server.0));
    let runtime = common::runtime();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let key: KeyInfo = client
            .post(format!("{base}/v1/keys"))
            .bearer_auth(&token)
            .json(&json!({"label": "k", "algorithm": "ed25519"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let deleted: KeyInfo = client
            .delete(format!("{base}/v1/keys/{}", key.id))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let days = (deleted.purge_at.unwrap() - cryptera_backend::util::now()) as f64 / 86_400.0;
        assert!((1.99..=2.0).contains(&days), "{days}");
        let third = client
            .get(format!("{base}/v1/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_an_empty_postgres_database() {
    let Some(server) = common::postgres_server() else {
        eprintln!(
            "skipped: set {} to run on PostgreSQL",
            common::POSTGRES_VARIABLE
        );
        return;
    };
    let service = TestService::start().await;
    let org = service.org("acme");
    let keygen = dev_token(&service, &org, &[Operation::Keygen, Operation::Read]);
    let key = create_key(
        &service,
        &keygen,
        json!({"label": "r", "algorithm": "ed25519"}),
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup.db");
    service.backup(&backup);

    let target = tempfile::tempdir().unwrap();
    service.copy_master_key(target.path());
    let database = Database::Postgres(common::fresh_postgres_database(&server));
    let restore = || common::restore(target.path(), &database, &backup);
    let output = restore();
    assert_success(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("keys: 1 rows"));
    let again = restore();
    assert!(
        !again.status.success(),
        "restore never writes into a used database"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));

    let restored = TestService::start_from(target, database).await;
    let keys: KeyList = json(restored.get(&keygen, "/v1/keys").await).await;
    assert_eq!(keys.keys, vec![key]);
    let verify = restored
        .command()
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
