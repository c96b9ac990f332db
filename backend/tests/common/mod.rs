//! Test harness: a real service on 127.0.0.1 (random port) over a real database, driven by a real HTTP
//! client. The database is a SQLite file in a temp directory, or, when `CRYPTERA_TEST_POSTGRES` names a
//! PostgreSQL server (`postgres://user@host:port/postgres`, as `backend/scripts/with-postgres.sh`
//! exports), a fresh database on it for each service. Helpers create organisations and users through
//! the library (as the CLI does) and log in through the API with real TOTP codes. [`devices`] sets up
//! device certificate tests (tokens, CAs, OpenSSL keys and CSRs); [`tls`] serves a service over HTTPS.

#![allow(dead_code, clippy::unwrap_used)]

pub mod devices;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use cryptera_backend::audit::AuditEvent;
use cryptera_backend::store::Database;
use cryptera_backend::{api, server, totp, AppState, ServiceConfig};
use cryptera_proto::audit::AuditRecord;
use cryptera_proto::auth::{CreateUserRequest, LoginRequest, LoginResponse, Role, TotpEnrolment};
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::keys::KeyInfo;
use cryptera_proto::Environment;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const PASSWORD: &str = "correct horse battery staple";

/// The variable naming the PostgreSQL server tests may create databases on.
pub const POSTGRES_VARIABLE: &str = "CRYPTERA_TEST_POSTGRES";

/// The PostgreSQL server URL, when the tests run on PostgreSQL.
pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A new, empty database for one test: PostgreSQL when configured, else the data directory's SQLite.
pub fn test_database() -> Database {
    match postgres_server() {
        Some(server) => Database::Postgres(fresh_postgres_database(&server)),
        None => Database::DataDir,
    }
}

/// Creates a uniquely named database on `server` and returns its URL.
pub fn fresh_postgres_database(server: &str) -> String {
    // Hex after a lowercase prefix: a valid identifier without quoting.
    let name = format!(
        "cryptera_test_{}",
        cryptera_backend::util::new_id("db").unwrap()
    );
    let statement = format!("CREATE DATABASE {name}");
    run_postgres(server, &statement).unwrap();
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// A runtime for the asynchronous parts of a synchronous test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs SQL statements (no parameters) on a PostgreSQL database, as any client could.
pub fn run_postgres(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    // Own thread and runtime: callers may be inside the test's runtime, where blocking on it is not allowed.
    std::thread::spawn(move || {
        let runtime = runtime();
        runtime.block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|err| err.to_string())?;
            let result = sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .map(drop)
                .map_err(|err| err.to_string());
            let _ = conn.close().await;
            result
        })
    })
    .join()
    .unwrap()
}

/// Runs SQL on the service's database as a client with direct access (the append-only triggers apply).
pub fn run_sql(dir: &std::path::Path, database: &Database, sql: &str) -> Result<(), String> {
    match database {
        Database::DataDir => rusqlite::Connection::open(dir.join(server::DATABASE_FILE))
            .and_then(|conn| conn.execute_batch(sql))
            .map_err(|err| err.to_string()),
        Database::Postgres(url) => run_postgres(url, sql),
    }
}

/// The `cryptera-backend` binary on `data_dir` and `database` (`--data-dir` and the URL variable set).
pub fn backend(data_dir: &std::path::Path, database: &Database) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cryptera-backend"));
    command.arg("--data-dir").arg(data_dir);
    match database {
        Database::DataDir => command.env_remove("CRYPTERA_DATABASE_URL"),
        Database::Postgres(url) => command.env("CRYPTERA_DATABASE_URL", url),
    };
    command
}

/// `cryptera-backend restore --input backup` into `data_dir` and `database`.
pub fn restore(
    data_dir: &std::path::Path,
    database: &Database,
    backup: &std::path::Path,
) -> std::process::Output {
    backend(data_dir, database)
        .args(["restore", "--input"])
        .arg(backup)
        .output()
        .unwrap()
}

/// Panics with the standard error unless the process succeeded.
pub fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The address a `serve` process listens on, from the first line it writes (`listening on ADDRESS`).
pub fn listening_address(server: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Stops the server we started, whatever happens in the test.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct TestService {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub database: Database,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The client a test drives a service with.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn test_config() -> ServiceConfig {
    ServiceConfig {
        login_failure_delay: Duration::from_millis(10),
        approval_retry_after_secs: 1,
        ..ServiceConfig::default()
    }
}

impl TestService {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = test_database();
        server::init(dir.path(), &database).unwrap();
        Self::serve_dir(Arc::new(dir), database, config).await
    }

    /// Serves an existing data directory (e.g. a restored backup) and its database.
    pub async fn start_from(dir: tempfile::TempDir, database: Database) -> Self {
        Self::serve_dir(Arc::new(dir), database, test_config()).await
    }

    /// A second, independent service (own connection, own caches) on the same database, as a second
    /// process behind a load balancer would be.
    pub async fn second_on_same_database(&self) -> Self {
        Self::serve_dir(Arc::clone(&self.dir), self.database.clone(), test_config()).await
    }

    /// A handle on a service running elsewhere (e.g. a `cryptera-backend serve` process) at `base`,
    /// with `state` opened by this process on the same data directory and database for setup.
    pub fn attach(
        base: String,
        state: AppState,
        dir: Arc<tempfile::TempDir>,
        database: Database,
    ) -> Self {
        Self {
            base,
            state,
            client: http_client(),
            dir,
            database,
            shutdown: None,
        }
    }

    /// The binary on this service's data directory and database.
    pub fn command(&self) -> std::process::Command {
        backend(self.dir.path(), &self.database)
    }

    /// Runs SQL on this service's database (see [`run_sql`]).
    pub fn sql(&self, sql: &str) -> Result<(), String> {
        run_sql(self.dir.path(), &self.database, sql)
    }

    /// `cryptera-backend backup --output path` of this service; panics unless it succeeds.
    pub fn backup(&self, path: &std::path::Path) {
        let output = self
            .command()
            .args(["backup", "--output"])
            .arg(path)
            .output()
            .unwrap();
        assert_success(&output);
    }

    /// Copies this service's master key into `dir` (a backup restores with the separately kept key).
    pub fn copy_master_key(&self, dir: &std::path::Path) {
        std::fs::copy(self.dir.path().join("master.key"), dir.join("master.key")).unwrap();
    }

    /// The first `limit` audit records of `org_id`.
    pub fn audit_records(&self, org_id: &str, limit: u32) -> Vec<AuditRecord> {
        self.state.store().audit_records(org_id, 0, limit).unwrap()
    }

    async fn serve_dir(
        dir: Arc<tempfile::TempDir>,
        database: Database,
        config: ServiceConfig,
    ) -> Self {
        let state = AppState::open(dir.path(), &database, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            server::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            state,
            client: http_client(),
            dir,
            database,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post<B: Serialize>(&self, token: &str, path: &str, body: &B) -> Response {
        send(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        send(self.client.get(self.url(path)).bearer_auth(token)).await
    }

    pub async fn put<B: Serialize>(&self, token: &str, path: &str, body: &B) -> Response {
        send(
            self.client
                .put(self.url(path))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// A POST without credentials.
    pub async fn post_public<B: Serialize>(&self, path: &str, body: &B) -> Response {
        send(self.client.post(self.url(path)).json(body)).await
    }

    /// A GET without credentials.
    pub async fn get_public(&self, path: &str) -> Response {
        send(self.client.get(self.url(path))).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        send(self.client.delete(self.url(path)).bearer_auth(token)).await
    }

    /// Creates an organisation directly (as `cryptera-backend org create` does); returns its id.
    pub fn org(&self, name: &str) -> String {
        api::create_organisation(&self.state, name, None)
            .unwrap()
            .id
    }

    pub fn trial_org(&self, name: &str) -> String {
        api::create_organisation(&self.state, name, Some(14))
            .unwrap()
            .id
    }

    /// Adds a user directly (as `cryptera-backend user add` does).
    pub fn user(&self, org_id: &str, username: &str, roles: &[Role]) -> User {
        let request = CreateUserRequest {
            username: username.to_owned(),
            password: PASSWORD.to_owned(),
            roles: roles.to_vec(),
        };
        let audit = AuditEvent::new(org_id, "svc", "user.create", "");
        let record = api::create_user(&self.state, audit, &request).unwrap();
        let org = self.state.store().org_by_id(org_id).unwrap().unwrap();
        User {
            id: record.id,
            org: org.name,
            username: username.to_owned(),
            totp_secret: None,
            last_step: 0,
        }
    }

    pub async fn login(&self, user: &mut User, environment: Environment) -> Response {
        let totp_code = user
            .totp_secret
            .clone()
            .map(|secret| user.next_code(&secret));
        let request = LoginRequest {
            organisation: user.org.clone(),
            username: user.username.clone(),
            password: PASSWORD.to_owned(),
            totp_code,
            environment,
        };
        self.post_public("/v1/login", &request).await
    }

    /// Logs in and returns the session token; panics unless the login succeeds.
    pub async fn session(&self, user: &mut User, environment: Environment) -> String {
        let response = self.login(user, environment).await;
        assert_eq!(response.status(), StatusCode::OK);
        json::<LoginResponse>(response).await.session_token
    }

    /// Enrols TOTP for `user` through the API and returns an MFA-verified session.
    pub async fn mfa_session(&self, user: &mut User, environment: Environment) -> String {
        if user.totp_secret.is_none() {
            let plain = self.session(user, environment).await;
            let response = self
                .post(&plain, "/v1/users/me/totp", &serde_json::json!({}))
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            let enrolment: TotpEnrolment = json(response).await;
            let secret = totp::decode_base32(&enrolment.secret_base32).unwrap();
            let code = user.next_code(&secret);
            let response = self
                .post(
                    &plain,
                    "/v1/users/me/totp/confirm",
                    &serde_json::json!({ "code": code }),
                )
                .await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            user.totp_secret = Some(secret);
        }
        let response = self.login(user, environment).await;
        assert_eq!(response.status(), StatusCode::OK);
        let login: LoginResponse = json(response).await;
        assert!(login.mfa_verified);
        login.session_token
    }
}

pub struct User {
    pub id: String,
    pub org: String,
    pub username: String,
    pub totp_secret: Option<Vec<u8>>,
    pub last_step: i64,
}

impl User {
    /// A code for the earliest step the service still accepts that this user has not used yet (the
    /// service refuses a step twice and accepts one step of drift either way).
    pub fn next_code(&mut self, secret: &[u8]) -> String {
        loop {
            let now = cryptera_backend::util::now();
            // The previous step is only safe early in the current one: near its end the service's
            // clock may have moved on by the time the code arrives, and the previous step would then
            // be two behind.
            let oldest = if now.rem_euclid(30) <= 20 {
                totp::step_at(now) - 1
            } else {
                totp::step_at(now)
            };
            let step = (self.last_step + 1).max(oldest);
            if step <= totp::step_at(now) + 1 {
                self.last_step = step;
                return totp::code_for_step(secret, step);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Response {
    request.send().await.unwrap()
}

pub async fn json<T: DeserializeOwned>(response: Response) -> T {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: {err}: {text}"))
}

/// Asserts the standard error body with `code` and the status that code always has.
pub async fn expect_error(response: Response, code: ErrorCode) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body: ErrorBody = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{status}: not an error body ({err}): {text}"));
    assert_eq!(body.error.code, code, "{status}: {text}");
    assert_eq!(status.as_u16(), code.status(), "{text}");
    assert!(!body.error.message.is_empty());
}

pub fn shared(service: TestService) -> Arc<TestService> {
    Arc::new(service)
}

/// Creates an access token directly (as `cryptera-backend token create` does) and returns its secret.
pub fn token(
    service: &TestService,
    org_id: &str,
    environment: Environment,
    operations: &[cryptera_proto::auth::Operation],
    keys: cryptera_proto::auth::KeyScope,
) -> String {
    let org = service.state.store().org_by_id(org_id).unwrap().unwrap();
    let request = cryptera_proto::auth::CreateTokenRequest {
        name: "test-token".to_owned(),
        operations: operations.to_vec(),
        keys,
        expires_in_seconds: 3600,
    };
    let audit = AuditEvent::new(org_id, "svc", "token.create", "");
    api::create_token(&service.state, &org, audit, environment, &request)
        .unwrap()
        .token
}

/// An access token for every key in the development environment (see [`token`]).
pub fn dev_token(
    service: &TestService,
    org_id: &str,
    operations: &[cryptera_proto::auth::Operation],
) -> String {
    token(
        service,
        org_id,
        Environment::Development,
        operations,
        all_keys(),
    )
}

/// Creates a key through the API (`body`: label, algorithm, policy); panics unless it is created.
pub async fn create_key(service: &TestService, token: &str, body: serde_json::Value) -> KeyInfo {
    let response = service.post(token, "/v1/keys", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json(response).await
}

/// A key scope that covers every key.
pub fn all_keys() -> cryptera_proto::auth::KeyScope {
    cryptera_proto::auth::KeyScope {
        ids: Vec::new(),
        label_patterns: vec!["*".to_owned()],
    }
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}
