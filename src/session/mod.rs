//! A session: its state, its one active cryptographic operation, its object search, and the safe core
//! function behind each session-level `C_*` call. Key management lives in `keys.rs`.

mod key_management;

use crate::attr::{AttrMapExt, Template};
use crate::audit::{Auditor, Event};
use crate::crypto::{HashAlg, Hasher};
use crate::error::{Error, Result};
use crate::mechanism::ops::{CipherOp, DigestOp, SignOp};
use crate::mechanism::{self, Mechanism};
use crate::object::{keys, AttrRead, Object};
use crate::token::{Entry, Role, Token};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Sign,
    Verify,
    Encrypt,
    Decrypt,
    Digest,
}

pub enum Operation {
    Sign(SignOp),
    Verify(SignOp),
    Encrypt(CipherOp),
    Decrypt(CipherOp),
    Digest(DigestOp),
}

impl Operation {
    fn kind(&self) -> OpKind {
        match self {
            Operation::Sign(_) => OpKind::Sign,
            Operation::Verify(_) => OpKind::Verify,
            Operation::Encrypt(_) => OpKind::Encrypt,
            Operation::Decrypt(_) => OpKind::Decrypt,
            Operation::Digest(_) => OpKind::Digest,
        }
    }
}

/// What a call that produces output hands back, following the length-query convention.
pub enum Output {
    /// No buffer was given: the length the output needs. The operation stays active.
    Length(usize),
    /// The buffer is too small for this many bytes. The operation stays active.
    TooSmall(usize),
    /// The output; the operation has ended.
    Data(Zeroizing<Vec<u8>>),
}

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot_id: CK_SLOT_ID,
    pub token: Arc<Token>,
    pub read_write: bool,
    op: Option<Operation>,
    /// Output computed for a length query or a short buffer, handed out by the next call.
    pending: Option<(OpKind, Zeroizing<Vec<u8>>)>,
    find: Option<(Vec<CK_OBJECT_HANDLE>, usize)>,
    context_login: bool,
    audit: Arc<Auditor>,
    token_label: Arc<str>,
    /// What the active sign or decrypt operation's audit record will say.
    audited: Option<AuditedOp>,
}

struct AuditedOp {
    mechanism: CK_MECHANISM_TYPE,
    key_id: Option<Arc<[u8]>>,
    key_label: Option<Arc<[u8]>>,
    /// SHA-256 of the data signed, as it arrives (when the mechanism does not compute it itself).
    data: Option<Hasher>,
    /// SHA-256 of the data signed, as the mechanism computed it.
    digest: Option<[u8; 32]>,
    /// The service's request id, for a remote key.
    request_id: Option<Arc<str>>,
}

impl Session {
    pub fn new(
        handle: CK_SESSION_HANDLE,
        slot_id: CK_SLOT_ID,
        token: Arc<Token>,
        read_write: bool,
        audit: Arc<Auditor>,
    ) -> Session {
        let token_label = token
            .facts()
            .map(|f| Arc::from(String::from_utf8_lossy(&f.label).trim_end()))
            .unwrap_or_else(|_| Arc::from(""));
        Session {
            handle,
            slot_id,
            token,
            read_write,
            op: None,
            pending: None,
            find: None,
            context_login: false,
            audit,
            token_label,
            audited: None,
        }
    }

    /// An audit event about this session's token (and `object`, if given).
    pub fn event(&self, kind: &'static str, rv: CK_RV, object: Option<&Object>) -> Event {
        Event {
            kind,
            rv,
            slot: Some(self.slot_id),
            token: Some(self.token_label.clone()),
            key_id: object.and_then(|o| o.attrs.bytes(CKA_ID)).map(Arc::from),
            key_label: object.and_then(|o| o.attrs.bytes(CKA_LABEL)).map(Arc::from),
            ..Event::default()
        }
    }

    /// Records the outcome of an object-changing call; with mandatory audit an unwritable record
    /// turns success into `CKR_DEVICE_ERROR`.
    fn record_outcome<T>(
        &self,
        kind: &'static str,
        object: Option<&Object>,
        outcome: Result<T>,
    ) -> Result<T> {
        let rv = outcome.as_ref().map_or_else(Error::rv, |_| CKR_OK);
        self.audit.record(self.event(kind, rv, object))?;
        outcome
    }

    /// `C_InitPIN` (the SO sets the user PIN), audited.
    pub fn init_pin(&mut self, pin: &[u8]) -> Result<()> {
        let outcome = self.token.init_pin(pin);
        self.record_outcome("init_pin", None, outcome)
    }

    /// `C_SetPIN`, audited.
    pub fn set_pin(&mut self, old: &[u8], new: &[u8]) -> Result<()> {
        let outcome = self.token.set_pin(old, new);
        self.record_outcome("set_pin", None, outcome)
    }

    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.audit
    }

    /// `C_GetSessionInfo`: the state and flags.
    pub fn info(&self) -> Result<(CK_STATE, CK_FLAGS)> {
        let state = match (self.token.role()?, self.read_write) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(Role::User), false) => CKS_RO_USER_FUNCTIONS,
            (Some(Role::User), true) => CKS_RW_USER_FUNCTIONS,
            (Some(Role::So), _) => CKS_RW_SO_FUNCTIONS,
        };
        let flags = CKF_SERIAL_SESSION | if self.read_write { CKF_RW_SESSION } else { 0 };
        Ok((state, flags))
    }

    /// `C_Login` with `CKU_CONTEXT_SPECIFIC`.
    pub fn login_context(&mut self, pin: &[u8]) -> Result<()> {
        match &self.op {
            Some(Operation::Sign(op)) if op.needs_context_login => {}
            Some(_) | None => return Err(Error::OperationNotInitialized),
        }
        self.token.login_context(pin)?;
        self.context_login = true;
        Ok(())
    }

    fn check_writable(&self, object: &Object) -> Result<()> {
        if object.is_token() && !self.read_write {
            return Err(Error::SessionReadOnly);
        }
        if object.is_private() && self.token.role()? != Some(Role::User) {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    pub fn create_object(&mut self, template: &Template) -> Result<CK_OBJECT_HANDLE> {
        let object = keys::create(template)?;
        self.check_writable(&object)?;
        let kind = if object.class() == CKO_PRIVATE_KEY || object.class() == CKO_SECRET_KEY {
            "import"
        } else {
            "create"
        };
        let outcome = self.token.add(object.clone(), self.handle);
        self.record_outcome(kind, Some(&object), outcome)
    }

    pub fn copy_object(
        &mut self,
        handle: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let copy = self.token.entry(handle)?.object.copy_with(template)?;
        self.check_writable(&copy)?;
        self.token.add(copy, self.handle)
    }

    pub fn destroy_object(&mut self, handle: CK_OBJECT_HANDLE) -> Result<()> {
        let entry = self.token.entry(handle)?;
        self.check_writable(&entry.object)?;
        if !entry.object.flag(CKA_DESTROYABLE) {
            return Err(Error::ActionProhibited);
        }
        let outcome = self.token.destroy(handle);
        self.record_outcome("destroy", Some(&entry.object), outcome)
    }

    pub fn object(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Entry>> {
        self.token.entry(handle)
    }

    /// `C_GetAttributeValue`: each requested attribute read under the sensitivity rules.
    pub fn read_attributes(
        &self,
        handle: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<Option<Result<Vec<u8>>>>> {
        let entry = self.token.entry(handle)?;
        Ok(types
            .iter()
            .map(|t| match entry.object.read(*t) {
                AttrRead::Value(v) => Some(Ok(v.to_vec())),
                AttrRead::Sensitive => Some(Err(Error::AttributeSensitive)),
                AttrRead::Invalid => None,
            })
            .collect())
    }

    pub fn set_attributes(&mut self, handle: CK_OBJECT_HANDLE, template: &Template) -> Result<()> {
        let entry = self.token.entry(handle)?;
        self.check_writable(&entry.object)?;
        let mut object = entry.object.clone();
        let outcome = object
            .set_attributes(template)
            .and_then(|_| self.token.replace(handle, object.clone()));
        self.record_outcome("set_attribute", Some(&entry.object), outcome)
    }

    pub fn find_init(&mut self, template: &Template) -> Result<()> {
        if self.find.is_some() {
            return Err(Error::OperationActive);
        }
        self.find = Some((self.token.find(template)?, 0));
        Ok(())
    }

    pub fn find_next(&mut self, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let (found, pos) = self.find.as_mut().ok_or(Error::OperationNotInitialized)?;
        let end = (*pos + max).min(found.len());
        let batch = found[*pos..end].to_vec();
        *pos = end;
        Ok(batch)
    }

    pub fn find_final(&mut self) -> Result<()> {
        self.find
            .take()
            .map(|_| ())
            .ok_or(Error::OperationNotInitialized)
    }

    fn audited_op(&self, mechanism: CK_MECHANISM_TYPE, key: &Entry, hash_data: bool) -> AuditedOp {
        AuditedOp {
            mechanism,
            key_id: key.audit_names.0.clone(),
            key_label: key.audit_names.1.clone(),
            data: hash_data.then(|| HashAlg::Sha256.hasher()),
            digest: None,
            request_id: None,
        }
    }

    /// The audit event of the active sign or decrypt operation.
    fn op_event(&self, kind: &'static str, rv: CK_RV) -> Event {
        let mut event = self.event(kind, rv, None);
        if let Some(op) = &self.audited {
            event.mechanism = Some(op.mechanism);
            event.key_id = op.key_id.clone();
            event.key_label = op.key_label.clone();
            event.request_id = op.request_id.clone();
            event.data_sha256 = op
                .digest
                .or_else(|| op.data.clone().and_then(|h| h.finish().try_into().ok()));
        }
        event
    }

    /// Whether an operation is active: running, or holding output that a length query or a short
    /// buffer left to be collected (the spec keeps the operation active then).
    fn busy(&self) -> bool {
        self.op.is_some() || self.pending.is_some()
    }

    fn start(&mut self, op: Operation) -> Result<()> {
        if self.busy() {
            return Err(Error::OperationActive);
        }
        self.context_login = false;
        self.audited = None;
        self.op = Some(op);
        Ok(())
    }

    fn key_entry(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Entry>> {
        self.token.entry(handle).map_err(|e| match e {
            Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
            other => other,
        })
    }

    pub fn sign_init(
        &mut self,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        verify: bool,
    ) -> Result<()> {
        if self.busy() {
            return Err(Error::OperationActive);
        }
        mechanism::require(mechanism.kind, if verify { CKF_VERIFY } else { CKF_SIGN })?;
        let entry = self.key_entry(key)?;
        let op = SignOp::new(mechanism, &entry, verify)?;
        let hash_data = !op.hashes_with_sha256();
        self.start(if verify {
            Operation::Verify(op)
        } else {
            Operation::Sign(op)
        })?;
        if !verify {
            self.audited = Some(self.audited_op(mechanism.kind, &entry, hash_data));
        }
        Ok(())
    }

    pub fn encrypt_init(
        &mut self,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        decrypt: bool,
    ) -> Result<()> {
        if self.busy() {
            return Err(Error::OperationActive);
        }
        mechanism::require(
            mechanism.kind,
            if decrypt { CKF_DECRYPT } else { CKF_ENCRYPT },
        )?;
        let entry = self.key_entry(key)?;
        let op = CipherOp::new(mechanism, &entry, decrypt)?;
        self.start(if decrypt {
            Operation::Decrypt(op)
        } else {
            Operation::Encrypt(op)
        })?;
        if decrypt {
            self.audited = Some(self.audited_op(mechanism.kind, &entry, false));
        }
        Ok(())
    }

    pub fn digest_init(&mut self, mechanism: &Mechanism) -> Result<()> {
        if self.busy() {
            return Err(Error::OperationActive);
        }
        mechanism::require(mechanism.kind, CKF_DIGEST)?;
        self.start(Operation::Digest(DigestOp::new(mechanism)?))
    }

    fn active(&mut self, kind: OpKind) -> Result<&mut Operation> {
        match self.op.as_mut() {
            Some(op) if op.kind() == kind => Ok(op),
            _ => Err(Error::OperationNotInitialized),
        }
    }

    /// Feeds `data` to the active operation of `kind`; an error ends the operation.
    pub fn update(&mut self, kind: OpKind, data: &[u8]) -> Result<()> {
        if self.pending.is_some() {
            return Err(Error::OperationActive);
        }
        if kind == OpKind::Sign {
            if let Some(hasher) = self.audited.as_mut().and_then(|a| a.data.as_mut()) {
                hasher.update(data);
            }
        }
        let outcome = match self.active(kind)? {
            Operation::Sign(op) | Operation::Verify(op) => op.update(data),
            Operation::Encrypt(op) | Operation::Decrypt(op) => op.update(data),
            Operation::Digest(op) => {
                op.update(data);
                Ok(())
            }
        };
        if outcome.is_err() {
            self.op = None;
        }
        outcome
    }

    /// `C_DigestKey`.
    pub fn digest_key(&mut self, key: CK_OBJECT_HANDLE) -> Result<()> {
        let entry = self.key_entry(key)?;
        let Operation::Digest(op) = self.active(OpKind::Digest)? else {
            return Err(Error::OperationNotInitialized);
        };
        op.update_key(&entry.object)
    }

    /// Runs the single-part call (`data` given) or the final call of an operation that produces output.
    pub fn finish(
        &mut self,
        kind: OpKind,
        data: Option<&[u8]>,
        capacity: Option<usize>,
    ) -> Result<Output> {
        if !matches!(&self.pending, Some((k, _)) if *k == kind) {
            self.active(kind)?;
            if let Some(Operation::Sign(op)) = &self.op {
                if op.needs_context_login && !self.context_login {
                    return Err(Error::UserNotLoggedIn);
                }
            }
            if let Some(data) = data {
                self.update(kind, data)?;
            }
            if kind == OpKind::Sign && self.audit.has_policy() {
                if let Err(denied) = self.audit.ask_policy(&self.op_event("sign", CKR_OK)) {
                    self.op = None;
                    self.audit.record(self.op_event("sign", denied.rv()))?;
                    return Err(denied);
                }
            }
            let op = self.op.take().ok_or(Error::OperationNotInitialized)?;
            let output = match op {
                Operation::Sign(op) => op.sign().map(|output| {
                    if let Some(audited) = self.audited.as_mut() {
                        audited.digest = output.digest;
                        audited.request_id = output.request_id.map(Arc::from);
                    }
                    Zeroizing::new(output.signature)
                }),
                Operation::Encrypt(op) => op.encrypt().map(Zeroizing::new),
                Operation::Decrypt(op) => op.decrypt(),
                Operation::Digest(op) => Ok(Zeroizing::new(op.finish())),
                Operation::Verify(_) => Err(Error::OperationNotInitialized),
            };
            if matches!(kind, OpKind::Sign | OpKind::Decrypt) {
                let name = if kind == OpKind::Sign {
                    "sign"
                } else {
                    "decrypt"
                };
                let rv = output.as_ref().map_or_else(Error::rv, |_| CKR_OK);
                self.audit.record(self.op_event(name, rv))?;
            }
            self.pending = Some((kind, output?));
        }
        let len = self.pending.as_ref().map(|(_, v)| v.len()).unwrap_or(0);
        match capacity {
            None => Ok(Output::Length(len)),
            Some(room) if room < len => Ok(Output::TooSmall(len)),
            Some(_) => Ok(Output::Data(
                self.pending.take().map(|(_, v)| v).unwrap_or_default(),
            )),
        }
    }

    /// `C_Verify` (`data` given) or `C_VerifyFinal`.
    pub fn verify(&mut self, data: Option<&[u8]>, signature: &[u8]) -> Result<()> {
        self.active(OpKind::Verify)?;
        if let Some(data) = data {
            self.update(OpKind::Verify, data)?;
        }
        match self.op.take() {
            Some(Operation::Verify(op)) => op.verify(signature),
            _ => Err(Error::OperationNotInitialized),
        }
    }
}
