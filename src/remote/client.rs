//! The HTTP client of a remote token: one pooled, keep-alive connection set per token, fixed timeouts,
//! and the service's error codes mapped to PKCS#11 errors. reqwest's blocking client runs its own
//! runtime thread, so no async runtime ever runs on the host program's threads.

use crate::config::RemoteConfig;
use crate::error::{Error, Result};
use cryptera_proto::error::{ErrorBody, ErrorCode};
use cryptera_proto::keys::{KeyInfo, KeyList, Mechanism};
use cryptera_proto::sign::{SignRequest, SignResponse, SigningRequestInfo, SigningRequestStatus};
use cryptera_proto::Base64Bytes;
use std::time::{Duration, Instant};

pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
    approval_wait: Duration,
    quiet: bool,
}

/// What a signing request sends: a digest, or (Ed25519) the message.
pub enum Payload {
    Digest(Vec<u8>),
    Data(Vec<u8>),
}

fn unreachable<E: std::fmt::Display>(err: E) -> Error {
    Error::Device(format!("Cryptera service unreachable: {err}"))
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

impl Client {
    pub fn new(config: &RemoteConfig) -> Result<Client> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5000)))
            .pool_idle_timeout(Duration::from_secs(60));
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
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, token: &str, path: &str) -> Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .map_err(unreachable)?;
        answer(response)
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
        let response = self
            .http
            .post(format!("{}/v1/keys", self.base))
            .bearer_auth(token)
            .json(request)
            .send()
            .map_err(unreachable)?;
        answer(response)
    }

    /// The key list, unless it is unchanged since `etag` (`None` then); with its new `ETag`.
    pub fn keys_if_changed(
        &self,
        token: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<KeyInfo>, Option<String>)>> {
        let mut request = self
            .http
            .get(format!("{}/v1/keys", self.base))
            .bearer_auth(token);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().map_err(unreachable)?;
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
            artifact: Default::default(),
            idempotency_key: format!("p11-{}", crate::audit::chain::hex(&nonce)),
        };
        let url = format!("{}/v1/keys/{key_id}/sign", self.base);
        let mut attempt = 0;
        let response = loop {
            match self
                .http
                .post(&url)
                .bearer_auth(token)
                .json(&request)
                .send()
            {
                Ok(response) if response.status().is_server_error() && attempt < 2 => {}
                Ok(response) => break response,
                Err(err) if attempt >= 2 => return Err(unreachable(err)),
                Err(_) => {}
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(200 * 4u64.pow(attempt)));
        };
        match response.status().as_u16() {
            200 => {
                let answer: SignResponse =
                    response.json().map_err(|e| Error::Device(e.to_string()))?;
                Ok((answer.signature.as_slice().to_vec(), answer.request_id))
            }
            202 => {
                let info: SigningRequestInfo =
                    response.json().map_err(|e| Error::Device(e.to_string()))?;
                self.wait_for_approval(token, info)
            }
            _ => Err(failure(response)),
        }
    }

    fn wait_for_approval(
        &self,
        token: &str,
        mut info: SigningRequestInfo,
    ) -> Result<(Vec<u8>, String)> {
        if !self.quiet {
            eprintln!(
                "cryptera-pkcs11: signing request {} waits for approval",
                info.id
            );
        }
        let deadline = Instant::now() + self.approval_wait;
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
                SigningRequestStatus::Pending if Instant::now() >= deadline => {
                    return Err(Error::FunctionRejected)
                }
                SigningRequestStatus::Pending => {}
            }
            std::thread::sleep(Duration::from_secs(1));
            info = self.get(token, &format!("/v1/signing-requests/{}", info.id))?;
        }
    }
}
