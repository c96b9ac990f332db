//! EST (RFC 7030) under `/.well-known/est/`: `cacerts`, `simpleenroll` and `simplereenroll`, answering
//! base64 `application/pkcs7-mime` certs-only structures. Clients authenticate with an access token
//! (`Authorization: Bearer`); the device id is the CSR's subject CN, checked against the token's scope.
//! Re-enrolment authenticated by the device's current certificate (TLS client auth) is not done yet.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cryptera_proto::auth::Operation;
use cryptera_proto::devices::{AuthMethod, CertificateProfile};

use super::devices::{can_enrol, est_body};
use crate::auth::Caller;
use crate::ca::issue::{self, device_store, Enrolment};
use crate::ca::{csr, pkcs7};
use crate::error::{Result, ServiceError};
use crate::server::AppState;

fn pkcs7_response(der: &[u8], content_type: &'static str) -> Response {
    // MIME base64 (RFC 2045): lines of 64 characters, which `openssl base64 -d` also expects.
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                HeaderName::from_static("content-transfer-encoding"),
                HeaderValue::from_static("base64"),
            ),
        ],
        text,
    )
        .into_response()
}

/// `GET /.well-known/est/cacerts`: the issuing CA and the root of the token's environment.
pub async fn cacerts(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    caller.require(Operation::Read)?;
    let der = state
        .blocking(move |state| {
            let (root, issuing) = issue::environment_cas(
                device_store(state)?,
                &caller.org.id,
                caller.credential.environment,
            )?;
            pkcs7::certs_only(&[issuing.certificate, root.certificate])
        })
        .await?;
    Ok(pkcs7_response(&der, "application/pkcs7-mime"))
}

async fn enrol(state: AppState, caller: Caller, body: &Bytes, renew: bool) -> Result<Response> {
    caller.require(Operation::Sign)?;
    let csr = est_body(body)?;
    let device_id = csr::check(&csr)?.common_name.ok_or_else(|| {
        ServiceError::InvalidRequest("the CSR's subject needs a CN: the device id".into())
    })?;
    if !can_enrol(&caller, &device_id) {
        return Err(ServiceError::NotFound("device in this token's scope"));
    }
    let response = state
        .blocking(move |state| {
            issue::enrol(
                state,
                Enrolment {
                    org: &caller.org,
                    environment: caller.credential.environment,
                    device_id: &device_id,
                    csr: &csr,
                    profile: CertificateProfile::DEVICE,
                    renew,
                    auth: AuthMethod::Bearer,
                    audit: caller.audit("device.certificate.issue", &device_id),
                },
            )
        })
        .await?;
    let der = pkcs7::certs_only(&[response.certificate.certificate.0])?;
    Ok(pkcs7_response(
        &der,
        "application/pkcs7-mime; smime-type=certs-only",
    ))
}

pub async fn simpleenroll(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response> {
    enrol(state, caller, &body, false).await
}

pub async fn simplereenroll(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response> {
    enrol(state, caller, &body, true).await
}
