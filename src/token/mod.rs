//! A token as this process sees it: the store (if initialised), who is logged in, and the object cache
//! with its handles. One short-held mutex guards it; cryptography never runs under it.

pub mod pin;
mod remote;

use crate::attr::{AttrMap, Template};
use crate::config::Config;
use crate::crypto::asym::PrivateKey;
use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use crate::local::codec;
use crate::local::crypt::{self, KdfParams, TokenKey};
use crate::local::store::{Row, Store};
use crate::object::{keys, rules, Object};
use crate::remote::{Remote, RemoteKey};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// A new object handle: never reused within the process.
pub fn new_handle() -> CK_ULONG {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) as CK_ULONG
}

/// Who is logged in to the token in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    So,
}

/// An object's `CKA_ID` and `CKA_LABEL`, shared with the audit events that name it.
pub type AuditNames = (Option<Arc<[u8]>>, Option<Arc<[u8]>>);

/// One object known to this process, with its engine key parsed on first use.
pub struct Entry {
    pub handle: CK_OBJECT_HANDLE,
    /// Row id for token objects; `None` for session objects.
    pub uid: Option<i64>,
    /// The session that owns a session object.
    pub session: Option<CK_SESSION_HANDLE>,
    pub object: Object,
    private_key: OnceLock<std::result::Result<Arc<PrivateKey>, Error>>,
    /// `CKA_ID` and `CKA_LABEL` as shared buffers, for audit records without a copy per operation.
    pub audit_names: AuditNames,
    /// The service key behind a remote private key object.
    pub remote: Option<Arc<RemoteKey>>,
}

impl Entry {
    fn new(
        handle: CK_OBJECT_HANDLE,
        uid: Option<i64>,
        session: Option<CK_SESSION_HANDLE>,
        object: Object,
    ) -> Entry {
        let audit_names = (
            object.attrs.get(&CKA_ID).map(|v| Arc::from(v.as_slice())),
            object
                .attrs
                .get(&CKA_LABEL)
                .map(|v| Arc::from(v.as_slice())),
        );
        Entry {
            handle,
            uid,
            session,
            object,
            private_key: OnceLock::new(),
            audit_names,
            remote: None,
        }
    }

    /// The parsed private key, made once per process and object version.
    pub fn private_key(&self) -> Result<Arc<PrivateKey>> {
        self.private_key
            .get_or_init(|| keys::private_key(&self.object).map(Arc::new))
            .clone()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Option<Store>,
    pub(crate) role: Option<Role>,
    pub(crate) key: Option<TokenKey>,
    seen_version: Option<i64>,
    pub(crate) objects: HashMap<CK_OBJECT_HANDLE, Arc<Entry>>,
    by_uid: HashMap<i64, CK_OBJECT_HANDLE>,
    /// A remote token's label once logged in: `<organisation>/<environment>`.
    pub(crate) remote_label: Option<String>,
    /// Handles of a remote token's objects by (service key id, object index): stable across refreshes.
    pub(crate) remote_handles: HashMap<(String, usize), CK_OBJECT_HANDLE>,
    /// The key list's `ETag` and when it was last checked.
    pub(crate) remote_etag: Option<String>,
    pub(crate) remote_checked: Option<std::time::Instant>,
    /// The service's keys as last listed, by key id.
    pub(crate) remote_keys: HashMap<String, cryptera_proto::keys::KeyInfo>,
    /// Handles by (attribute, value) for the selective attributes searches use most; rebuilt on the
    /// first search after any change (`None` until then).
    index: Option<SearchIndex>,
}

type SearchIndex = HashMap<(CK_ATTRIBUTE_TYPE, Vec<u8>), Vec<CK_OBJECT_HANDLE>>;

/// Attributes the search index covers.
const INDEXED: [CK_ATTRIBUTE_TYPE; 2] = [CKA_ID, CKA_LABEL];

impl Inner {
    /// Drops the handles of private token objects, so they are never valid again.
    pub(crate) fn forget_private_handles(&mut self) {
        for entry in self.objects.values() {
            if let (Some(uid), true) = (entry.uid, entry.object.is_private()) {
                self.by_uid.remove(&uid);
            }
        }
    }

    /// Marks the object set as changed: the search index is rebuilt on the next search.
    pub(crate) fn objects_changed(&mut self) {
        self.index = None;
    }

    fn index(&mut self) -> &SearchIndex {
        let objects = &self.objects;
        self.index.get_or_insert_with(|| {
            let mut index: HashMap<(CK_ATTRIBUTE_TYPE, Vec<u8>), Vec<CK_OBJECT_HANDLE>> =
                HashMap::new();
            for entry in objects.values() {
                for attr in INDEXED {
                    if let Some(value) = entry.object.attrs.get(&attr) {
                        index
                            .entry((attr, value.clone()))
                            .or_default()
                            .push(entry.handle);
                    }
                }
            }
            index
        })
    }
}

pub struct Token {
    pub slot_id: CK_SLOT_ID,
    pub path: PathBuf,
    pub configured_label: Option<String>,
    pub(crate) config: Arc<Config>,
    /// Set for a remote token: its keys live in the Cryptera service.
    pub remote: Option<Arc<Remote>>,
    inner: Mutex<Inner>,
}

/// The facts `C_GetTokenInfo` reports.
pub struct TokenFacts {
    pub label: [u8; 32],
    pub serial: [u8; 16],
    pub flags: CK_FLAGS,
    pub initialized: bool,
}

impl Token {
    pub fn new(
        slot_id: CK_SLOT_ID,
        path: PathBuf,
        configured_label: Option<String>,
        config: Arc<Config>,
    ) -> Token {
        Token {
            slot_id,
            path,
            configured_label,
            config,
            remote: None,
            inner: Mutex::new(Inner {
                store: None,
                role: None,
                key: None,
                seen_version: None,
                objects: HashMap::new(),
                by_uid: HashMap::new(),
                remote_label: None,
                remote_handles: HashMap::new(),
                remote_etag: None,
                remote_checked: None,
                remote_keys: HashMap::new(),
                index: None,
            }),
        }
    }

    /// A slot whose token is in the Cryptera service.
    pub fn new_remote(slot_id: CK_SLOT_ID, remote: Remote, config: Arc<Config>) -> Token {
        let label = remote.config.label.clone();
        let mut token = Token::new(slot_id, PathBuf::new(), label, config);
        token.remote = Some(Arc::new(remote));
        token
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| Error::General("token lock poisoned".into()))?;
        if inner.store.is_none() && self.path.exists() {
            inner.store = Some(Store::open(&self.path)?);
        }
        Ok(inner)
    }

    pub fn is_initialized(&self) -> Result<bool> {
        Ok(self.remote.is_some() || self.lock()?.store.is_some())
    }

    pub fn kdf_params(&self) -> KdfParams {
        KdfParams {
            memory_kib: self.config.kdf_memory_kib,
            iterations: self.config.kdf_iterations,
            parallelism: 1,
        }
    }

    pub fn role(&self) -> Result<Option<Role>> {
        Ok(self.lock()?.role)
    }

    pub fn facts(&self) -> Result<TokenFacts> {
        let inner = self.lock()?;
        let mut label = [b' '; 32];
        let mut serial = [b' '; 16];
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        if self.remote.is_some() {
            // A configured label never changes (clients find tokens by label, before and after
            // login); without one, `<organisation>/<environment>` once a login has told it.
            let name = self
                .configured_label
                .as_deref()
                .or(inner.remote_label.as_deref())
                .unwrap_or("Cryptera remote");
            copy_padded(&mut label, name.as_bytes());
            copy_padded(&mut serial, format!("remote-{}", self.slot_id).as_bytes());
            flags |= CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
            if self
                .remote
                .as_ref()
                .is_some_and(|r| r.has_configured_credential())
            {
                // The access token comes from the configuration: log in with an empty PIN.
                flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
            }
            return Ok(TokenFacts {
                label,
                serial,
                flags,
                initialized: true,
            });
        }
        let Some(store) = &inner.store else {
            let name = self.configured_label.as_deref().unwrap_or("");
            copy_padded(&mut label, name.as_bytes());
            return Ok(TokenFacts {
                label,
                serial,
                flags,
                initialized: false,
            });
        };
        copy_padded(&mut label, &store.meta("label")?.unwrap_or_default());
        copy_padded(&mut serial, &store.meta("serial")?.unwrap_or_default());
        flags |= CKF_TOKEN_INITIALIZED;
        if store.meta("user_wrap")?.is_some() {
            flags |= CKF_USER_PIN_INITIALIZED;
        }
        let max = self.config.max_pin_attempts;
        flags |= pin::count_flags(store.meta_u32("user_failures")?, max, false);
        flags |= pin::count_flags(store.meta_u32("so_failures")?, max, true);
        Ok(TokenFacts {
            label,
            serial,
            flags,
            initialized: true,
        })
    }

    /// Reloads token objects when another process changed the store (a cheap check otherwise).
    pub(crate) fn refresh(inner: &mut Inner) -> Result<()> {
        let Some(store) = &inner.store else {
            return Ok(());
        };
        let version = store.data_version()?;
        if inner.seen_version == Some(version) {
            return Ok(());
        }
        let rows = store.rows()?;
        let uuid = store.meta("uuid")?.unwrap_or_default();
        let mut fresh: HashMap<CK_OBJECT_HANDLE, Arc<Entry>> = HashMap::new();
        for row in rows {
            if row.private && inner.key.is_none() {
                continue;
            }
            let Some(object) = decode_row(&row, &uuid, inner.key.as_ref())? else {
                continue;
            };
            let handle = *inner.by_uid.entry(row.uid).or_insert_with(new_handle);
            let entry = match inner.objects.get(&handle) {
                Some(existing) if existing.object == object => existing.clone(),
                _ => Arc::new(Entry::new(handle, Some(row.uid), None, object)),
            };
            fresh.insert(handle, entry);
        }
        inner.objects.retain(|_, e| e.uid.is_none());
        inner.objects.extend(fresh);
        inner.objects_changed();
        inner.seen_version = Some(version);
        Ok(())
    }

    /// The visible entry behind `handle`.
    ///
    /// A handle this process already knows is answered from the cache, so `C_SignInit` and
    /// `C_GetAttributeValue` touch no file; other processes' changes show at the next search.
    pub fn entry(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Entry>> {
        let mut inner = self.lock()?;
        if !inner.objects.contains_key(&handle) {
            Token::refresh(&mut inner)?;
        }
        let user = inner.role == Some(Role::User);
        match inner.objects.get(&handle) {
            Some(entry) if user || !entry.object.is_private() => Ok(entry.clone()),
            _ => Err(Error::ObjectHandleInvalid),
        }
    }

    /// Handles of visible objects matching `template`.
    pub fn find(&self, template: &Template) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut inner = self.lock()?;
        Token::refresh(&mut inner)?;
        if let Some(remote) = &self.remote {
            remote::refresh_remote(remote, &mut inner);
        }
        let user = inner.role == Some(Role::User);
        let keyed = INDEXED
            .iter()
            .find_map(|attr| template.get(*attr).map(|v| (*attr, v.to_vec())));
        let candidates: Vec<CK_OBJECT_HANDLE> = match keyed {
            Some(key) => inner.index().get(&key).cloned().unwrap_or_default(),
            None => inner.objects.keys().copied().collect(),
        };
        let mut found: Vec<CK_OBJECT_HANDLE> = candidates
            .into_iter()
            .filter(|handle| {
                inner.objects.get(handle).is_some_and(|e| {
                    (user || !e.object.is_private()) && template.matches(&e.object.attrs)
                })
            })
            .collect();
        found.sort_unstable();
        Ok(found)
    }

    /// Stores a new object (token objects durably) and returns its handle.
    pub fn add(&self, object: Object, session: CK_SESSION_HANDLE) -> Result<CK_OBJECT_HANDLE> {
        if let Some(remote) = &self.remote {
            if object.is_token() && object.class() == CKO_CERTIFICATE {
                return self.add_remote_certificate(remote, &object);
            }
        }
        Ok(self.add_all(vec![object], session)?[0])
    }

    /// Stores several new objects at once (a key pair): all or none.
    pub fn add_all(
        &self,
        objects: Vec<Object>,
        session: CK_SESSION_HANDLE,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut inner = self.lock()?;
        Token::refresh(&mut inner)?;
        self.check_access(&inner, &objects)?;
        // Only the SO may make a trusted object: a trusted key of the user's own would wrap, and so
        // export, every key marked CKA_WRAP_WITH_TRUSTED.
        if inner.role != Some(Role::So) && objects.iter().any(|o| o.flag(CKA_TRUSTED)) {
            return Err(Error::AttributeReadOnly);
        }
        let mut rows = Vec::new();
        let mut entries = Vec::new();
        for object in objects {
            let handle = new_handle();
            if object.is_token() {
                let uid = new_uid()?;
                rows.push(encode_row(&inner, uid, &object)?);
                entries.push(Entry::new(handle, Some(uid), None, object));
            } else {
                entries.push(Entry::new(handle, None, Some(session), object));
            }
        }
        if !rows.is_empty() {
            inner
                .store
                .as_mut()
                .ok_or(Error::TokenNotPresent)?
                .put_all(&rows)?;
        }
        let handles = entries.iter().map(|e| e.handle).collect();
        for entry in entries {
            if let Some(uid) = entry.uid {
                inner.by_uid.insert(uid, entry.handle);
            }
            inner.objects.insert(entry.handle, Arc::new(entry));
        }
        inner.objects_changed();
        Ok(handles)
    }

    fn check_access(&self, inner: &Inner, objects: &[Object]) -> Result<()> {
        for object in objects {
            if object.is_private() && inner.role != Some(Role::User) {
                return Err(Error::UserNotLoggedIn);
            }
            if object.is_token() && self.remote.is_some() {
                // A remote token holds only what the service holds.
                return Err(Error::TemplateInconsistent);
            }
            if object.is_token() && inner.store.is_none() {
                return Err(Error::TokenNotPresent);
            }
        }
        Ok(())
    }

    /// Replaces an object's attributes (`C_SetAttributeValue`).
    pub fn replace(&self, handle: CK_OBJECT_HANDLE, object: Object) -> Result<()> {
        let mut inner = self.lock()?;
        let entry = inner
            .objects
            .get(&handle)
            .cloned()
            .ok_or(Error::ObjectHandleInvalid)?;
        self.check_access(&inner, std::slice::from_ref(&object))?;
        if let Some(uid) = entry.uid {
            let row = encode_row(&inner, uid, &object)?;
            inner
                .store
                .as_mut()
                .ok_or(Error::TokenNotPresent)?
                .put(&row)?;
        }
        inner.objects.insert(
            handle,
            Arc::new(Entry::new(handle, entry.uid, entry.session, object)),
        );
        inner.objects_changed();
        Ok(())
    }

    pub fn destroy(&self, handle: CK_OBJECT_HANDLE) -> Result<()> {
        let mut inner = self.lock()?;
        Token::refresh(&mut inner)?;
        let entry = inner
            .objects
            .get(&handle)
            .cloned()
            .ok_or(Error::ObjectHandleInvalid)?;
        if entry.object.is_private() && inner.role != Some(Role::User) {
            return Err(Error::ObjectHandleInvalid);
        }
        if let Some(uid) = entry.uid {
            inner
                .store
                .as_mut()
                .ok_or(Error::TokenNotPresent)?
                .delete(uid)?;
            inner.by_uid.remove(&uid);
        }
        inner.objects.remove(&handle);
        inner.objects_changed();
        Ok(())
    }

    /// Drops the session objects of `session` (or of every session).
    pub fn drop_session_objects(&self, session: Option<CK_SESSION_HANDLE>) -> Result<()> {
        let mut inner = self.lock()?;
        inner.objects.retain(|_, e| match (e.session, session) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(owner), Some(closing)) => owner != closing,
        });
        inner.objects_changed();
        Ok(())
    }
}

fn copy_padded(out: &mut [u8], value: &[u8]) {
    let len = value.len().min(out.len());
    out[..len].copy_from_slice(&value[..len]);
}

fn new_uid() -> Result<i64> {
    let mut bytes = [0u8; 8];
    crate::crypto::random(&mut bytes)?;
    Ok((u64::from_le_bytes(bytes) >> 1) as i64)
}

/// Attributes kept readable without login: what a hidden (private) object reveals is only that it
/// exists; a public object reveals everything but its key components.
fn is_public_attr(object: &Object, attr: CK_ATTRIBUTE_TYPE) -> bool {
    if object.is_private() {
        return matches!(attr, CKA_CLASS | CKA_TOKEN | CKA_PRIVATE);
    }
    match rules::rule_for(attr, object.scope()) {
        Some(rule) => rule.flags & rules::F_SECRET == 0,
        None => true,
    }
}

/// The associated data that binds a sealed record to its token, row and public record. Public only
/// for the fuzz targets (`fuzz/`), which seal fuzzed records the way the store does.
#[doc(hidden)]
pub fn seal_context(uuid: &[u8], uid: i64, public: &[u8]) -> Vec<u8> {
    let mut aad = b"cryptera-object-v1".to_vec();
    aad.extend_from_slice(uuid);
    aad.extend_from_slice(&uid.to_le_bytes());
    aad.extend_from_slice(&HashAlg::Sha256.hash(public));
    aad
}

fn encode_row(inner: &Inner, uid: i64, object: &Object) -> Result<Row> {
    let store = inner.store.as_ref().ok_or(Error::TokenNotPresent)?;
    let uuid = store.meta("uuid")?.unwrap_or_default();
    let public = codec::encode(&object.attrs, |a| is_public_attr(object, a));
    let secret = codec::encode(&object.attrs, |a| !is_public_attr(object, a));
    let sealed = if secret.len() > 1 {
        let key = inner.key.as_ref().ok_or(Error::UserNotLoggedIn)?;
        Some(crypt::seal(
            key,
            &secret,
            &seal_context(&uuid, uid, &public),
        )?)
    } else {
        None
    };
    Ok(Row {
        uid,
        public: public.to_vec(),
        sealed,
        private: object.is_private(),
    })
}

/// Decodes a stored row into its object (`None`: private and no token key). Public only for the
/// fuzz targets (`fuzz/`): a damaged row must give an error, never a panic.
#[doc(hidden)]
pub fn decode_row(row: &Row, uuid: &[u8], key: Option<&TokenKey>) -> Result<Option<Object>> {
    let mut attrs: AttrMap = codec::decode(&row.public)?;
    if let Some(sealed) = &row.sealed {
        match key {
            Some(key) => {
                let plain = crypt::open(key, sealed, &seal_context(uuid, row.uid, &row.public))?;
                attrs.extend(codec::decode(&plain)?);
            }
            None if row.private => return Ok(None),
            None => {}
        }
    }
    Ok(Some(Object { attrs }))
}
