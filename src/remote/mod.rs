//! The remote token backend: keys that live in the Cryptera service. This module turns the service's
//! key list into PKCS#11 objects and forwards signatures; the token layer keeps handles, login state
//! and the search index exactly as for local tokens (see docs/remote-protocol.md).

pub mod client;
pub mod context;

use crate::attr::{bool_value, ulong_value, Template};
use crate::config::RemoteConfig;
use crate::crypto::asym::{Curve, PublicKey, SignScheme};
use crate::crypto::der::{self as enc, OID_ED25519, OID_P256, OID_P384};
use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use crate::object::{build, keys, Object, Origin};
use client::{Client, Payload};
use cryptera_proto::keys::{KeyAlgorithm, KeyInfo, Mechanism};
use cryptoki_sys::*;
use der::asn1::ObjectIdentifier;
use der::Decode;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A remote token's connection and credential.
pub struct Remote {
    pub config: RemoteConfig,
    pub client: Client,
    access_token: Mutex<Option<Zeroizing<String>>>,
}

/// A service key behind a private key object.
pub struct RemoteKey {
    pub id: String,
    pub remote: Arc<Remote>,
}

impl Remote {
    pub fn new(config: RemoteConfig) -> Result<Remote> {
        let client = Client::new(&config)?;
        Ok(Remote {
            config,
            client,
            access_token: Mutex::new(None),
        })
    }

    /// Whether the configuration says where to find an access token (`token_env`, `token_file`).
    pub fn has_configured_credential(&self) -> bool {
        self.config.token_env.is_some() || self.config.token_file.is_some()
    }

    /// The access token the configuration points to, if it names one: the environment variable
    /// first, then the file (which must be readable by its owner only).
    pub fn configured_credential(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(name) = &self.config.token_env {
            if let Ok(value) = std::env::var(name) {
                let value = Zeroizing::new(value);
                if !value.trim().is_empty() {
                    return Ok(Some(Zeroizing::new(value.trim().to_string())));
                }
            }
        }
        let Some(path) = &self.config.token_file else {
            return Ok(None);
        };
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::Device(format!("access token file {}: {e}", path.display())))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(Error::Device(format!(
                "access token file {} is readable by others: chmod 600 it",
                path.display()
            )));
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Error::Device(format!("access token file {}: {e}", path.display()))
            })?);
        Ok(Some(Zeroizing::new(text.trim().to_string())).filter(|t| !t.is_empty()))
    }

    /// The access token to log in with: the PIN, or (empty PIN) the configured one.
    pub fn credential(&self, pin: &[u8]) -> Result<Zeroizing<String>> {
        if pin.is_empty() {
            return self.configured_credential()?.ok_or(Error::PinIncorrect);
        }
        String::from_utf8(pin.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| Error::PinInvalid)
    }

    pub fn set_access_token(&self, token: Option<Zeroizing<String>>) {
        if let Ok(mut slot) = self.access_token.lock() {
            *slot = token;
        }
    }

    pub fn access_token(&self) -> Result<Zeroizing<String>> {
        self.access_token
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .ok_or(Error::UserNotLoggedIn)
    }
}

/// The service algorithm a `C_GenerateKeyPair` asks for.
pub fn algorithm_for(
    mechanism: CK_MECHANISM_TYPE,
    public: &Template,
    private: &Template,
) -> Result<KeyAlgorithm> {
    match mechanism {
        CKM_RSA_PKCS_KEY_PAIR_GEN => match public
            .ulong(CKA_MODULUS_BITS)?
            .ok_or(Error::TemplateIncomplete)?
        {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            _ => Err(Error::KeySizeRange),
        },
        CKM_EC_KEY_PAIR_GEN | CKM_EC_EDWARDS_KEY_PAIR_GEN => {
            let params = public
                .get(CKA_EC_PARAMS)
                .or(private.get(CKA_EC_PARAMS))
                .ok_or(Error::TemplateIncomplete)?;
            match (mechanism, enc::parse_ec_params(params)?) {
                (CKM_EC_KEY_PAIR_GEN, enc::EcParams::Weierstrass(Curve::P256)) => {
                    Ok(KeyAlgorithm::EcdsaP256)
                }
                (CKM_EC_KEY_PAIR_GEN, enc::EcParams::Weierstrass(Curve::P384)) => {
                    Ok(KeyAlgorithm::EcdsaP384)
                }
                (CKM_EC_EDWARDS_KEY_PAIR_GEN, enc::EcParams::Ed25519) => Ok(KeyAlgorithm::Ed25519),
                (CKM_EC_KEY_PAIR_GEN, enc::EcParams::Weierstrass(_)) => {
                    Err(Error::CurveNotSupported)
                }
                _ => Err(Error::TemplateInconsistent),
            }
        }
        _ => Err(Error::MechanismInvalid),
    }
}

/// `CKA_ID` of a service key: SHA-1 of its id, the 20 bytes tools expect.
pub fn key_ckaid(key_id: &str) -> Vec<u8> {
    HashAlg::Sha1.hash(key_id.as_bytes())
}

fn public_key_of(spki_der: &[u8]) -> Result<PublicKey> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|_| Error::Device("bad public key from the service".into()))?;
    let bits = spki.subject_public_key.raw_bytes();
    const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    match spki.algorithm.oid {
        RSA => {
            let key = pkcs1::RsaPublicKey::from_der(bits)
                .map_err(|_| Error::Device("bad RSA key".into()))?;
            Ok(PublicKey::Rsa {
                modulus: key.modulus.as_bytes().to_vec(),
                public_exponent: key.public_exponent.as_bytes().to_vec(),
            })
        }
        EC => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or(Error::Device("EC key without a named curve".into()))?;
            let curve = match curve {
                OID_P256 => Curve::P256,
                OID_P384 => Curve::P384,
                _ => return Err(Error::CurveNotSupported),
            };
            Ok(PublicKey::Ec {
                curve,
                point: bits.to_vec(),
            })
        }
        OID_ED25519 => Ok(PublicKey::Ed25519 {
            point: bits.to_vec(),
        }),
        _ => Err(Error::Device(
            "unknown key algorithm from the service".into(),
        )),
    }
}

fn key_type(algorithm: KeyAlgorithm) -> (CK_KEY_TYPE, CK_MECHANISM_TYPE) {
    match algorithm {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            (CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN)
        }
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => (CKK_EC, CKM_EC_KEY_PAIR_GEN),
        KeyAlgorithm::Ed25519 => (CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN),
    }
}

/// The objects of one service key: its private key (never extractable), its public key, and its
/// certificate chain (leaf first; the leaf carries the key's `CKA_ID`).
pub fn objects(info: &KeyInfo) -> Result<(Object, Vec<Object>)> {
    let public = public_key_of(info.public_key.as_slice())?;
    let (key_type, mechanism) = key_type(info.algorithm);
    let id = key_ckaid(&info.id);
    let label = info.label.as_bytes().to_vec();
    let common = |private: bool| {
        Template::new()
            .with(CKA_TOKEN, bool_value(true))
            .with(CKA_PRIVATE, bool_value(private))
            .with(CKA_MODIFIABLE, bool_value(false))
            .with(CKA_DESTROYABLE, bool_value(false))
            .with(CKA_LABEL, label.clone())
            .with(CKA_ID, id.clone())
    };
    let private_template = common(true)
        .with(CKA_SIGN, bool_value(true))
        .with(CKA_DECRYPT, bool_value(false))
        .with(CKA_UNWRAP, bool_value(false))
        .with(CKA_DERIVE, bool_value(false))
        .with(CKA_SENSITIVE, bool_value(true))
        .with(CKA_EXTRACTABLE, bool_value(false));
    let private = build(
        CKO_PRIVATE_KEY,
        Some(key_type),
        &private_template,
        Origin::Generated(mechanism),
        keys::public_material(&public, true)?,
    )?;
    let public_template = common(false)
        .with(CKA_VERIFY, bool_value(true))
        .with(CKA_ENCRYPT, bool_value(key_type == CKK_RSA))
        .with(CKA_WRAP, bool_value(false));
    let mut others = vec![build(
        CKO_PUBLIC_KEY,
        Some(key_type),
        &public_template,
        Origin::Generated(mechanism),
        keys::public_material(&public, false)?,
    )?];
    for (index, certificate) in info.certificates.iter().enumerate() {
        let der = certificate.as_slice();
        // The leaf shares the key's CKA_ID and label; each CA certificate gets its own, so clients
        // that name entries by label (Java's SunPKCS11) see one entry per key.
        let (cert_id, cert_label) = if index == 0 {
            (id.clone(), label.clone())
        } else {
            (
                HashAlg::Sha1.hash(der),
                format!("{} chain {index}", info.label).into_bytes(),
            )
        };
        let template = Template::new()
            .with(CKA_CLASS, ulong_value(CKO_CERTIFICATE))
            .with(CKA_CERTIFICATE_TYPE, ulong_value(CKC_X_509))
            .with(CKA_TOKEN, bool_value(true))
            .with(CKA_MODIFIABLE, bool_value(false))
            .with(CKA_LABEL, cert_label)
            .with(CKA_ID, cert_id)
            .with(CKA_VALUE, der.to_vec());
        others.push(keys::create(&template)?);
    }
    Ok((private, others))
}

/// Mechanisms the local engine offers that the service does not sign with: the remote slot leaves
/// them out of its mechanism list and refuses them at `C_SignInit`.
pub const NOT_IN_SERVICE: [CK_MECHANISM_TYPE; 6] = [
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA512,
];

/// Checks at `C_SignInit` that the service can make this signature: SHA-256/384/512 only, and PSS
/// with the hash's own MGF1 and a salt of the hash's length.
pub fn check_scheme(kind: CK_MECHANISM_TYPE, scheme: SignScheme) -> Result<()> {
    let sha2 = |hash: HashAlg| matches!(hash, HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512);
    if NOT_IN_SERVICE.contains(&kind) {
        return Err(Error::MechanismInvalid);
    }
    match scheme {
        SignScheme::RsaPkcs1(hash) if !sha2(hash) => Err(Error::MechanismInvalid),
        SignScheme::RsaPss {
            hash,
            mgf,
            salt_len,
        } if !sha2(hash) || mgf != hash || salt_len != hash.output_len() => {
            Err(Error::MechanismParamInvalid)
        }
        _ => Ok(()),
    }
}

impl RemoteKey {
    /// Signs what the mechanism layer prepared (a digest, a DigestInfo, or the Ed25519 message);
    /// returns the signature and the service's request id.
    pub fn sign(&self, scheme: SignScheme, input: &[u8]) -> Result<(Vec<u8>, String)> {
        let digest_mechanism = |hash: HashAlg, pss: bool| match (hash, pss) {
            (HashAlg::Sha256, false) => Ok(Mechanism::RsaPkcs1Sha256),
            (HashAlg::Sha384, false) => Ok(Mechanism::RsaPkcs1Sha384),
            (HashAlg::Sha512, false) => Ok(Mechanism::RsaPkcs1Sha512),
            (HashAlg::Sha256, true) => Ok(Mechanism::RsaPssSha256),
            (HashAlg::Sha384, true) => Ok(Mechanism::RsaPssSha384),
            (HashAlg::Sha512, true) => Ok(Mechanism::RsaPssSha512),
            _ => Err(Error::MechanismInvalid),
        };
        let (mechanism, payload) = match scheme {
            SignScheme::RsaPkcs1DigestInfo => {
                let (hash, digest) = enc::parse_digest_info(input)?;
                (
                    // Known only now, at C_Sign: a DigestInfo of a hash the service does not sign
                    // with (SHA-1, SHA-224) is invalid data for this token.
                    digest_mechanism(hash, false).map_err(|_| Error::DataInvalid)?,
                    Payload::Digest(digest.to_vec()),
                )
            }
            SignScheme::RsaPkcs1(hash) => (
                digest_mechanism(hash, false)?,
                Payload::Digest(input.to_vec()),
            ),
            SignScheme::RsaPss {
                hash,
                mgf,
                salt_len,
            } => {
                if mgf != hash || salt_len != hash.output_len() {
                    return Err(Error::MechanismParamInvalid);
                }
                (
                    digest_mechanism(hash, true)?,
                    Payload::Digest(input.to_vec()),
                )
            }
            SignScheme::Ecdsa => match input.len() {
                32 => (Mechanism::EcdsaSha256, Payload::Digest(input.to_vec())),
                48 => (Mechanism::EcdsaSha384, Payload::Digest(input.to_vec())),
                _ => return Err(Error::DataLenRange),
            },
            SignScheme::Ed25519 => {
                if input.len() > cryptera_proto::sign::MAX_SIGN_DATA_LEN {
                    return Err(Error::DataLenRange);
                }
                (Mechanism::Ed25519, Payload::Data(input.to_vec()))
            }
        };
        let token = self.remote.access_token()?;
        self.remote
            .client
            .sign(&token, &self.id, mechanism, payload)
    }
}
