//! EST (RFC 7030) under `/.well-known/est/`: `cacerts`, `simpleenroll` and `simplereenroll`, answering
//! base64 `application/pkcs7-mime` certs-only structures. Clients authenticate with an access token
//! (`Authorization: Bearer`); the device id is the CSR's subject CN, checked against the token's scope.
//!
//! `simplereenroll` without an `Authorization` header may instead be authenticated by the device's
//! current certificate, presented as the TLS client certificate (RFC 7030 §3.3.2): see
//! [`crate::ca::client_auth`] for what makes it valid. The CSR's CN must be that certificate's device;
//! the renewal keeps its profile, organisation and environment.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use cryptera_proto::auth::Operation;
use cryptera_proto::devices::{AuthMethod, CertificateProfile, EnrollResponse};

use super::devices::{can_enrol, enrol_as, est_body};
use crate::audit::AuditEvent;
use crate::auth::{Caller, ClientNet};
use crate::ca::client_auth::{self, ClientChain};
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
    let response = enrol_as(
        &state,
        caller,
        device_id,
        csr,
        CertificateProfile::DEVICE,
        renew,
    )
    .await?;
    certs_only_response(response)
}

fn certs_only_response(response: EnrollResponse) -> Result<Response> {
    let der = pkcs7::certs_only(&[response.certificate.certificate.0])?;
    Ok(pkcs7_response(
        &der,
        "application/pkcs7-mime; smime-type=certs-only",
    ))
}

/// Re-enrolment authenticated by the device's current certificate (no access token).
async fn reenrol_by_certificate(
    state: AppState,
    chain: ClientChain,
    client_net: String,
    body: &Bytes,
) -> Result<Response> {
    let leaf = chain.leaf().ok_or(ServiceError::Unauthenticated)?.to_vec();
    let csr = est_body(body)?;
    let response = state
        .blocking(move |state| {
            let device = client_auth::authenticate(state, &leaf)?;
            let named = csr::check(&csr)?.common_name.ok_or_else(|| {
                ServiceError::InvalidRequest("the CSR's subject needs a CN: the device id".into())
            })?;
            if named != device.device_id {
                return Err(ServiceError::DeviceMismatch(format!(
                    "the client certificate is device {:?}'s; the CSR names {named:?}",
                    device.device_id
                )));
            }
            let audit = AuditEvent::new(
                &device.org.id,
                &format!("device:{}", device.device_id),
                "device.certificate.issue",
                &device.device_id,
            )
            .detail("client_net", client_net)
            .detail("client_certificate", device.serial.clone());
            issue::enrol(
                state,
                Enrolment {
                    org: &device.org,
                    environment: device.environment,
                    device_id: &device.device_id,
                    csr: &csr,
                    profile: device.profile.clone(),
                    renew: true,
                    auth: AuthMethod::ClientCertificate,
                    audit,
                },
            )
        })
        .await?;
    certs_only_response(response)
}

pub async fn simpleenroll(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response> {
    enrol(state, caller, &body, false).await
}

/// With an `Authorization` header, the access token decides (as `simpleenroll`); without one, the TLS
/// client certificate, if the connection presented one.
pub async fn simplereenroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    chain: Option<Extension<ClientChain>>,
    ClientNet(client_net): ClientNet,
    caller: std::result::Result<Caller, ServiceError>,
    body: Bytes,
) -> Result<Response> {
    match chain {
        Some(Extension(chain)) if !headers.contains_key(header::AUTHORIZATION) => {
            reenrol_by_certificate(state, chain, client_net, &body).await
        }
        _ => enrol(state, caller?, &body, true).await,
    }
}
