//! PINs and login: token initialisation, `C_InitPIN`, `C_SetPIN`, `C_Login`/`C_Logout`, and the
//! persistent wrong-PIN counters behind the `CKF_*_PIN_COUNT_LOW / FINAL_TRY / LOCKED` flags.

use super::{Inner, Role, Token};
use crate::error::{Error, Result};
use crate::local::crypt::{self, TokenKey};
use crate::local::store::Store;
use cryptoki_sys::*;

/// The count flags for `failures` wrong PINs out of `max`.
pub fn count_flags(failures: u32, max: u32, so: bool) -> CK_FLAGS {
    let (low, final_try, locked) = if so {
        (
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        )
    } else {
        (
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        )
    };
    if failures >= max {
        locked
    } else if failures + 1 == max {
        low | final_try
    } else if failures > 0 {
        low
    } else {
        0
    }
}

fn names(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::User => ("user_wrap", "user_failures"),
        Role::So => ("so_wrap", "so_failures"),
    }
}

fn context(uuid: &[u8], role: Role) -> Vec<u8> {
    let mut ctx = uuid.to_vec();
    ctx.push(match role {
        Role::User => b'U',
        Role::So => b'S',
    });
    ctx
}

impl Token {
    pub fn check_pin_format(&self, pin: &[u8]) -> Result<()> {
        if self.remote.is_some() {
            // Credentials of remote tokens are managed in the service.
            return Err(Error::FunctionNotSupported);
        }
        if pin.len() < self.config.min_pin_len || pin.len() > self.config.max_pin_len {
            return Err(Error::PinLenRange);
        }
        Ok(())
    }

    /// Checks `pin` for `role` against the store, counting failures across processes; on success
    /// returns the token key.
    fn verify_pin(&self, store: &mut Store, role: Role, pin: &[u8]) -> Result<TokenKey> {
        let (wrap_name, failures_name) = names(role);
        let record = store.meta(wrap_name)?.ok_or(match role {
            Role::User => Error::UserPinNotInitialized,
            Role::So => Error::Device("token has no SO PIN".into()),
        })?;
        if store.meta_u32(failures_name)? >= self.config.max_pin_attempts {
            return Err(Error::PinLocked);
        }
        let uuid = store.meta("uuid")?.unwrap_or_default();
        match crypt::unwrap_token_key(&record, pin, &context(&uuid, role))? {
            Some(key) => {
                if store.meta_u32(failures_name)? != 0 {
                    store.bump_counter(failures_name, true)?;
                }
                Ok(key)
            }
            None => {
                store.bump_counter(failures_name, false)?;
                Err(Error::PinIncorrect)
            }
        }
    }

    /// `C_InitToken`: creates the token's store, or wipes an existing one after checking its SO PIN.
    pub fn init_token(&self, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        self.check_pin_format(so_pin)?;
        let mut inner = self.lock()?;
        if inner.role.is_some() {
            return Err(Error::UserAlreadyLoggedIn);
        }
        let key = crypt::new_token_key()?;
        let uuid = crate::crypto::random_vec(16)?.to_vec();
        let serial = crate::audit::chain::hex(&uuid[..8]);
        let so_wrap =
            crypt::wrap_token_key(&key, so_pin, self.kdf_params(), &context(&uuid, Role::So))?;
        let trimmed = String::from_utf8_lossy(label)
            .trim_end()
            .as_bytes()
            .to_vec();
        match inner.store.as_mut() {
            None => {
                let store = Store::create(
                    &self.path,
                    &[
                        ("label", trimmed),
                        ("serial", serial.into_bytes()),
                        ("uuid", uuid),
                        ("so_wrap", so_wrap),
                    ],
                )?;
                inner.store = Some(store);
            }
            Some(store) => {
                self.verify_pin(store, Role::So, so_pin)?;
                store.reset(&[
                    ("label", Some(trimmed)),
                    ("serial", Some(serial.into_bytes())),
                    ("uuid", Some(uuid)),
                    ("so_wrap", Some(so_wrap)),
                    ("user_wrap", None),
                    ("user_failures", None),
                    ("so_failures", None),
                ])?;
            }
        }
        forget_login(&mut inner);
        inner.objects.clear();
        inner.objects_changed();
        Ok(())
    }

    /// `C_Login` for the user or the SO.
    pub fn login(&self, role: Role, pin: &[u8]) -> Result<()> {
        let mut inner = self.lock()?;
        match inner.role {
            Some(current) if current == role => return Err(Error::UserAlreadyLoggedIn),
            Some(_) => return Err(Error::UserAnotherAlreadyLoggedIn),
            None => {}
        }
        if let Some(remote) = &self.remote {
            if role != Role::User {
                return Err(Error::FunctionNotSupported);
            }
            return self.login_remote(remote, &mut inner, pin);
        }
        let store = inner
            .store
            .as_mut()
            .ok_or(Error::TokenNotRecognized("token not initialised".into()))?;
        let key = self.verify_pin(store, role, pin)?;
        inner.role = Some(role);
        inner.key = Some(key);
        inner.seen_version = None;
        Ok(())
    }

    /// Checks the user PIN again for a key with `CKA_ALWAYS_AUTHENTICATE`.
    pub fn login_context(&self, pin: &[u8]) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.role != Some(Role::User) {
            return Err(Error::UserNotLoggedIn);
        }
        let store = inner.store.as_mut().ok_or(Error::TokenNotPresent)?;
        self.verify_pin(store, Role::User, pin).map(|_| ())
    }

    pub fn logout(&self) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.role.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        forget_login(&mut inner);
        if let Some(remote) = &self.remote {
            remote.set_access_token(None);
        }
        Ok(())
    }

    /// Logs out silently (last session closed, finalize).
    pub fn forget_login(&self) -> Result<()> {
        forget_login(&mut *self.lock()?);
        if let Some(remote) = &self.remote {
            remote.set_access_token(None);
        }
        Ok(())
    }

    /// `C_InitPIN`: the logged-in SO sets the user PIN and clears its lock.
    pub fn init_pin(&self, pin: &[u8]) -> Result<()> {
        self.check_pin_format(pin)?;
        let mut inner = self.lock()?;
        if inner.role != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        let key = inner.key.clone().ok_or(Error::UserNotLoggedIn)?;
        let store = inner.store.as_mut().ok_or(Error::TokenNotPresent)?;
        let uuid = store.meta("uuid")?.unwrap_or_default();
        let wrap =
            crypt::wrap_token_key(&key, pin, self.kdf_params(), &context(&uuid, Role::User))?;
        store.set_meta(&[("user_wrap", Some(wrap)), ("user_failures", None)])
    }

    /// `C_SetPIN`: re-wraps the token key under the new PIN; objects are not touched.
    pub fn set_pin(&self, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
        self.check_pin_format(new_pin)?;
        let mut inner = self.lock()?;
        let role = inner.role.unwrap_or(Role::User);
        let store = inner.store.as_mut().ok_or(Error::TokenNotPresent)?;
        let key = self.verify_pin(store, role, old_pin)?;
        let uuid = store.meta("uuid")?.unwrap_or_default();
        let wrap = crypt::wrap_token_key(&key, new_pin, self.kdf_params(), &context(&uuid, role))?;
        store.set_meta(&[(names(role).0, Some(wrap))])
    }
}

/// Ends the login. As the spec says for `C_Logout`, handles to private objects become invalid for good
/// (a later login hands out new ones) and private session objects are destroyed.
fn forget_login(inner: &mut Inner) {
    // A remote token keeps the label it learned: clients that found it by label still find it.
    inner.remote_handles.clear();
    inner.remote_etag = None;
    inner.remote_checked = None;
    inner.role = None;
    inner.key = None;
    inner.seen_version = None;
    inner.forget_private_handles();
    inner
        .objects
        .retain(|_, e| e.uid.is_none() && !e.object.is_private());
    inner.objects_changed();
}
