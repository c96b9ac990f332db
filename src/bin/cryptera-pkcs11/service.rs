//! The service side of `cryptera-pkcs11 enroll`: `POST /v1/devices/{id}/enroll` over reqwest with
//! rustls, the access token as a bearer credential, and each failure in words with its exit code.

use crate::enroll::Failure;
use cryptera_pkcs11::remote::client::{causes, is_tls_failure, secure_enough};
use cryptera_proto::devices::{CertificateProfile, EnrollRequest, EnrollResponse};
use cryptera_proto::error::ErrorBody;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

pub struct Service {
    base: reqwest::Url,
    http: reqwest::blocking::Client,
    access_token: Zeroizing<String>,
}

impl Service {
    /// Plain HTTP only to this machine: the access token travels in the request.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        access_token: Zeroizing<String>,
    ) -> Result<Service, Failure> {
        let base = reqwest::Url::parse(url)
            .map_err(|e| Failure::usage(format!("--service {url:?}: {e}")))?;
        if !secure_enough(&base) {
            return Err(Failure::usage(format!(
                "--service {url:?}: use https (plain http only to this machine)"
            )));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("--cacert {}: {e}", path.display())))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Failure::usage(format!("--cacert {}: {e}", path.display())))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| Failure::general(format!("HTTP client: {e}")))?;
        Ok(Service {
            base,
            http,
            access_token,
        })
    }

    pub fn enroll(
        &self,
        device_id: &str,
        csr_der: Vec<u8>,
        profile: &str,
        renew: bool,
    ) -> Result<EnrollResponse, Failure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Failure::usage(format!("--service {}: not a base URL", self.base)))?
            .pop_if_empty()
            .extend(["v1", "devices", device_id, "enroll"]);
        let request = EnrollRequest {
            csr_pem: None,
            csr_der: Some(csr_der.into()),
            profile: CertificateProfile::parse(profile).unwrap_or_default(),
            renew,
        };
        let response = self
            .http
            .post(url)
            .bearer_auth(self.access_token.as_str())
            .json(&request)
            .send()
            .map_err(|err| {
                let text = causes(&err);
                if is_tls_failure(&text) {
                    Failure::tls(format!("TLS failure talking to {}: {text}", self.base))
                } else {
                    Failure::network(format!("cannot reach the service at {}: {text}", self.base))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let why = match response.json::<ErrorBody>() {
                Ok(body) => {
                    let code = serde_json::to_value(body.error.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{code}: {}", body.error.message)
                }
                Err(_) => "no error message".into(),
            };
            let message = format!(
                "the service refused the enrolment (HTTP {}): {why}",
                status.as_u16()
            );
            return Err(if status.is_server_error() {
                Failure::network(message)
            } else {
                Failure::refused(message)
            });
        }
        response.json::<EnrollResponse>().map_err(|e| {
            Failure::network(format!(
                "the service's answer does not parse: {}",
                causes(&e)
            ))
        })
    }
}
