//! The module's process-wide state between `C_Initialize` and `C_Finalize`: configuration, slots and
//! sessions. A fork makes the state unusable in the child until it calls `C_Initialize` again.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::token::{Role, Token};
use cryptoki_sys::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub struct Module {
    /// The fork generation this state belongs to; a forked child has a newer one.
    generation: u64,
    pub config: Arc<Config>,
    pub audit: Arc<crate::audit::Auditor>,
    slots: Mutex<BTreeMap<CK_SLOT_ID, Arc<Token>>>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<OpenSession>>>,
    next_session: AtomicU64,
}

/// An open session: its fixed facts readable without locking, its state behind its own mutex, so
/// listing sessions never waits for a session that is busy signing.
pub struct OpenSession {
    pub slot_id: CK_SLOT_ID,
    pub read_write: bool,
    pub state: Mutex<Session>,
}

static FORKS: AtomicU64 = AtomicU64::new(0);

/// Called in the child after `fork()` (the ABI layer registers it with `pthread_atfork`): the state
/// inherited from the parent is unusable until the child calls `C_Initialize` again.
pub fn note_fork() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

fn forks() -> u64 {
    FORKS.load(Ordering::SeqCst)
}

static STATE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

fn state_read() -> Result<std::sync::RwLockReadGuard<'static, Option<Arc<Module>>>> {
    STATE
        .read()
        .map_err(|_| Error::General("module state poisoned".into()))
}

fn state_write() -> Result<std::sync::RwLockWriteGuard<'static, Option<Arc<Module>>>> {
    STATE
        .write()
        .map_err(|_| Error::General("module state poisoned".into()))
}

/// `C_Initialize`.
/// `may_create_threads` is false when the application forbids the module its own threads
/// (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`): audit records are then written by the calling thread.
pub fn initialize(may_create_threads: bool) -> Result<()> {
    let mut state = state_write()?;
    if let Some(existing) = state.as_ref() {
        if existing.generation == forks() {
            return Err(Error::AlreadyInitialized);
        }
        // Inherited from the parent through fork(): leave its connections and locks untouched.
        if let Some(old) = state.take() {
            std::mem::forget(old);
        }
    }
    let config = Arc::new(Config::load()?);
    let audit = Arc::new(crate::audit::Auditor::new(
        &config.audit,
        &config.store_dir(),
        may_create_threads,
    ));
    let module = Module {
        audit,
        generation: forks(),
        config,
        slots: Mutex::new(BTreeMap::new()),
        sessions: RwLock::new(HashMap::new()),
        next_session: AtomicU64::new(1),
    };
    module.refresh_slots()?;
    *state = Some(Arc::new(module));
    Ok(())
}

/// `C_Finalize`.
pub fn finalize() -> Result<()> {
    let mut state = state_write()?;
    match state.as_ref() {
        Some(module) if module.generation == forks() => {
            *state = None;
            Ok(())
        }
        Some(_) => {
            if let Some(old) = state.take() {
                std::mem::forget(old);
            }
            Err(Error::NotInitialized)
        }
        None => Err(Error::NotInitialized),
    }
}

/// The initialised module of this process.
pub fn get() -> Result<Arc<Module>> {
    let state = state_read()?;
    match state.as_ref() {
        Some(module) if module.generation == forks() => Ok(module.clone()),
        _ => Err(Error::NotInitialized),
    }
}

impl Module {
    /// Rescans the store: tokens made by other processes appear; one free slot always exists.
    pub fn refresh_slots(&self) -> Result<()> {
        let dir = self.config.store_dir();
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| Error::General("slot lock poisoned".into()))?;
        for token in &self.config.tokens {
            let path = token
                .path
                .clone()
                .unwrap_or_else(|| dir.join(format!("slot-{}.token", token.slot)));
            slots.entry(token.slot as CK_SLOT_ID).or_insert_with(|| {
                Arc::new(Token::new(
                    token.slot as CK_SLOT_ID,
                    path,
                    token.label.clone(),
                    self.config.clone(),
                ))
            });
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("slot-"))
                    .and_then(|n| n.strip_suffix(".token"))
                    .and_then(|n| n.parse::<CK_SLOT_ID>().ok())
                else {
                    continue;
                };
                slots.entry(id).or_insert_with(|| {
                    Arc::new(Token::new(id, entry.path(), None, self.config.clone()))
                });
            }
        }
        for remote in &self.config.remotes {
            let id = remote.slot as CK_SLOT_ID;
            if let std::collections::btree_map::Entry::Vacant(slot) = slots.entry(id) {
                let client = crate::remote::Remote::new(remote.clone())?;
                slot.insert(Arc::new(Token::new_remote(id, client, self.config.clone())));
            }
        }
        let mut has_free = false;
        for token in slots.values() {
            if !token.is_initialized().unwrap_or(true) {
                has_free = true;
            }
        }
        if !has_free {
            let id = slots.keys().next_back().map(|k| k + 1).unwrap_or(0);
            let path = dir.join(format!("slot-{id}.token"));
            slots.insert(
                id,
                Arc::new(Token::new(id, path, None, self.config.clone())),
            );
        }
        Ok(())
    }

    pub fn slot_ids(&self) -> Result<Vec<CK_SLOT_ID>> {
        self.refresh_slots()?;
        let slots = self
            .slots
            .lock()
            .map_err(|_| Error::General("slot lock poisoned".into()))?;
        Ok(slots.keys().copied().collect())
    }

    pub fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        let slots = self
            .slots
            .lock()
            .map_err(|_| Error::General("slot lock poisoned".into()))?;
        slots.get(&slot).cloned().ok_or(Error::SlotIdInvalid)
    }

    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<OpenSession>> {
        let sessions = self
            .sessions
            .read()
            .map_err(|_| Error::General("session lock poisoned".into()))?;
        sessions
            .get(&handle)
            .cloned()
            .ok_or(Error::SessionHandleInvalid)
    }

    /// Sessions open on `slot`: (handle, read/write).
    pub fn sessions_on(&self, slot: CK_SLOT_ID) -> Result<Vec<(CK_SESSION_HANDLE, bool)>> {
        let sessions = self
            .sessions
            .read()
            .map_err(|_| Error::General("session lock poisoned".into()))?;
        let mut out = Vec::new();
        for (handle, session) in sessions.iter() {
            if session.slot_id == slot {
                out.push((*handle, session.read_write));
            }
        }
        Ok(out)
    }

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let token = self.token(slot)?;
        if !token.is_initialized()? {
            return Err(Error::TokenNotRecognized("token not initialised".into()));
        }
        let read_write = flags & CKF_RW_SESSION != 0;
        if !read_write && token.role()? == Some(crate::token::Role::So) {
            return Err(Error::SessionReadWriteSoExists);
        }
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Session::new(handle, slot, token, read_write, self.audit.clone());
        self.sessions
            .write()
            .map_err(|_| Error::General("session lock poisoned".into()))?
            .insert(
                handle,
                Arc::new(OpenSession {
                    slot_id: slot,
                    read_write,
                    state: Mutex::new(session),
                }),
            );
        Ok(handle)
    }

    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let removed = self
            .sessions
            .write()
            .map_err(|_| Error::General("session lock poisoned".into()))?
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        let slot = removed.slot_id;
        let token = self.token(slot)?;
        token.drop_session_objects(Some(handle))?;
        if self.sessions_on(slot)?.is_empty() {
            token.forget_login()?;
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        let token = self.token(slot)?;
        for (handle, _) in self.sessions_on(slot)? {
            self.sessions
                .write()
                .map_err(|_| Error::General("session lock poisoned".into()))?
                .remove(&handle);
        }
        token.drop_session_objects(None)?;
        token.forget_login()
    }

    /// `C_Login` for the user, the SO or a context-specific login; every attempt is audited.
    pub fn login(
        &self,
        handle: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
    ) -> Result<()> {
        let open = self.session(handle)?;
        let (token, mut event) = {
            let session = open
                .state
                .lock()
                .map_err(|_| Error::General("session lock poisoned".into()))?;
            (session.token.clone(), session.event("login", CKR_OK, None))
        };
        let (name, outcome) = match user_type {
            CKU_USER => ("user", token.login(Role::User, pin)),
            CKU_SO => {
                let outcome = if self.sessions_on(open.slot_id)?.iter().any(|(_, rw)| !rw) {
                    Err(Error::SessionReadOnlyExists)
                } else {
                    token.login(Role::So, pin)
                };
                ("so", outcome)
            }
            CKU_CONTEXT_SPECIFIC => {
                let mut session = open
                    .state
                    .lock()
                    .map_err(|_| Error::General("session lock poisoned".into()))?;
                ("context_specific", session.login_context(pin))
            }
            _ => return Err(Error::UserTypeInvalid),
        };
        event.rv = outcome.as_ref().map_or_else(Error::rv, |_| CKR_OK);
        event.user_type = Some(name);
        self.audit.record(event)?;
        outcome
    }

    /// `C_Logout`, audited.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let open = self.session(handle)?;
        let (token, mut event) = {
            let session = open
                .state
                .lock()
                .map_err(|_| Error::General("session lock poisoned".into()))?;
            (session.token.clone(), session.event("logout", CKR_OK, None))
        };
        let outcome = token.logout();
        event.rv = outcome.as_ref().map_or_else(Error::rv, |_| CKR_OK);
        self.audit.record(event)?;
        outcome
    }

    /// Records a `C_InitToken` attempt.
    pub fn record_init_token(
        &self,
        slot: CK_SLOT_ID,
        label: &[u8; 32],
        outcome: &Result<()>,
    ) -> Result<()> {
        let label = String::from_utf8_lossy(label).trim_end().to_string();
        self.audit.record(crate::audit::Event {
            kind: "init_token",
            rv: outcome.as_ref().map_or_else(Error::rv, |_| CKR_OK),
            slot: Some(slot),
            token: Some(Arc::from(label.as_str())),
            ..Default::default()
        })
    }
}
