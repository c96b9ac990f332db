//! Test harness: a real service on 127.0.0.1 (random port) over a real SQLite file in a temp directory,
//! driven by a real HTTP client. Helpers create organisations and users through the library (as the CLI
//! does) and log in through the API with real TOTP codes.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cryptera_backend::audit::AuditEvent;
use cryptera_backend::{api, server, totp, AppState, ServiceConfig};
use cryptera_proto::auth::{CreateUserRequest, LoginRequest, LoginResponse, Role, TotpEnrolment};
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::Environment;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestService {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
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
        server::init(dir.path()).unwrap();
        Self::serve_dir(Arc::new(dir), config).await
    }

    /// Serves an existing data directory (e.g. a restored backup).
    pub async fn start_from(dir: tempfile::TempDir) -> Self {
        Self::serve_dir(Arc::new(dir), test_config()).await
    }

    /// A second, independent service (own connection, own caches) on the same database, as a second
    /// process behind a load balancer would be.
    pub async fn second_on_same_database(&self) -> Self {
        Self::serve_dir(Arc::clone(&self.dir), test_config()).await
    }

    async fn serve_dir(dir: Arc<tempfile::TempDir>, config: ServiceConfig) -> Self {
        let state = AppState::open(dir.path(), config).unwrap();
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
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post<B: Serialize>(&self, token: &str, path: &str, body: &B) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
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
        self.client
            .post(self.url("/v1/login"))
            .json(&request)
            .send()
            .await
            .unwrap()
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
