//! Cryptographic operations in progress on a session: how each mechanism feeds its input (hash as it
//! goes, or keep the bytes) and what it does at the end. Keys are resolved at `*Init`, so the
//! single-part and final calls do no lookup, parsing or key derivation.

use super::{hash_of, mgf_hash, mgf_of, Mechanism, Param};
use crate::attr::AttrMapExt;
use crate::crypto::asym::{PrivateKey, PublicKey, RsaCipher, SignScheme};
use crate::crypto::symmetric::{self, Hmac};
use crate::crypto::{HashAlg, Hasher};
use crate::error::{Error, Result};
use crate::object::{keys, Object};
use crate::token::Entry;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How input accumulates.
enum Input {
    Hash(Hasher),
    Buffer(Zeroizing<Vec<u8>>),
    Mac(Box<Hmac>),
}

impl Input {
    fn update(&mut self, data: &[u8]) {
        match self {
            Input::Hash(h) => h.update(data),
            Input::Buffer(b) => b.extend_from_slice(data),
            Input::Mac(m) => m.update(data),
        }
    }
}

enum SignKey {
    Private(Arc<PrivateKey>, SignScheme),
    /// A key in the Cryptera service: the digest (or Ed25519 message) is sent there.
    Remote(Arc<crate::remote::RemoteKey>, SignScheme),
    Public(PublicKey, SignScheme),
    Secret,
}

/// What a finished signing operation hands back.
pub struct SignOutput {
    pub signature: Vec<u8>,
    /// SHA-256 of the signed data, when the mechanism computed it.
    pub digest: Option<[u8; 32]>,
    /// The Cryptera service's signing request id, for a remote key.
    pub request_id: Option<String>,
}

/// A sign or verify operation.
pub struct SignOp {
    key: SignKey,
    input: Input,
    /// The raw-input mechanisms (`CKM_RSA_PKCS`, `CKM_ECDSA`...) take a bounded input.
    max_input: Option<usize>,
    pub needs_context_login: bool,
}

fn check_key(object: &Object, kind: CK_MECHANISM_TYPE, usage: CK_ATTRIBUTE_TYPE) -> Result<()> {
    if !object.attrs.flag(usage) {
        return Err(Error::KeyFunctionNotPermitted);
    }
    if !object.allows_mechanism(kind) {
        return Err(Error::MechanismInvalid);
    }
    Ok(())
}

fn pss_scheme(mechanism: &Mechanism, expected_hash: Option<HashAlg>) -> Result<SignScheme> {
    let Param::Pss {
        hash,
        mgf,
        salt_len,
    } = mechanism.param
    else {
        return Err(Error::MechanismParamInvalid);
    };
    let hash = hash_of(hash).ok_or(Error::MechanismParamInvalid)?;
    let mgf = mgf_hash(mgf).ok_or(Error::MechanismParamInvalid)?;
    if expected_hash.is_some_and(|h| h != hash) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(SignScheme::RsaPss {
        hash,
        mgf,
        salt_len,
    })
}

/// The scheme and input handling of an asymmetric signing mechanism.
fn asym_scheme(
    mechanism: &Mechanism,
    key_type: CK_KEY_TYPE,
) -> Result<(SignScheme, Input, Option<usize>)> {
    let hashed = |h: HashAlg| Input::Hash(h.hasher());
    let buffer = || Input::Buffer(Zeroizing::new(Vec::new()));
    let (scheme, input, max) = match (mechanism.kind, key_type) {
        (CKM_RSA_PKCS, CKK_RSA) => (SignScheme::RsaPkcs1DigestInfo, buffer(), Some(1024)),
        (CKM_SHA1_RSA_PKCS, CKK_RSA) => (
            SignScheme::RsaPkcs1(HashAlg::Sha1),
            hashed(HashAlg::Sha1),
            None,
        ),
        (CKM_SHA224_RSA_PKCS, CKK_RSA) => (
            SignScheme::RsaPkcs1(HashAlg::Sha224),
            hashed(HashAlg::Sha224),
            None,
        ),
        (CKM_SHA256_RSA_PKCS, CKK_RSA) => (
            SignScheme::RsaPkcs1(HashAlg::Sha256),
            hashed(HashAlg::Sha256),
            None,
        ),
        (CKM_SHA384_RSA_PKCS, CKK_RSA) => (
            SignScheme::RsaPkcs1(HashAlg::Sha384),
            hashed(HashAlg::Sha384),
            None,
        ),
        (CKM_SHA512_RSA_PKCS, CKK_RSA) => (
            SignScheme::RsaPkcs1(HashAlg::Sha512),
            hashed(HashAlg::Sha512),
            None,
        ),
        (CKM_RSA_PKCS_PSS, CKK_RSA) => {
            let scheme = pss_scheme(mechanism, None)?;
            let SignScheme::RsaPss { hash, .. } = scheme else {
                return Err(Error::MechanismParamInvalid);
            };
            (scheme, buffer(), Some(hash.output_len()))
        }
        (
            CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS,
            CKK_RSA,
        ) => {
            let hash = match mechanism.kind {
                CKM_SHA224_RSA_PKCS_PSS => HashAlg::Sha224,
                CKM_SHA256_RSA_PKCS_PSS => HashAlg::Sha256,
                CKM_SHA384_RSA_PKCS_PSS => HashAlg::Sha384,
                _ => HashAlg::Sha512,
            };
            (pss_scheme(mechanism, Some(hash))?, hashed(hash), None)
        }
        (CKM_ECDSA, CKK_EC) => (SignScheme::Ecdsa, buffer(), Some(1024)),
        (CKM_ECDSA_SHA1, CKK_EC) => (SignScheme::Ecdsa, hashed(HashAlg::Sha1), None),
        (CKM_ECDSA_SHA224, CKK_EC) => (SignScheme::Ecdsa, hashed(HashAlg::Sha224), None),
        (CKM_ECDSA_SHA256, CKK_EC) => (SignScheme::Ecdsa, hashed(HashAlg::Sha256), None),
        (CKM_ECDSA_SHA384, CKK_EC) => (SignScheme::Ecdsa, hashed(HashAlg::Sha384), None),
        (CKM_ECDSA_SHA512, CKK_EC) => (SignScheme::Ecdsa, hashed(HashAlg::Sha512), None),
        (CKM_EDDSA, CKK_EC_EDWARDS) => (SignScheme::Ed25519, buffer(), None),
        (
            CKM_RSA_PKCS
            | CKM_SHA1_RSA_PKCS
            | CKM_SHA256_RSA_PKCS
            | CKM_SHA384_RSA_PKCS
            | CKM_SHA512_RSA_PKCS
            | CKM_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
            | CKM_ECDSA
            | CKM_ECDSA_SHA1
            | CKM_ECDSA_SHA224
            | CKM_ECDSA_SHA256
            | CKM_ECDSA_SHA384
            | CKM_ECDSA_SHA512
            | CKM_EDDSA,
            _,
        ) => return Err(Error::KeyTypeInconsistent),
        _ => return Err(Error::MechanismInvalid),
    };
    if !matches!(mechanism.param, Param::None) && !matches!(scheme, SignScheme::RsaPss { .. }) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok((scheme, input, max))
}

fn hmac_hash(kind: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    match kind {
        CKM_SHA256_HMAC => Some(HashAlg::Sha256),
        CKM_SHA384_HMAC => Some(HashAlg::Sha384),
        CKM_SHA512_HMAC => Some(HashAlg::Sha512),
        _ => None,
    }
}

fn secret_value(object: &Object) -> Result<&[u8]> {
    object.attrs.bytes(CKA_VALUE).ok_or(Error::UserNotLoggedIn)
}

impl SignOp {
    /// Starts signing (`verify == false`) or verifying with the key in `entry`.
    pub fn new(mechanism: &Mechanism, entry: &Entry, verify: bool) -> Result<SignOp> {
        let object = &entry.object;
        let usage = if verify { CKA_VERIFY } else { CKA_SIGN };
        let key_type = object.key_type().ok_or(Error::KeyTypeInconsistent)?;
        if let Some(hash) = hmac_hash(mechanism.kind) {
            if object.class() != CKO_SECRET_KEY || key_type != CKK_GENERIC_SECRET {
                return Err(Error::KeyTypeInconsistent);
            }
            check_key(object, mechanism.kind, usage)?;
            let mac = Hmac::new(hash, secret_value(object)?);
            return Ok(SignOp {
                key: SignKey::Secret,
                input: Input::Mac(Box::new(mac)),
                max_input: None,
                needs_context_login: false,
            });
        }
        let (scheme, input, max_input) = asym_scheme(mechanism, key_type)?;
        let expected_class = if verify {
            CKO_PUBLIC_KEY
        } else {
            CKO_PRIVATE_KEY
        };
        if object.class() != expected_class {
            return Err(Error::KeyTypeInconsistent);
        }
        check_key(object, mechanism.kind, usage)?;
        let key = if verify {
            SignKey::Public(keys::public_key(object)?, scheme)
        } else if let Some(remote) = &entry.remote {
            crate::remote::check_scheme(mechanism.kind, scheme)?;
            SignKey::Remote(remote.clone(), scheme)
        } else {
            SignKey::Private(
                entry.private_key().map_err(|_| Error::UserNotLoggedIn)?,
                scheme,
            )
        };
        let needs_context_login = !verify && object.attrs.flag(CKA_ALWAYS_AUTHENTICATE);
        Ok(SignOp {
            key,
            input,
            max_input,
            needs_context_login,
        })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        if let (Input::Buffer(buffer), Some(max)) = (&self.input, self.max_input) {
            if buffer.len() + data.len() > max {
                return Err(Error::DataLenRange);
            }
        }
        self.input.update(data);
        Ok(())
    }

    fn message(self) -> Result<(SignKey, Zeroizing<Vec<u8>>, Option<Hmac>)> {
        match self.input {
            Input::Hash(h) => Ok((self.key, Zeroizing::new(h.finish()), None)),
            Input::Buffer(b) => Ok((self.key, b, None)),
            Input::Mac(m) => Ok((self.key, Zeroizing::new(Vec::new()), Some(*m))),
        }
    }

    /// Whether the mechanism itself hashes its input with SHA-256 (so the audit record can reuse that
    /// digest rather than hash the data a second time).
    pub fn hashes_with_sha256(&self) -> bool {
        matches!(&self.input, Input::Hash(h) if h.alg() == HashAlg::Sha256)
    }

    /// The signature, the SHA-256 of the input when the mechanism computed it anyway, and for a remote
    /// key the service's request id.
    pub fn sign(self) -> Result<SignOutput> {
        let sha256 = self.hashes_with_sha256();
        let digest_of = |input: &[u8]| if sha256 { input.try_into().ok() } else { None };
        match self.message()? {
            (SignKey::Remote(key, scheme), input, _) => {
                let (signature, request_id) = key.sign(scheme, &input)?;
                Ok(SignOutput {
                    signature,
                    digest: digest_of(&input),
                    request_id: Some(request_id),
                })
            }
            (SignKey::Private(key, scheme), input, _) => Ok(SignOutput {
                signature: key.sign(scheme, &input)?,
                digest: digest_of(&input),
                request_id: None,
            }),
            (SignKey::Secret, _, Some(mac)) => Ok(SignOutput {
                signature: mac.finish(),
                digest: None,
                request_id: None,
            }),
            _ => Err(Error::KeyFunctionNotPermitted),
        }
    }

    pub fn verify(self, signature: &[u8]) -> Result<()> {
        match self.message()? {
            (SignKey::Public(key, scheme), input, _) => key.verify(scheme, &input, signature),
            (SignKey::Secret, _, Some(mac)) => {
                let expected = mac.finish();
                if signature.len() != expected.len() {
                    return Err(Error::SignatureLenRange);
                }
                if crate::crypto::ct_eq(&expected, signature) {
                    Ok(())
                } else {
                    Err(Error::SignatureInvalid)
                }
            }
            _ => Err(Error::KeyFunctionNotPermitted),
        }
    }
}

/// A digest operation.
pub struct DigestOp(Hasher);

impl DigestOp {
    pub fn new(mechanism: &Mechanism) -> Result<DigestOp> {
        if mechanism.param != Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(DigestOp(
            hash_of(mechanism.kind)
                .ok_or(Error::MechanismInvalid)?
                .hasher(),
        ))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.finish()
    }

    /// `C_DigestKey`: feeds a secret key's value.
    pub fn update_key(&mut self, object: &Object) -> Result<()> {
        if object.class() != CKO_SECRET_KEY {
            return Err(Error::KeyHandleInvalid);
        }
        self.0.update(secret_value(object)?);
        Ok(())
    }
}

enum CipherKey {
    Secret(Zeroizing<Vec<u8>>),
    RsaPublic(PublicKey),
    RsaPrivate(Arc<PrivateKey>),
}

/// An encrypt or decrypt operation; input is gathered and processed at the end.
pub struct CipherOp {
    mechanism: Mechanism,
    key: CipherKey,
    input: Zeroizing<Vec<u8>>,
}

impl CipherOp {
    pub fn new(mechanism: &Mechanism, entry: &Entry, decrypt: bool) -> Result<CipherOp> {
        let object = &entry.object;
        let usage = if decrypt { CKA_DECRYPT } else { CKA_ENCRYPT };
        CipherOp::with_usage(mechanism, entry, decrypt, usage)
            .and_then(|op| check_key(object, mechanism.kind, usage).map(|_| op))
    }

    /// Builds the operation without checking usage flags (wrap and unwrap check their own).
    pub fn with_usage(
        mechanism: &Mechanism,
        entry: &Entry,
        decrypt: bool,
        _usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<CipherOp> {
        let object = &entry.object;
        let key_type = object.key_type().ok_or(Error::KeyTypeInconsistent)?;
        let key = match (mechanism.kind, key_type) {
            (CKM_AES_GCM | CKM_AES_CBC_PAD | CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_PAD, CKK_AES) => {
                match (&mechanism.kind, &mechanism.param) {
                    (&CKM_AES_GCM, Param::Gcm { iv, tag_bits, .. }) => {
                        if iv.len() != symmetric::GCM_IV_LEN || *tag_bits != 128 {
                            return Err(Error::MechanismParamInvalid);
                        }
                    }
                    (&CKM_AES_CBC_PAD, Param::Iv(iv)) if iv.len() == symmetric::AES_BLOCK => {}
                    (&CKM_AES_KEY_WRAP | &CKM_AES_KEY_WRAP_PAD, Param::None) => {}
                    _ => return Err(Error::MechanismParamInvalid),
                }
                CipherKey::Secret(Zeroizing::new(secret_value(object)?.to_vec()))
            }
            (CKM_RSA_PKCS | CKM_RSA_PKCS_OAEP, CKK_RSA) => {
                if let Param::Oaep { hash, mgf, .. } = &mechanism.param {
                    let hash = hash_of(*hash).ok_or(Error::MechanismParamInvalid)?;
                    if *mgf != mgf_of(hash) || mechanism.kind != CKM_RSA_PKCS_OAEP {
                        return Err(Error::MechanismParamInvalid);
                    }
                } else if mechanism.kind == CKM_RSA_PKCS_OAEP || mechanism.param != Param::None {
                    return Err(Error::MechanismParamInvalid);
                }
                if decrypt {
                    if object.class() != CKO_PRIVATE_KEY {
                        return Err(Error::KeyTypeInconsistent);
                    }
                    if entry.remote.is_some() {
                        // A service key only signs.
                        return Err(Error::KeyFunctionNotPermitted);
                    }
                    CipherKey::RsaPrivate(entry.private_key().map_err(|_| Error::UserNotLoggedIn)?)
                } else {
                    if object.class() != CKO_PUBLIC_KEY {
                        return Err(Error::KeyTypeInconsistent);
                    }
                    CipherKey::RsaPublic(keys::public_key(object)?)
                }
            }
            (
                CKM_AES_GCM | CKM_AES_CBC_PAD | CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_PAD
                | CKM_RSA_PKCS | CKM_RSA_PKCS_OAEP,
                _,
            ) => return Err(Error::KeyTypeInconsistent),
            _ => return Err(Error::MechanismInvalid),
        };
        Ok(CipherOp {
            mechanism: mechanism.clone(),
            key,
            input: Zeroizing::new(Vec::new()),
        })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        if self.input.len() + data.len() > 1 << 30 {
            return Err(Error::DataLenRange);
        }
        self.input.extend_from_slice(data);
        Ok(())
    }

    fn rsa_cipher(&self) -> Result<(RsaCipher, Option<&[u8]>)> {
        match &self.mechanism.param {
            Param::Oaep { hash, label, .. } => {
                let hash = hash_of(*hash).ok_or(Error::MechanismParamInvalid)?;
                Ok((
                    RsaCipher::Oaep(hash),
                    if label.is_empty() {
                        None
                    } else {
                        Some(label.as_slice())
                    },
                ))
            }
            _ => Ok((RsaCipher::Pkcs1, None)),
        }
    }

    pub fn encrypt(self) -> Result<Vec<u8>> {
        match (&self.key, &self.mechanism.param) {
            (CipherKey::Secret(key), Param::Gcm { iv, aad, .. }) => {
                symmetric::gcm_encrypt(key, iv, aad, &self.input)
            }
            (CipherKey::Secret(key), Param::Iv(iv)) => {
                symmetric::cbc_pad_encrypt(key, iv, &self.input)
            }
            (CipherKey::Secret(key), Param::None) if self.mechanism.kind == CKM_AES_KEY_WRAP => {
                symmetric::key_wrap(key, &self.input)
            }
            (CipherKey::Secret(key), Param::None) => symmetric::key_wrap_pad(key, &self.input),
            (CipherKey::RsaPublic(key), _) => {
                let (cipher, label) = self.rsa_cipher()?;
                key.encrypt(cipher, label, &self.input)
            }
            _ => Err(Error::KeyFunctionNotPermitted),
        }
    }

    pub fn decrypt(self) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.key, &self.mechanism.param) {
            (CipherKey::Secret(key), Param::Gcm { iv, aad, .. }) => {
                symmetric::gcm_decrypt(key, iv, aad, &self.input)
            }
            (CipherKey::Secret(key), Param::Iv(iv)) => {
                symmetric::cbc_pad_decrypt(key, iv, &self.input)
            }
            (CipherKey::Secret(key), Param::None) if self.mechanism.kind == CKM_AES_KEY_WRAP => {
                symmetric::key_unwrap(key, &self.input)
            }
            (CipherKey::Secret(key), Param::None) => symmetric::key_unwrap_pad(key, &self.input),
            (CipherKey::RsaPrivate(key), _) => {
                let (cipher, label) = self.rsa_cipher()?;
                key.decrypt(cipher, label, &self.input)
            }
            _ => Err(Error::KeyFunctionNotPermitted),
        }
    }
}
