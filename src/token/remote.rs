//! The remote side of a token: logging in with a service access token, the service's keys as
//! objects with stable handles, key generation in the service, and certificates sent to it.

use super::{new_handle, Entry, Inner, Role, Token};
use crate::attr::Template;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::remote::{Remote, RemoteKey};
use cryptoki_sys::*;
use std::sync::Arc;

impl Token {
    /// Logs in to a remote token: the PIN is the service access token. Loads the service's keys.
    pub(crate) fn login_remote(
        &self,
        remote: &Arc<Remote>,
        inner: &mut Inner,
        pin: &[u8],
    ) -> Result<()> {
        let credential = remote.credential(pin)?;
        let who = remote.client.whoami(&credential)?;
        let (keys, etag) = remote
            .client
            .keys_if_changed(&credential, None)?
            .unwrap_or_default();
        install_remote_keys(inner, remote, &keys)?;
        inner.remote_etag = etag;
        inner.remote_checked = Some(std::time::Instant::now());
        inner.remote_label = Some(format!("{}/{}", who.organisation, who.environment));
        remote.set_access_token(Some(credential));
        inner.role = Some(Role::User);
        Ok(())
    }

    /// `C_GenerateKeyPair` on a remote token: the key is made in the service (in the access token's
    /// environment) and appears as objects here. Returns (public, private) handles.
    pub fn generate_remote(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        public: &Template,
        private: &Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let remote = self.remote.as_ref().ok_or(Error::FunctionNotSupported)?;
        let algorithm = crate::remote::algorithm_for(mechanism, public, private)?;
        let label = private
            .get(CKA_LABEL)
            .or(public.get(CKA_LABEL))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .unwrap_or_else(|| {
                format!(
                    "key-{}",
                    crate::audit::chain::hex(&new_handle().to_le_bytes()[..4])
                )
            });
        if self.role()? != Some(Role::User) {
            return Err(Error::UserNotLoggedIn);
        }
        // The request runs without the token lock: other sessions go on meanwhile.
        let token = remote.access_token()?;
        let request = cryptera_proto::keys::CreateKeyRequest {
            label,
            algorithm,
            policy: Default::default(),
        };
        let info = remote.client.create_key(&token, &request)?;
        let mut inner = self.lock()?;
        let handles = install_remote_key(&mut inner, remote, &info)?;
        inner.objects_changed();
        let private_handle = handles[0];
        let public_handle = handles.get(1).copied().unwrap_or(CK_INVALID_HANDLE);
        Ok((public_handle, private_handle))
    }
}

impl Token {
    /// `C_CreateObject` of a certificate on a remote token: it is attached to the service key it
    /// belongs to — as the leaf when it certifies the key (the CA certificates already there stay),
    /// or as the next CA certificate when it issued the last certificate of a key's chain. Returns
    /// the new certificate object's handle.
    pub(super) fn add_remote_certificate(
        &self,
        remote: &Arc<Remote>,
        object: &Object,
    ) -> Result<CK_OBJECT_HANDLE> {
        use der::{Decode, Encode};
        let der = object
            .attrs
            .get(&CKA_VALUE)
            .ok_or(Error::TemplateIncomplete)?
            .clone();
        let certificate =
            x509_cert::Certificate::from_der(&der).map_err(|_| Error::AttributeValueInvalid)?;
        let spki = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|_| Error::AttributeValueInvalid)?;
        let subject = certificate.tbs_certificate.subject.clone();
        let (key_id, chain, index) = {
            let inner = self.lock()?;
            if inner.role != Some(Role::User) {
                return Err(Error::UserNotLoggedIn);
            }
            let issued_by_this = |last: &[u8]| {
                x509_cert::Certificate::from_der(last)
                    .is_ok_and(|c| c.tbs_certificate.issuer == subject)
            };
            let mut placed = None;
            for info in inner.remote_keys.values() {
                let current: Vec<Vec<u8>> = info
                    .certificates
                    .iter()
                    .map(|c| c.as_slice().to_vec())
                    .collect();
                if info.public_key.as_slice() == spki.as_slice() {
                    let mut chain = vec![der.clone()];
                    chain.extend(current.into_iter().skip(1));
                    placed = Some((info.id.clone(), chain, 0));
                    break;
                }
                if current.last().is_some_and(|last| issued_by_this(last))
                    && !current.contains(&der)
                {
                    let index = current.len();
                    let mut chain = current;
                    chain.push(der.clone());
                    placed = Some((info.id.clone(), chain, index));
                }
            }
            // A certificate of none of the service's keys has no place on this token.
            placed.ok_or(Error::TemplateInconsistent)?
        };
        // The request runs without the token lock.
        let token = remote.access_token()?;
        let info = remote
            .client
            .set_certificates(&token, &key_id, chain)
            .map_err(|e| match e {
                Error::KeyFunctionNotPermitted => Error::ActionProhibited,
                other => other,
            })?;
        let mut inner = self.lock()?;
        let handles = install_remote_key(&mut inner, remote, &info)?;
        inner.objects_changed();
        handles
            .get(2 + index)
            .copied()
            .ok_or_else(|| Error::Device("the service did not keep the certificate".into()))
    }
}

/// Puts one service key's objects in the cache, reusing their handles; returns the handles, the
/// private key's first and its public key's second.
fn install_remote_key(
    inner: &mut Inner,
    remote: &Arc<Remote>,
    info: &cryptera_proto::keys::KeyInfo,
) -> Result<Vec<CK_OBJECT_HANDLE>> {
    let (private, others) = crate::remote::objects(info)?;
    let mut handles = Vec::new();
    for (index, object) in std::iter::once(private).chain(others).enumerate() {
        let handle = *inner
            .remote_handles
            .entry((info.id.clone(), index))
            .or_insert_with(new_handle);
        let mut entry = Entry::new(handle, None, None, object);
        if index == 0 {
            entry.remote = Some(Arc::new(RemoteKey {
                id: info.id.clone(),
                remote: remote.clone(),
            }));
        }
        inner.objects.insert(handle, Arc::new(entry));
        handles.push(handle);
    }
    inner.remote_keys.insert(info.id.clone(), info.clone());
    Ok(handles)
}

/// Replaces a remote token's objects with the service's current key list.
fn install_remote_keys(
    inner: &mut Inner,
    remote: &Arc<Remote>,
    keys: &[cryptera_proto::keys::KeyInfo],
) -> Result<()> {
    let mut keep = std::collections::HashSet::new();
    for info in keys {
        keep.extend(install_remote_key(inner, remote, info)?);
    }
    inner
        .objects
        .retain(|handle, e| e.session.is_some() || keep.contains(handle));
    inner
        .remote_keys
        .retain(|id, _| keys.iter().any(|info| &info.id == id));
    inner.objects_changed();
    Ok(())
}

/// Re-reads a remote token's key list when a second has passed since the last look; a `304` (nothing
/// changed) costs one small request. Logged in, with the session's access token; before login, with
/// the configured one (`token_env`, `token_file`), so public keys and certificates can be found
/// first, as clients expect. A service that cannot be reached leaves the cache as is.
pub(super) fn refresh_remote(remote: &Arc<Remote>, inner: &mut Inner) {
    if inner
        .remote_checked
        .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
    {
        return;
    }
    let token = if inner.role == Some(Role::User) {
        remote.access_token().ok()
    } else if remote.has_configured_credential() {
        remote.configured_credential().ok().flatten()
    } else {
        None
    };
    let Some(token) = token else {
        return;
    };
    inner.remote_checked = Some(std::time::Instant::now());
    if let Ok(Some((keys, etag))) = remote
        .client
        .keys_if_changed(&token, inner.remote_etag.as_deref())
    {
        if install_remote_keys(inner, remote, &keys).is_ok() {
            inner.remote_etag = etag;
        }
    }
}
