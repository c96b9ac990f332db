//! The HTTP client of a remote token: one pooled, keep-alive connection set per token, fixed timeouts,
//! and the service's error codes mapped to PKCS#11 errors. reqwest's blocking client runs its own
//! runtime thread, so no async runtime ever runs on the host program's threads.

use crate::config::RemoteConfig;
use crate::error::{Error, Result};
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::keys::{KeyInfo, KeyList, Mechanism, SetCertificatesRequest};
use cryptera_proto::sign::{SignRequest, SignResponse, SigningRequestInfo, SigningRequestStatus};
use cryptera_proto::Base64Bytes;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
    approval_wait: Duration,
    quiet: bool,
    slot: u64,
}

/// What a signing request sends: a digest, or (Ed25519) the message.
pub enum Payload {
    Digest(Vec<u8>),
    Data(Vec<u8>),
}

/// How many times a request is sent when the network or the service fails (not on 4xx answers).
const TRIES: u32 = 3;
/// Pause before the second and third try.
const BACKOFF_MS: [u64; 2] = [200, 800];
/// Longest pause between two looks at a signing request waiting for approvals.
const MAX_POLL_S: u64 = 30;

/// Says `reason` on stderr, once per process and reason, unless the token is quiet: a PKCS#11 return
/// value cannot say why the service could not be used.
fn notice(quiet: bool, reason: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if quiet {
        return;
    }
    if let Ok(mut said) = SAID.lock() {
        if !said.iter().any(|r| r == reason) {
            said.push(reason.to_string());
            eprintln!("cryptera-pkcs11: {reason}");
        }
    }
}

/// The error text of a failed request with its causes (reqwest's own text hides them).
pub fn causes(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A certificate or handshake failure (in the text [`causes`] makes): retrying cannot help.
pub fn is_tls_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "certificate",
        "handshake",
        "tls",
        "unknownissuer",
        "notvalidforname",
    ]
    .iter()
    .any(|word| text.contains(word))
}

/// The seconds a `Retry-After` header asks for.
fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The PKCS#11 error for a service error code.
fn map_code(code: ErrorCode) -> Error {
    match code {
        ErrorCode::Unauthenticated | ErrorCode::TokenRevoked => Error::UserNotLoggedIn,
        ErrorCode::TokenExpired => Error::PinExpired,
        ErrorCode::InsufficientScope
        | ErrorCode::EnvironmentMismatch
        | ErrorCode::MechanismNotAllowed => Error::KeyFunctionNotPermitted,
        ErrorCode::NotFound | ErrorCode::KeyDeleted => Error::KeyHandleInvalid,
        ErrorCode::UnsupportedMechanism => Error::MechanismInvalid,
        ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge => Error::DataLenRange,
        other => Error::Device(format!("Cryptera service: {other:?}")),
    }
}

/// The body of a successful answer, or the service's error as a PKCS#11 error.
fn answer<T: serde::de::DeserializeOwned>(response: reqwest::blocking::Response) -> Result<T> {
    if !response.status().is_success() {
        return Err(failure(response));
    }
    response
        .json()
        .map_err(|e| Error::Device(format!("Cryptera service: bad answer: {e}")))
}

fn failure(response: reqwest::blocking::Response) -> Error {
    let status = response.status();
    match response.json::<ErrorBody>() {
        Ok(body) => map_code(body.error.code),
        Err(_) => Error::Device(format!("Cryptera service answered {status}")),
    }
}

/// Whether a request may be sent again after it may have reached the service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads, and signing requests (their idempotency key makes a repeat return the first outcome).
    Safe,
    /// Creating a key: sent again only when the connection was never made.
    ConnectOnly,
}

/// Whether an access token may travel to `url`: over HTTPS, or plain HTTP to this machine only.
pub fn secure_enough(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// Refuses plain HTTP except to this machine: the access token and the digests travel in it.
fn check_url(url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::General(format!("remote token url {url:?}: {e}")))?;
    if secure_enough(&parsed) {
        Ok(())
    } else {
        Err(Error::General(format!(
            "remote token url {url:?}: use https (plain http only to this machine)"
        )))
    }
}

impl Client {
    pub fn new(config: &RemoteConfig) -> Result<Client> {
        check_url(&config.url)?;
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5000)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::General(format!("{}: {e}", path.display())))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::General(e.to_string()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::General(format!("HTTP client: {e}")))?;
        Ok(Client {
            base: config.url.trim_end_matches('/').to_string(),
            http,
            approval_wait: Duration::from_secs(config.approval_wait_s),
            quiet: config.quiet,
            slot: config.slot,
        })
    }

    /// Says why the service could not be used (once per reason) and returns the error for it.
    fn fail(&self, reason: String) -> Error {
        notice(self.quiet, &format!("remote slot {}: {reason}", self.slot));
        Error::Device(reason)
    }

    /// Sends a request, retrying network failures and 5xx answers `TRIES` times with backoff (only
    /// where `retry` allows) and honouring `429`'s `Retry-After` while `rate_wait` lasts. Returns any
    /// other answer, for the caller to read.
    fn send(
        &self,
        build: &dyn Fn() -> reqwest::blocking::RequestBuilder,
        retry: Retry,
        rate_wait: Duration,
    ) -> Result<reqwest::blocking::Response> {
        let rate_deadline = Instant::now() + rate_wait;
        let mut failures = 0;
        loop {
            let pause = match build().send() {
                Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    let pause = retry_after(&response).unwrap_or(Duration::from_secs(1));
                    if Instant::now() + pause > rate_deadline {
                        return Err(self.fail(format!(
                            "the Cryptera service at {} keeps refusing: rate limit reached",
                            self.base
                        )));
                    }
                    pause
                }
                Ok(response) if response.status().is_server_error() && retry == Retry::Safe => {
                    failures += 1;
                    if failures >= TRIES {
                        let status = response.status();
                        let error = failure(response);
                        notice(
                            self.quiet,
                            &format!(
                                "remote slot {}: the Cryptera service at {} answered {status}",
                                self.slot, self.base
                            ),
                        );
                        return Err(error);
                    }
                    retry_after(&response)
                        .unwrap_or(Duration::from_millis(BACKOFF_MS[failures as usize - 1]))
                        .min(Duration::from_secs(5))
                }
                Ok(response) => return Ok(response),
                Err(err) => {
                    let text = causes(&err);
                    if is_tls_failure(&text) {
                        return Err(self.fail(format!("TLS with {} failed: {text}", self.base)));
                    }
                    failures += 1;
                    let may_retry = retry == Retry::Safe || err.is_connect();
                    if failures >= TRIES || !may_retry {
                        let what = if err.is_timeout() {
                            "did not answer in time"
                        } else {
                            "cannot be reached"
                        };
                        return Err(self.fail(format!(
                            "the Cryptera service at {} {what}: {text}",
                            self.base
                        )));
                    }
                    Duration::from_millis(BACKOFF_MS[failures as usize - 1])
                }
            };
            std::thread::sleep(pause);
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, token: &str, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self.send(
            &|| self.http.get(&url).bearer_auth(token),
            Retry::Safe,
            Duration::from_secs(5),
        )?;
        answer(response)
    }

    /// Whether the service answers at all (`/healthz`), for `cryptera-pkcs11 doctor`.
    pub fn health(&self) -> Result<()> {
        let url = format!("{}/healthz", self.base);
        let response = self.send(&|| self.http.get(&url), Retry::Safe, Duration::ZERO)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Device(format!(
                "/healthz answered {}",
                response.status()
            )))
        }
    }

    /// Checks the access token: its organisation and environment.
    pub fn whoami(&self, token: &str) -> Result<cryptera_proto::auth::Whoami> {
        self.get(token, "/v1/whoami").map_err(|e| match e {
            Error::UserNotLoggedIn => Error::PinIncorrect,
            other => other,
        })
    }

    /// Creates a key in the service, in the access token's environment.
    pub fn create_key(
        &self,
        token: &str,
        request: &cryptera_proto::keys::CreateKeyRequest,
    ) -> Result<KeyInfo> {
        let url = format!("{}/v1/keys", self.base);
        let response = self.send(
            &|| self.http.post(&url).bearer_auth(token).json(request),
            Retry::ConnectOnly,
            Duration::from_secs(5),
        )?;
        answer(response)
    }

    /// Replaces a key's certificate chain (leaf first).
    pub fn set_certificates(
        &self,
        token: &str,
        key_id: &str,
        chain: Vec<Vec<u8>>,
    ) -> Result<KeyInfo> {
        let url = format!("{}/v1/keys/{key_id}/certificates", self.base);
        let request = SetCertificatesRequest {
            certificates: chain.into_iter().map(Base64Bytes::from).collect(),
        };
        // Setting the same chain twice is harmless: safe to repeat.
        let response = self.send(
            &|| self.http.put(&url).bearer_auth(token).json(&request),
            Retry::Safe,
            Duration::from_secs(5),
        )?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            // The service says what is wrong with the certificate (e.g. a development certificate
            // must name its environment): pass that on, as no CK_RV can.
            if let Ok(body) = response.json::<ErrorBody>() {
                notice(
                    self.quiet,
                    &format!("certificate refused by the service: {}", body.error.message),
                );
            }
            return Err(Error::AttributeValueInvalid);
        }
        answer(response)
    }

    /// The key list, unless it is unchanged since `etag` (`None` then); with its new `ETag`.
    pub fn keys_if_changed(
        &self,
        token: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<KeyInfo>, Option<String>)>> {
        let url = format!("{}/v1/keys", self.base);
        let build = || {
            let request = self.http.get(&url).bearer_auth(token);
            match etag {
                Some(etag) => request.header(reqwest::header::IF_NONE_MATCH, etag),
                None => request,
            }
        };
        let response = self.send(&build, Retry::Safe, Duration::from_secs(5))?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failure(response));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let list: KeyList = response
            .json()
            .map_err(|e| Error::Device(format!("Cryptera service: bad answer: {e}")))?;
        Ok(Some((list.keys, etag)))
    }

    /// Signs with key `key_id`, waiting for approvals if the service asks for them. One idempotency
    /// key per call, reused by every retry, so a retry never signs twice.
    pub fn sign(
        &self,
        token: &str,
        key_id: &str,
        mechanism: Mechanism,
        payload: Payload,
    ) -> Result<(Vec<u8>, String)> {
        let mut nonce = [0u8; 16];
        crate::crypto::random(&mut nonce)?;
        let (digest, data) = match payload {
            Payload::Digest(d) => (Some(Base64Bytes::from(d)), None),
            Payload::Data(d) => (None, Some(Base64Bytes::from(d))),
        };
        let request = SignRequest {
            mechanism,
            digest,
            data,
            artifact: super::context::artifact(),
            idempotency_key: format!("p11-{}", crate::audit::chain::hex(&nonce)),
        };
        let url = format!("{}/v1/keys/{key_id}/sign", self.base);
        let response = self.send(
            &|| self.http.post(&url).bearer_auth(token).json(&request),
            Retry::Safe,
            self.approval_wait,
        )?;
        match response.status().as_u16() {
            200 => {
                let answer: SignResponse =
                    response.json().map_err(|e| Error::Device(e.to_string()))?;
                Ok((answer.signature.as_slice().to_vec(), answer.request_id))
            }
            202 => {
                let pause = retry_after(&response);
                let info: SigningRequestInfo =
                    response.json().map_err(|e| Error::Device(e.to_string()))?;
                self.wait_for_approval(token, info, pause)
            }
            _ => Err(failure(response)),
        }
    }

    /// Polls a signing request until it is decided or `approval_wait` has passed, at the pace the
    /// service asks for (`Retry-After`, between 1 and 30 s). The service being unreachable for a
    /// while (a restart) does not end the wait; a decision does.
    fn wait_for_approval(
        &self,
        token: &str,
        mut info: SigningRequestInfo,
        mut pause: Option<Duration>,
    ) -> Result<(Vec<u8>, String)> {
        if !self.quiet {
            eprintln!(
                "cryptera-pkcs11: signing request {} waits for approval",
                info.id
            );
        }
        let deadline = Instant::now() + self.approval_wait;
        let url = format!("{}/v1/signing-requests/{}", self.base, info.id);
        loop {
            match info.status {
                SigningRequestStatus::Completed => {
                    let signature =
                        info.signature
                            .map(|s| s.as_slice().to_vec())
                            .ok_or_else(|| {
                                Error::Device("completed request without a signature".into())
                            })?;
                    return Ok((signature, info.id));
                }
                SigningRequestStatus::Denied | SigningRequestStatus::Expired => {
                    return Err(Error::FunctionRejected)
                }
                SigningRequestStatus::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                notice(
                    self.quiet,
                    &format!("signing request {} was not approved in time", info.id),
                );
                return Err(Error::FunctionRejected);
            }
            let wanted = pause
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_secs(1), Duration::from_secs(MAX_POLL_S));
            std::thread::sleep(wanted.min(deadline - now));
            match self.send(
                &|| self.http.get(&url).bearer_auth(token),
                Retry::Safe,
                deadline.saturating_duration_since(Instant::now()),
            ) {
                Ok(response) if response.status().is_success() => {
                    pause = retry_after(&response);
                    info = response
                        .json()
                        .map_err(|e| Error::Device(format!("bad answer: {e}")))?;
                }
                Ok(response) => return Err(failure(response)),
                // Unreachable for now: look again at the next turn, until the deadline.
                Err(Error::Device(_)) => pause = Some(Duration::from_secs(2)),
                Err(other) => return Err(other),
            }
        }
    }
}
