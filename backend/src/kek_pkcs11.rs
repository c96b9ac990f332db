//! The KEK held by a PKCS#11 module (an HSM, SoftHSM2 or the project's own token) through `cryptoki`.
//!
//! The KEK is a non-extractable, sensitive AES-256 token object; sealing and opening run AES-256-GCM
//! inside the module with a random 96-bit IV and the same AAD as the file KEK. The service keeps one
//! logged-in session; the user PIN comes from the environment, never from arguments or files.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::util::random_bytes;

/// Written to the data directory at `init` (`kek.json`); never contains the PIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11KekConfig {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
}

/// The environment variable holding the token's user PIN.
pub const PIN_VARIABLE: &str = "CRYPTERA_KEK_PIN";
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

pub struct Pkcs11Kek {
    // Kept so the library stays loaded and initialised as long as the session lives.
    _context: Pkcs11,
    session: Mutex<Session>,
    key: ObjectHandle,
}

fn failed(what: &str) -> impl Fn(cryptoki::error::Error) -> ServiceError + '_ {
    move |err| ServiceError::Io(format!("PKCS#11 KEK: {what}: {err}"))
}

impl Pkcs11Kek {
    /// Opens the token, logs in, and finds the KEK; with `create`, generates it if it does not exist.
    pub fn connect(config: &Pkcs11KekConfig, pin: &str, create: bool) -> Result<Self> {
        let context = Pkcs11::new(&config.module).map_err(failed("loading the module"))?;
        // Another part of this process (or an earlier open) may have initialised the module already.
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(err) => return Err(failed("C_Initialize")(err)),
        }
        let slot = context
            .get_slots_with_initialized_token()
            .map_err(failed("listing slots"))?
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == config.token_label)
            })
            .ok_or_else(|| {
                ServiceError::Io(format!(
                    "PKCS#11 KEK: no token labelled {:?}",
                    config.token_label
                ))
            })?;
        let session = context
            .open_rw_session(slot)
            .map_err(failed("C_OpenSession"))?;
        // Login state is per application: another instance in this process may have logged in already
        // (then the module does not re-check the PIN; that instance proved it).
        match session.login(UserType::User, Some(&AuthPin::from(pin))) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(err) => return Err(failed("C_Login")(err)),
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(config.key_label.as_bytes().to_vec()),
        ];
        let found = session
            .find_objects(&template)
            .map_err(failed("C_FindObjects"))?;
        let key = match (found.as_slice(), create) {
            ([key], _) => *key,
            ([], true) => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Label(config.key_label.as_bytes().to_vec()),
                    ],
                )
                .map_err(failed("generating the KEK"))?,
            ([], false) => {
                return Err(ServiceError::Io(format!(
                    "PKCS#11 KEK: no AES key labelled {:?} on the token",
                    config.key_label
                )))
            }
            _ => {
                return Err(ServiceError::Io(format!(
                    "PKCS#11 KEK: several keys labelled {:?}; the label must be unique",
                    config.key_label
                )))
            }
        };
        Ok(Self {
            _context: context,
            session: Mutex::new(session),
            key,
        })
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        // A panic mid-operation leaves at most an aborted PKCS#11 operation, which the next call resets.
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `iv(12) || ciphertext || tag(16)`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut iv = random_bytes::<IV_LEN>()?;
        let params =
            GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(failed("GCM parameters"))?;
        let sealed = self
            .session()
            .encrypt(&Mechanism::AesGcm(params), self.key, plaintext)
            .map_err(|_| ServiceError::Crypto("PKCS#11 seal"))?;
        let mut blob = iv.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        if blob.len() < IV_LEN {
            return Err(ServiceError::Crypto("sealed blob too short"));
        }
        let (iv, sealed) = blob.split_at(IV_LEN);
        let mut iv = iv.to_vec();
        let params =
            GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(failed("GCM parameters"))?;
        self.session()
            .decrypt(&Mechanism::AesGcm(params), self.key, sealed)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| ServiceError::Crypto("PKCS#11 open"))
    }
}

impl Pkcs11KekConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ServiceError::Io(format!("reading {}: {err}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|err| ServiceError::Io(format!("{}: {err}", path.display())))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(path, text)
            .map_err(|err| ServiceError::Io(format!("writing {}: {err}", path.display())))
    }
}
