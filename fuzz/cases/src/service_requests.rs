//! The service's request bodies, through its real router in process: the JSON extractor, the proto
//! types (`deny_unknown_fields`, base64 bytes, enums), the handlers' validation and what they do with
//! what passes (signing with real keys, policies, certificate chains, tokens, users, logins, approvals,
//! query strings). The first byte picks the endpoint (or a raw method and path), the next ones the
//! headers, the rest is the body. No request may panic or answer 500: a body the service cannot use
//! is a 4xx with the standard error body.
//!
//! A second mode deserialises the body into each request type directly and checks that what parses
//! serialises and parses back to the same JSON.
//!
//! The service lives in a private data directory (SQLite, file KEK), with an organisation, a user, an
//! access token with every operation and keys of each fast algorithm; it is rebuilt every few thousand
//! inputs so its database stays small. Key administration targets a fresh key per input, so a fuzzed
//! lock, deletion or policy never changes the signing keys.

use crate::{disk_work_dir, tracing, Reader};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use cryptera_backend::audit::AuditEvent;
use cryptera_backend::kek::Kek;
use cryptera_backend::store::sqlite::SqliteStore;
use cryptera_backend::store::OrgRecord;
use cryptera_backend::{api, AppState, ServiceConfig};
use cryptera_proto::auth::{
    CreateTokenRequest, CreateUserRequest, KeyScope, LoginRequest, Operation, Role,
    TotpConfirmRequest,
};
use cryptera_proto::keys::{CreateKeyRequest, KeyAlgorithm, KeyPolicy, SetCertificatesRequest};
use cryptera_proto::sign::{DenyRequest, SignRequest};
use cryptera_proto::Environment;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
/// Inputs served by one service before it is rebuilt from scratch.
const INPUTS_PER_SERVICE: u32 = 3000;

struct Service {
    dir: PathBuf,
    state: AppState,
    org: OrgRecord,
    router: axum::Router,
    token: String,
    /// The EC P-256, Ed25519 and RSA-2048 keys that sign requests use.
    signing_keys: [String; 3],
    served: u32,
}

fn config() -> ServiceConfig {
    ServiceConfig {
        login_failure_delay: std::time::Duration::ZERO,
        credential_requests_per_minute: u32::MAX,
        organisation_requests_per_minute: u32::MAX,
        trial_requests_per_minute: u32::MAX,
        login_attempts_per_minute: u32::MAX,
        ..ServiceConfig::default()
    }
}

fn key(state: &AppState, org: &OrgRecord, label: &str, algorithm: KeyAlgorithm) -> String {
    let audit = AuditEvent::new(&org.id, "svc", "key.create", "");
    let request = CreateKeyRequest {
        label: label.to_owned(),
        algorithm,
        policy: KeyPolicy::default(),
    };
    api::create_key(state, org, audit, Environment::Development, &request)
        .expect("create a key")
        .id
}

impl Service {
    fn start(base: &std::path::Path, generation: u32) -> Service {
        let dir = base.join(format!("service-{generation}"));
        std::fs::create_dir_all(&dir).expect("service dir");
        let key_path = dir.join("master.key");
        Kek::create_file(&key_path).expect("KEK file");
        let kek = Kek::load_file(&key_path).expect("KEK");
        let store = SqliteStore::open(&dir.join("cryptera.db")).expect("database");
        let state = AppState::new(Arc::new(store), kek, config());
        let org = api::create_organisation(&state, "fuzz", None).expect("organisation");
        let user = CreateUserRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            roles: vec![Role::Admin, Role::Signer, Role::Approver, Role::Auditor],
        };
        api::create_user(
            &state,
            AuditEvent::new(&org.id, "svc", "user.create", ""),
            &user,
        )
        .expect("user");
        let request = CreateTokenRequest {
            name: "fuzz".into(),
            operations: Operation::ALL.to_vec(),
            keys: KeyScope {
                ids: Vec::new(),
                label_patterns: vec!["*".into()],
            },
            expires_in_seconds: 30 * 86_400,
        };
        let audit = AuditEvent::new(&org.id, "svc", "token.create", "");
        let token = api::create_token(&state, &org, audit, Environment::Development, &request)
            .expect("token")
            .token;
        let signing_keys = [
            key(&state, &org, "ec", KeyAlgorithm::EcdsaP256),
            key(&state, &org, "ed", KeyAlgorithm::Ed25519),
            key(&state, &org, "rsa", KeyAlgorithm::Rsa2048),
        ];
        Service {
            router: api::router(state.clone()),
            dir,
            state,
            org,
            token,
            signing_keys,
            served: 0,
        }
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    base: PathBuf,
    generation: u32,
    service: Service,
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // On disk, not tmpfs: the databases of a long run add up.
        let base = disk_work_dir("service_requests");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let service = runtime.block_on(async { Service::start(&base, 0) });
        Mutex::new(Harness {
            runtime,
            base,
            generation: 0,
            service,
        })
    })
}

/// Routes the fuzzer can aim at; `{sign}` is one of the signing keys, `{scratch}` a fresh key.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/keys/{sign}/sign"),
    ("PUT", "/v1/keys/{scratch}/policy"),
    ("PUT", "/v1/keys/{scratch}/certificates"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/tokens"),
    ("POST", "/v1/users"),
    ("POST", "/v1/login"),
    ("POST", "/v1/users/me/totp/confirm"),
    ("POST", "/v1/signing-requests/{request}/deny"),
    ("POST", "/v1/signing-requests/{request}/approve"),
    ("POST", "/v1/keys/{scratch}/lock"),
    ("DELETE", "/v1/keys/{scratch}"),
    ("POST", "/v1/keys/{scratch}/restore"),
    ("GET", "/v1/audit/records?{query}"),
    ("GET", "/v1/signing-requests?{query}"),
    ("GET", "/v1/keys/{sign}"),
];

/// Percent-encodes fuzzed bytes for a path segment or query string (keeping `=` and `&` in a query).
fn encode(bytes: &[u8], query: bool) -> String {
    let mut out = String::new();
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(b) || (query && b"=&".contains(b)) {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn request(service: &mut Service, r: &mut Reader) -> Option<Request<Body>> {
    let selector = r.u8();
    let headers = r.u8();
    let (method, path) = if usize::from(selector) < ROUTES.len() {
        let (method, template) = ROUTES[usize::from(selector)];
        let mut path = template.to_owned();
        if path.contains("{sign}") {
            let which = usize::from(r.u8());
            let id = service
                .signing_keys
                .get(which)
                .cloned()
                .unwrap_or_else(|| encode(r.bytes(false), false));
            path = path.replace("{sign}", &id);
        }
        if path.contains("{scratch}") {
            let label = format!("scratch-{}", service.served);
            let id = key(
                &service.state,
                &service.org,
                &label,
                KeyAlgorithm::EcdsaP256,
            );
            path = path.replace("{scratch}", &id);
        }
        if path.contains("{request}") {
            path = path.replace("{request}", &encode(r.bytes(false), false));
        }
        if path.contains("{query}") {
            path = path.replace("{query}", &encode(r.bytes(false), true));
        }
        (Method::from_bytes(method.as_bytes()).ok()?, path)
    } else {
        // A raw method and path, as a hostile client would send them.
        let method = Method::from_bytes(r.bytes(false)).ok()?;
        let path = String::from_utf8(r.bytes(false).to_vec()).ok()?;
        (method, path)
    };
    let mut builder = Request::builder().method(method).uri(path);
    if headers & 1 == 0 {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", service.token));
    } else if headers & 2 == 0 {
        builder = builder.header(header::AUTHORIZATION, r.bytes(false));
    }
    if headers & 4 == 0 {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    if headers & 8 != 0 {
        builder = builder.header("idempotency-key", r.bytes(false));
    }
    builder.body(Body::from(r.rest().to_vec())).ok()
}

/// Parses `body` as `T`; what parses must serialise and parse back to the same JSON.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        let json = serde_json::to_string(&value).expect("serialise a parsed request");
        let again: T = serde_json::from_str(&json).expect("a serialised request parses");
        assert_eq!(
            serde_json::to_string(&again).expect("serialise again"),
            json,
            "JSON round trip"
        );
    }
}

/// One input: what the fuzz target of the same name runs, and what the corpus replay test runs.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 != 0 {
        round_trip::<SignRequest>(rest);
        round_trip::<KeyPolicy>(rest);
        round_trip::<CreateKeyRequest>(rest);
        round_trip::<SetCertificatesRequest>(rest);
        round_trip::<CreateTokenRequest>(rest);
        round_trip::<CreateUserRequest>(rest);
        round_trip::<LoginRequest>(rest);
        round_trip::<TotpConfirmRequest>(rest);
        round_trip::<DenyRequest>(rest);
        return;
    }
    let mut harness = harness().lock().unwrap_or_else(|e| e.into_inner());
    let harness = &mut *harness;
    if harness.service.served >= INPUTS_PER_SERVICE {
        harness.generation += 1;
        let old = std::mem::replace(
            &mut harness.service,
            harness
                .runtime
                .block_on(async { Service::start(&harness.base, harness.generation) }),
        );
        let _ = std::fs::remove_dir_all(&old.dir);
    }
    let service = &mut harness.service;
    service.served += 1;
    let mut r = Reader::new(rest);
    let Some(request) = harness.runtime.block_on(async { request(service, &mut r) }) else {
        return;
    };
    let label = format!("{} {}", request.method(), request.uri());
    let router = service.router.clone();
    let (status, body) = harness.runtime.block_on(async move {
        let response = router
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, body)
    });
    if tracing() {
        eprintln!("{label}: {status} {}", String::from_utf8_lossy(&body));
    }
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{label} answered 500: {}",
        String::from_utf8_lossy(&body)
    );
}
