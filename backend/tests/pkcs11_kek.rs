//! The KEK in a PKCS#11 token: the project's own module (`libcryptera_pkcs11.so`, built with
//! `cargo build --release -p cryptera-pkcs11`, or `CRYPTERA_PKCS11_MODULE`) holds a non-extractable
//! AES-256 KEK; the service seals keys inside it, accepts production keys without the file-KEK override,
//! survives a restart, and refuses a wrong PIN. One test per process: the module is initialised once.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED};
use common::{all_keys, json, sha256, token, TestService};
use cryptera_backend::kek_pkcs11::{Pkcs11KekConfig, PIN_VARIABLE};
use cryptera_backend::{server, AppState};
use cryptera_proto::auth::Operation;
use cryptera_proto::keys::KeyInfo;
use cryptera_proto::sign::SignResponse;
use cryptera_proto::{Base64Bytes, Environment};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use reqwest::StatusCode;
use serde_json::json;

const SO_PIN: &str = "so-pin-5678";
const USER_PIN: &str = "user-pin-1234";

/// The built module: `CRYPTERA_PKCS11_MODULE`, else the workspace's release build (as `pkcs11-tests`).
fn module_path() -> PathBuf {
    let path = std::env::var_os("CRYPTERA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libcryptera_pkcs11.so")
        });
    assert!(
        path.is_file(),
        "the module {} does not exist: build it with `cargo build --release -p cryptera-pkcs11` \
         or point CRYPTERA_PKCS11_MODULE at it",
        path.display()
    );
    path
}

/// Points the module at a private store and initialises a token labelled `label` (as an HSM admin would).
fn prepare_token(store: &Path, label: &str) -> PathBuf {
    let config = store.join("module.toml");
    std::fs::write(
        &config,
        format!(
            "store_dir = {:?}\nkdf_memory_kib = 64\nkdf_iterations = 1\n",
            store.join("tokens").display().to_string()
        ),
    )
    .unwrap();
    std::env::set_var("CRYPTERA_PKCS11_CONFIG", &config);
    let module = module_path();
    let context = Pkcs11::new(&module).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = context
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|slot| !context.get_token_info(*slot).unwrap().token_initialized())
        .unwrap();
    context
        .init_token(slot, &AuthPin::from(SO_PIN), label)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::from(SO_PIN)))
        .unwrap();
    session.init_pin(&AuthPin::from(USER_PIN)).unwrap();
    session.logout().unwrap();
    module
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sealed_inside_a_pkcs11_token() {
    let work = tempfile::tempdir().unwrap();
    let module = prepare_token(work.path(), "cryptera-kek-token");
    let data = tempfile::tempdir().unwrap();
    let config = Pkcs11KekConfig {
        module,
        token_label: "cryptera-kek-token".into(),
        key_label: "cryptera-kek".into(),
    };
    let database = common::test_database();
    server::init_pkcs11(data.path(), &database, &config, USER_PIN).unwrap();
    assert!(
        !data.path().join("master.key").exists(),
        "no key material on disk"
    );
    assert!(
        server::init_pkcs11(data.path(), &database, &config, USER_PIN).is_err(),
        "init never replaces a KEK"
    );
    assert!(
        AppState::open_with_pin(
            data.path(),
            &database,
            common::test_config(),
            Some("wrong-pin-0000")
        )
        .is_err(),
        "a wrong PIN opens nothing"
    );

    std::env::set_var(PIN_VARIABLE, USER_PIN);
    let service = TestService::start_from(data, database).await;
    let org = service.org("acme");
    let keygen = token(
        &service,
        &org,
        Environment::Production,
        &[Operation::Keygen, Operation::Read],
        all_keys(),
    );
    let signer = token(
        &service,
        &org,
        Environment::Production,
        &[Operation::Sign],
        all_keys(),
    );
    // Production keys need no override when the KEK is in a token.
    let response = service
        .post(
            &keygen,
            "/v1/keys",
            &json!({"label": "release", "algorithm": "ecdsa_p256"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let key: KeyInfo = json(response).await;
    let record = service
        .state
        .store()
        .key_by_id(&org, &key.id)
        .unwrap()
        .unwrap();
    assert_eq!(
        record.sealed_private_key[0], 2,
        "sealed by the PKCS#11 engine"
    );

    let digest = sha256(b"production firmware");
    let body = json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(digest.clone()), "idempotency_key": "p1"});
    let signed: SignResponse = json(
        service
            .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
            .await,
    )
    .await;
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key.as_slice())
        .unwrap()
        .verify_sig(b"production firmware", signed.signature.as_slice())
        .unwrap();

    // A second instance (a restart) finds the same KEK in the token and signs with the same key.
    let again = service.second_on_same_database().await;
    let body = json!({"mechanism": "ecdsa_sha256", "digest": Base64Bytes(digest), "idempotency_key": "p2"});
    let response = again
        .post(&signer, &format!("/v1/keys/{}/sign", key.id), &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ready = again.client.get(again.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}
