//! Signed checkpoints of an organisation's audit chain head, with the service's Ed25519 key.
//!
//! The checkpoint key is created at `init` and stored sealed under the KEK; a customer who keeps
//! checkpoints can later prove that history up to that head was not rewritten or truncated.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use cryptera_proto::audit::AuditCheckpoint;
use cryptera_proto::Base64Bytes;

use crate::audit::GENESIS_HASH;
use crate::error::{Result, ServiceError};
use crate::kek::Aad;
use crate::server::{AppState, CHECKPOINT_KEY_NAME};

pub fn sign_head(state: &AppState, org_id: &str, at: i64) -> Result<AuditCheckpoint> {
    let (seq, head_hash) = state
        .store()
        .audit_head(org_id)?
        .unwrap_or((0, GENESIS_HASH.to_owned()));
    let sealed = state
        .store()
        .service_secret(CHECKPOINT_KEY_NAME)?
        .ok_or(ServiceError::Unavailable)?;
    let pkcs8 = state.kek().open(
        &Aad::new("cryptera-service-secret-v1", &[CHECKPOINT_KEY_NAME]),
        &sealed,
    )?;
    let pair =
        Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| ServiceError::Crypto("checkpoint key"))?;
    let message = AuditCheckpoint::signed_message(org_id, seq, &head_hash, at);
    let signature = pair.sign(&message);
    let public_key: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|_| ServiceError::Crypto("checkpoint public key"))?;
    Ok(AuditCheckpoint {
        organisation_id: org_id.to_owned(),
        seq,
        head_hash,
        at,
        algorithm: "ed25519".to_owned(),
        public_key: Base64Bytes(public_key.as_ref().to_vec()),
        signature: Base64Bytes(signature.as_ref().to_vec()),
    })
}
