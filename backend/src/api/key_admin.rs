//! Key administration: policy, certificate chains, locks, scheduled deletion and restore.
//!
//! Deletion is never immediate: it schedules destruction after the retention period and stays
//! restorable until then. A lock blocks deletion and certificate replacement until an admin removes it
//! with a TOTP-verified login (access tokens can lock, never unlock).

use axum::extract::{Path, State};
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::keys::{KeyInfo, KeyPolicy, KeyState, SetCertificatesRequest};
use cryptera_proto::Environment;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use super::keys::{check_policy, key_info, visible_key};
use super::ApiJson;
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::signing::sha256;
use crate::store::KeyRecord;
use crate::util::{hex, now};

/// Most certificates in one chain, and the largest one accepted.
const MAX_CHAIN_LEN: usize = 10;
const MAX_CERTIFICATE_LEN: usize = 16 * 1024;

/// Runs `change` on a key the caller can see, in one transaction with its audit record.
async fn change_key<F>(
    state: AppState,
    caller: Caller,
    id: String,
    action: &'static str,
    mut change: F,
) -> Result<Json<KeyInfo>>
where
    F: FnMut(&Caller, &mut KeyRecord) -> Result<AuditEvent> + Send + 'static,
{
    caller.require(Operation::Admin)?;
    let key = state
        .blocking(move |state| {
            visible_key(state, &caller, &id)?;
            let mut update = |key: &mut KeyRecord| {
                let event = change(&caller, key)?;
                Ok(event.detail("action", action))
            };
            state.store().update_key(&caller.org.id, &id, &mut update)
        })
        .await?;
    Ok(Json(key_info(&key)))
}

pub async fn lock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyInfo>> {
    change_key(state, caller, id, "lock", |caller, key| {
        key.locked = true;
        Ok(caller.audit("key.lock", &key.id))
    })
    .await
}

pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyInfo>> {
    // Only a person with a second factor lifts a lock; a leaked admin token must not.
    if !caller.is_user() {
        return Err(ServiceError::MfaRequired);
    }
    change_key(state, caller, id, "unlock", |caller, key| {
        key.locked = false;
        Ok(caller.audit("key.unlock", &key.id))
    })
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyInfo>> {
    let retention = state.config().deletion_retention_secs;
    change_key(state, caller, id, "delete", move |caller, key| {
        if key.locked {
            return Err(ServiceError::KeyLocked);
        }
        if key.state == KeyState::Active {
            key.state = KeyState::PendingDeletion;
            key.purge_at = Some(now() + retention);
        }
        let purge_at = key.purge_at.unwrap_or_default().to_string();
        Ok(caller
            .audit("key.delete", &key.id)
            .detail("purge_at", purge_at))
    })
    .await
}

pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyInfo>> {
    change_key(state, caller, id, "restore", |caller, key| {
        if key.state != KeyState::PendingDeletion {
            return Err(ServiceError::InvalidRequest(
                "the key is not scheduled for deletion".into(),
            ));
        }
        key.state = KeyState::Active;
        key.purge_at = None;
        Ok(caller.audit("key.restore", &key.id))
    })
    .await
}

/// `PUT /v1/keys/{id}/policy`: replaces the key's policy; the audit record keeps old and new.
pub async fn set_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(policy): ApiJson<KeyPolicy>,
) -> Result<Json<KeyInfo>> {
    change_key(state, caller, id, "set_policy", move |caller, key| {
        check_policy(key.algorithm, &policy)?;
        let old = serde_json::to_string(&key.policy).unwrap_or_default();
        key.policy.clone_from(&policy);
        let new = serde_json::to_string(&key.policy).unwrap_or_default();
        Ok(caller
            .audit("key.policy", &key.id)
            .detail("old", old)
            .detail("new", new))
    })
    .await
}

pub async fn set_certificates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SetCertificatesRequest>,
) -> Result<Json<KeyInfo>> {
    if request.certificates.len() > MAX_CHAIN_LEN {
        return Err(ServiceError::InvalidRequest(format!(
            "at most {MAX_CHAIN_LEN} certificates"
        )));
    }
    for certificate in &request.certificates {
        let der = certificate.as_slice();
        if der.len() > MAX_CERTIFICATE_LEN || Certificate::from_der(der).is_err() {
            return Err(ServiceError::InvalidRequest(
                "certificates must be DER X.509, at most 16 KiB each".into(),
            ));
        }
    }
    let chain: Vec<Vec<u8>> = request.certificates.into_iter().map(|c| c.0).collect();
    change_key(state, caller, id, "set_certificates", move |caller, key| {
        if key.locked {
            return Err(ServiceError::KeyLocked);
        }
        if let Some(leaf) = chain.first() {
            check_leaf(key, leaf)?;
        }
        key.certificates.clone_from(&chain);
        let fingerprints: Vec<String> = chain.iter().map(|c| hex(&sha256(c))).collect();
        Ok(caller
            .audit("key.certificates", &key.id)
            .detail("sha256", fingerprints.join(",")))
    })
    .await
}

/// The leaf must certify this key, and a certificate for a development or trial key must say so in its
/// subject or its issuer's name, so nobody mistakes it for a production certificate (a device
/// certificate from the environment's own CA, `CN=<device>, O=<org>`, names it in its issuer:
/// "acme Development Issuing CA").
fn check_leaf(key: &KeyRecord, leaf: &[u8]) -> Result<()> {
    let invalid = |message: &str| ServiceError::InvalidRequest(message.to_owned());
    let leaf = Certificate::from_der(leaf).map_err(|_| invalid("the leaf is not DER X.509"))?;
    let tbs = &leaf.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| invalid("the leaf's public key cannot be encoded"))?;
    if spki != key.public_key {
        return Err(invalid(
            "the leaf certificate does not certify this key's public key",
        ));
    }
    if key.environment != Environment::Production {
        let names = |name: &x509_cert::name::Name| {
            name.to_string()
                .to_lowercase()
                .contains(key.environment.as_str())
        };
        if !names(&tbs.subject) && !names(&tbs.issuer) {
            return Err(ServiceError::InvalidRequest(format!(
                "a certificate for a {} key must name the environment in its subject or issuer, e.g. O=Acme ({})",
                key.environment,
                key.environment
            )));
        }
    }
    Ok(())
}
