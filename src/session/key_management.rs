//! Key management on a session: generating, wrapping, unwrapping and deriving keys. Each new key is
//! stored through the token and audited.

use super::Session;
use crate::attr::Template;
use crate::error::{Error, Result};
use crate::mechanism::ops::CipherOp;
use crate::mechanism::{self, Mechanism, Param};
use crate::object::{keys, Origin};
use cryptoki_sys::*;

impl Session {
    /// `C_GenerateKey`.
    pub fn generate_key(
        &mut self,
        mechanism: &Mechanism,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        mechanism::require(mechanism.kind, CKF_GENERATE)?;
        if mechanism.param != Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        let object = keys::generate_secret(mechanism.kind, template)?;
        self.check_writable(&object)?;
        let outcome = self.token.add(object.clone(), self.handle);
        self.record_outcome("generate", Some(&object), outcome)
    }

    /// `C_GenerateKeyPair`: both objects are stored together or not at all.
    pub fn generate_key_pair(
        &mut self,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        mechanism::require(mechanism.kind, CKF_GENERATE_KEY_PAIR)?;
        if mechanism.param != Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        if self.token.remote.is_some() {
            if !self.read_write {
                return Err(Error::SessionReadOnly);
            }
            let outcome =
                self.token
                    .generate_remote(mechanism.kind, public_template, private_template);
            let names = outcome
                .as_ref()
                .ok()
                .and_then(|(_, private)| self.token.entry(*private).ok());
            return self.record_outcome("generate", names.as_ref().map(|e| &e.object), outcome);
        }
        let (public, private) =
            keys::generate_key_pair(mechanism.kind, public_template, private_template)?;
        self.check_writable(&public)?;
        self.check_writable(&private)?;
        let outcome = self
            .token
            .add_all(vec![public, private.clone()], self.handle);
        let handles = self.record_outcome("generate", Some(&private), outcome)?;
        Ok((handles[0], handles[1]))
    }

    /// `C_WrapKey`: wraps the value of an extractable secret key.
    pub fn wrap_key(
        &mut self,
        mechanism: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<Vec<u8>> {
        mechanism::require(mechanism.kind, CKF_WRAP)?;
        let wrapping = self
            .token
            .entry(wrapping)
            .map_err(|_| Error::WrappingKeyHandleInvalid)?;
        let target = self.key_entry(key)?;
        if !wrapping.object.flag(CKA_WRAP) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        if target.object.class() != CKO_SECRET_KEY {
            return Err(Error::KeyNotWrappable);
        }
        if !target.object.flag(CKA_EXTRACTABLE) {
            return Err(Error::KeyUnextractable);
        }
        if target.object.flag(CKA_WRAP_WITH_TRUSTED) && !wrapping.object.flag(CKA_TRUSTED) {
            return Err(Error::KeyNotWrappable);
        }
        let value = target
            .object
            .attrs
            .get(&CKA_VALUE)
            .ok_or(Error::UserNotLoggedIn)?;
        let mut op =
            CipherOp::with_usage(mechanism, &wrapping, false, CKA_WRAP).map_err(|e| match e {
                Error::KeyTypeInconsistent => Error::WrappingKeyHandleInvalid,
                other => other,
            })?;
        op.update(value)?;
        op.encrypt()
    }

    /// `C_UnwrapKey`: makes a secret key from a wrapped value.
    pub fn unwrap_key(
        &mut self,
        mechanism: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        mechanism::require(mechanism.kind, CKF_UNWRAP)?;
        let unwrapping = self
            .token
            .entry(unwrapping)
            .map_err(|_| Error::UnwrappingKeyHandleInvalid)?;
        if !unwrapping.object.flag(CKA_UNWRAP) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        let mut op = CipherOp::with_usage(mechanism, &unwrapping, true, CKA_UNWRAP).map_err(
            |e| match e {
                Error::KeyTypeInconsistent => Error::UnwrappingKeyHandleInvalid,
                other => other,
            },
        )?;
        op.update(wrapped)?;
        let value = op.decrypt().map_err(|e| match e {
            Error::EncryptedDataInvalid => Error::WrappedKeyInvalid,
            Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
            other => other,
        })?;
        let object = keys::secret_from_value(template, Origin::Unwrapped, &value, None)?;
        self.check_writable(&object)?;
        let outcome = self.token.add(object.clone(), self.handle);
        self.record_outcome("unwrap", Some(&object), outcome)
    }

    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE` (no KDF): the shared secret becomes a secret key.
    pub fn derive_key(
        &mut self,
        mechanism: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        mechanism::require(mechanism.kind, CKF_DERIVE)?;
        let Param::Ecdh {
            kdf,
            shared_data,
            public_data,
        } = &mechanism.param
        else {
            return Err(Error::MechanismParamInvalid);
        };
        if *kdf != CKD_NULL || !shared_data.is_empty() {
            return Err(Error::MechanismParamInvalid);
        }
        let entry = self.key_entry(base)?;
        if entry.object.class() != CKO_PRIVATE_KEY || entry.object.key_type() != Some(CKK_EC) {
            return Err(Error::KeyTypeInconsistent);
        }
        if !entry.object.flag(CKA_DERIVE) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        let key = entry.private_key().map_err(|_| Error::UserNotLoggedIn)?;
        let point_len = match key.public_key() {
            crate::crypto::asym::PublicKey::Ec { point, .. } => point.len(),
            _ => 0,
        };
        let peer = crate::crypto::der::parse_ec_point(public_data, point_len);
        let secret = key.ecdh(&peer)?;
        let object =
            keys::secret_from_value(template, Origin::Derived, &secret, Some(CKK_GENERIC_SECRET))?;
        self.check_writable(&object)?;
        let outcome = self.token.add(object.clone(), self.handle);
        self.record_outcome("derive", Some(&object), outcome)
    }
}
