//! The token side of `cryptera-pkcs11 enroll` and `renew`, through the `cryptoki` crate: load a
//! PKCS#11 module (ours by default), pick the slot, log in, find the key pair by label or `CKA_ID`,
//! sign with it, and read, write and destroy its certificate objects.

use crate::csr::{KeyAttributes, Scheme};
use crate::enroll::Failure;
use cryptera_pkcs11::crypto::asym::Curve;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::Path;
use zeroize::Zeroizing;

/// Which token: by label, by slot number, or the only one there is.
pub enum TokenChoice {
    Label(String),
    Slot(u64),
    Only,
}

/// Which key: by `CKA_LABEL` or by `CKA_ID`.
pub enum KeyChoice {
    Label(String),
    Id(Vec<u8>),
}

/// A logged-in read/write session on the chosen token.
pub struct Token {
    session: Session,
    pub label: String,
    // Kept last: the module is finalised after the session closes.
    _pkcs11: Pkcs11,
}

/// The private key to enrol and what the request needs from it.
pub struct Key {
    pub handle: ObjectHandle,
    pub id: Vec<u8>,
    pub label: String,
    pub attributes: KeyAttributes,
}

/// A certificate object on the token.
pub struct CertObject {
    pub handle: ObjectHandle,
    pub der: Vec<u8>,
}

/// A PKCS#11 failure in one line: the return value's name (cryptoki's own text is a paragraph).
fn p11(what: &str, err: P11Error) -> Failure {
    match err {
        P11Error::Pkcs11(rv, _) => Failure::token(format!("{what}: {rv:?}")),
        other => Failure::token(format!("{what}: {other}")),
    }
}

fn rv(err: &P11Error) -> Option<RvError> {
    match err {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

impl Token {
    pub fn open(
        module: &Path,
        choice: &TokenChoice,
        pin: Option<Zeroizing<String>>,
    ) -> Result<Token, Failure> {
        let pkcs11 = Pkcs11::new(module).map_err(|e| {
            Failure::usage(format!(
                "cannot load the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| p11("C_Initialize", e))?;
        let slot = find_slot(&pkcs11, choice)?;
        let info = pkcs11
            .get_token_info(slot)
            .map_err(|e| p11("C_GetTokenInfo", e))?;
        let label = info.label().trim_end().to_string();
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(|e| p11(&format!("opening a session on token {label:?}"), e))?;
        let pin = match pin {
            Some(pin) => Some(AuthPin::new(pin.as_str().into())),
            None if info.protected_authentication_path() => None,
            None => {
                return Err(Failure::usage(format!(
                    "token {label:?} needs a PIN: give --pin-file FILE or set CRYPTERA_PIN"
                )))
            }
        };
        match session.login(UserType::User, pin.as_ref()) {
            Ok(()) => {}
            Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) => {
                let why = match rv(&e) {
                    Some(RvError::PinIncorrect) => "wrong PIN (CKR_PIN_INCORRECT)".to_string(),
                    Some(RvError::PinLocked) => {
                        "the PIN is locked after too many wrong tries (CKR_PIN_LOCKED)".into()
                    }
                    Some(RvError::PinExpired) => "the PIN or access token has expired".into(),
                    Some(RvError::PinLenRange) => "the PIN has the wrong length".into(),
                    _ => e.to_string(),
                };
                return Err(Failure::login(format!(
                    "login to token {label:?} failed: {why}"
                )));
            }
        }
        Ok(Token {
            session,
            label,
            _pkcs11: pkcs11,
        })
    }

    fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>, Failure> {
        self.session
            .find_objects(template)
            .map_err(|e| p11("C_FindObjects", e))
    }

    fn bytes(&self, handle: ObjectHandle, kind: AttributeType) -> Result<Vec<u8>, Failure> {
        let attributes = self
            .session
            .get_attributes(handle, &[kind])
            .map_err(|e| p11("C_GetAttributeValue", e))?;
        Ok(attributes
            .into_iter()
            .find_map(|attribute| match attribute {
                Attribute::Id(v)
                | Attribute::Label(v)
                | Attribute::Value(v)
                | Attribute::Modulus(v)
                | Attribute::PublicExponent(v)
                | Attribute::EcParams(v)
                | Attribute::EcPoint(v)
                | Attribute::PublicKeyInfo(v) => Some(v),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// The private key named by `choice`, with its public key's attributes (from the public key
    /// object with the same `CKA_ID`, else the private key's `CKA_PUBLIC_KEY_INFO`).
    pub fn key(&self, choice: &KeyChoice) -> Result<Key, Failure> {
        let (selector, what) = match choice {
            KeyChoice::Label(label) => (
                Attribute::Label(label.as_bytes().to_vec()),
                format!("label {label:?}"),
            ),
            KeyChoice::Id(id) => (Attribute::Id(id.clone()), format!("CKA_ID {}", hex(id))),
        };
        let found = self.find(&[Attribute::Class(ObjectClass::PRIVATE_KEY), selector])?;
        let handle = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(Failure::key(format!(
                    "no private key with {what} on token {:?}",
                    self.label
                )))
            }
            more => {
                return Err(Failure::key(format!(
                    "{} private keys with {what} on token {:?}: name one by --key-id",
                    more.len(),
                    self.label
                )))
            }
        };
        let id = self.bytes(handle, AttributeType::Id)?;
        if id.is_empty() {
            return Err(Failure::key(format!(
                "the private key with {what} has no CKA_ID to link its certificate to: give it one"
            )));
        }
        let label =
            String::from_utf8_lossy(&self.bytes(handle, AttributeType::Label)?).into_owned();
        let key_type = self
            .session
            .get_attributes(handle, &[AttributeType::KeyType])
            .map_err(|e| p11("C_GetAttributeValue", e))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::KeyType(t) => Some(t),
                _ => None,
            });
        let public = self
            .find(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.clone()),
            ])?
            .first()
            .copied();
        let attributes = match (public, key_type) {
            (Some(public), Some(KeyType::RSA)) => KeyAttributes::Rsa {
                modulus: self.bytes(public, AttributeType::Modulus)?,
                public_exponent: self.bytes(public, AttributeType::PublicExponent)?,
            },
            (Some(public), Some(KeyType::EC | KeyType::EC_EDWARDS)) => KeyAttributes::Ec {
                params: self.bytes(public, AttributeType::EcParams)?,
                point: self.bytes(public, AttributeType::EcPoint)?,
            },
            _ => {
                let spki = self.bytes(handle, AttributeType::PublicKeyInfo)?;
                if spki.is_empty() {
                    return Err(Failure::key(format!(
                        "no public key with the CKA_ID {} of the private key with {what}",
                        hex(&id)
                    )));
                }
                KeyAttributes::Spki(spki)
            }
        };
        Ok(Key {
            handle,
            id,
            label,
            attributes,
        })
    }

    /// Signs `data` with the key (`C_Sign`).
    pub fn sign(&self, key: &Key, scheme: Scheme, data: &[u8]) -> Result<Vec<u8>, Failure> {
        let mechanism = match scheme {
            Scheme::RsaSha256 => Mechanism::Sha256RsaPkcs,
            Scheme::Ecdsa(Curve::P256) => Mechanism::EcdsaSha256,
            Scheme::Ecdsa(Curve::P384) => Mechanism::EcdsaSha384,
            Scheme::Ecdsa(Curve::P521) => Mechanism::EcdsaSha512,
            Scheme::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        };
        self.session
            .sign(&mechanism, key.handle, data)
            .map_err(|e| p11("signing the request on the token (C_Sign)", e))
    }

    /// The token's X.509 certificate objects with this `CKA_ID`.
    pub fn certificates(&self, id: &[u8]) -> Result<Vec<CertObject>, Failure> {
        let found = self.find(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Id(id.to_vec()),
        ])?;
        found
            .into_iter()
            .map(|handle| {
                Ok(CertObject {
                    handle,
                    der: self.bytes(handle, AttributeType::Value)?,
                })
            })
            .collect()
    }

    /// The certificate objects holding exactly this certificate.
    pub fn holding(&self, der: &[u8]) -> Result<Vec<ObjectHandle>, Failure> {
        self.find(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Value(der.to_vec()),
        ])
    }

    /// Writes a certificate as a token object (`C_CreateObject`).
    pub fn write_certificate(
        &self,
        der: &[u8],
        id: &[u8],
        label: &str,
        fields: &cryptera_pkcs11::crypto::der::CertificateFields,
    ) -> Result<(), Failure> {
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Subject(fields.subject.clone()),
            Attribute::Issuer(fields.issuer.clone()),
            Attribute::SerialNumber(fields.serial_number.clone()),
            Attribute::Value(der.to_vec()),
        ];
        self.session
            .create_object(&template)
            .map(|_| ())
            .map_err(|e| {
                p11(
                    &format!("writing the certificate {label:?} (C_CreateObject)"),
                    e,
                )
            })
    }

    pub fn destroy(&self, handle: ObjectHandle) -> Result<(), Failure> {
        self.session
            .destroy_object(handle)
            .map_err(|e| p11("removing the old certificate (C_DestroyObject)", e))
    }
}

fn find_slot(pkcs11: &Pkcs11, choice: &TokenChoice) -> Result<Slot, Failure> {
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(|e| p11("C_GetSlotList", e))?;
    let mut labelled = Vec::new();
    for slot in slots {
        let label = pkcs11
            .get_token_info(slot)
            .map(|info| info.label().trim_end().to_string())
            .unwrap_or_default();
        labelled.push((slot, label));
    }
    let names = || {
        labelled
            .iter()
            .map(|(slot, label)| format!("slot {} {label:?}", slot.id()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found: Vec<Slot> = match choice {
        TokenChoice::Label(want) => labelled
            .iter()
            .filter(|(_, label)| label == want)
            .map(|(slot, _)| *slot)
            .collect(),
        TokenChoice::Slot(want) => labelled
            .iter()
            .filter(|(slot, _)| slot.id() == *want)
            .map(|(slot, _)| *slot)
            .collect(),
        TokenChoice::Only => labelled.iter().map(|(slot, _)| *slot).collect(),
    };
    match (found.as_slice(), choice) {
        ([one], _) => Ok(*one),
        ([], TokenChoice::Only) => Err(Failure::key("the module has no initialised token".into())),
        ([], _) => Err(Failure::key(format!(
            "no such token; the module has: {}",
            names()
        ))),
        (_, _) => Err(Failure::usage(format!(
            "several tokens match; name one with --token-label or --slot: {}",
            names()
        ))),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
