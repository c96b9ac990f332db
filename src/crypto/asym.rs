//! Asymmetric keys: RSA, ECDSA over P-256/P-384/P-521 and Ed25519. Parsed engine keys, their components
//! (what PKCS#11 attributes hold), generation, signing, verification, RSA encryption and ECDH.

use super::der as enc;
use super::HashAlg;
use crate::error::{Error, Result};
use aws_lc_rs::agreement;
use aws_lc_rs::digest::Digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    self, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaParameters, RsaPssSaltLength,
    RsaSignatureEncoding, UnparsedPublicKey,
};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use zeroize::Zeroizing;

/// The NIST curves the module offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Length of one coordinate and of the private scalar, in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    pub fn bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }

    /// The hash whose output length the engine's ECDSA takes for this curve.
    fn digest_hash(self) -> HashAlg {
        match self {
            Curve::P256 => HashAlg::Sha256,
            Curve::P384 => HashAlg::Sha384,
            Curve::P521 => HashAlg::Sha512,
        }
    }

    fn ecdh(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
            Curve::P521 => &agreement::ECDH_P521,
        }
    }

    /// Brings a caller-supplied hash to the length the engine expects, keeping the integer ECDSA derives
    /// from it (FIPS 186-4 §6.4: the leftmost bits of the hash, at most the order's length).
    fn normalize_digest(self, hash: &[u8]) -> Result<Digest> {
        let want = self.digest_hash();
        let len = want.output_len();
        let order_bytes = self.bits().div_ceil(8);
        let mut buf = vec![0u8; len];
        if hash.len() <= len {
            buf[len - hash.len()..].copy_from_slice(hash);
        } else if self.bits().is_multiple_of(8) && len == order_bytes {
            buf.copy_from_slice(&hash[..len]);
        } else {
            return Err(Error::DataLenRange);
        }
        Digest::import_less_safe(&buf, want.algorithm()).map_err(|_| Error::DataLenRange)
    }
}

/// The components of an RSA private key, big-endian, as PKCS#11 attributes hold them.
#[derive(Clone, Default)]
pub struct RsaParts {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub private_exponent: Zeroizing<Vec<u8>>,
    pub prime_1: Zeroizing<Vec<u8>>,
    pub prime_2: Zeroizing<Vec<u8>>,
    pub exponent_1: Zeroizing<Vec<u8>>,
    pub exponent_2: Zeroizing<Vec<u8>>,
    pub coefficient: Zeroizing<Vec<u8>>,
}

/// How a signature is made over what the mechanism layer hands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignScheme {
    /// PKCS#1 v1.5 over a DigestInfo the caller built (`CKM_RSA_PKCS`).
    RsaPkcs1DigestInfo,
    /// PKCS#1 v1.5 over a digest of `HashAlg`.
    RsaPkcs1(HashAlg),
    /// PSS over a digest of `hash`, MGF1 with `mgf`, `salt_len` bytes of salt.
    RsaPss {
        hash: HashAlg,
        mgf: HashAlg,
        salt_len: usize,
    },
    /// ECDSA over a hash of any length (`r || s` output).
    Ecdsa,
    /// Pure Ed25519 over the message.
    Ed25519,
}

/// RSA encryption paddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaCipher {
    Pkcs1,
    Oaep(HashAlg),
}

/// A parsed private key, ready for use: no parsing happens on the signing path.
pub enum PrivateKey {
    Rsa {
        pair: RsaKeyPair,
        decrypting: PrivateDecryptingKey,
        pkcs1: Zeroizing<Vec<u8>>,
    },
    Ec {
        curve: Curve,
        pair: EcdsaKeyPair,
        scalar: Zeroizing<Vec<u8>>,
    },
    Ed25519 {
        pair: Ed25519KeyPair,
    },
}

/// A public key, as its components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
    },
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519 {
        point: Vec<u8>,
    },
}

fn rejected<E>(_: E) -> Error {
    Error::AttributeValueInvalid
}

fn failed<E>(_: E) -> Error {
    Error::General("crypto engine failure".into())
}

impl PrivateKey {
    pub fn rsa_from_parts(parts: &RsaParts) -> Result<PrivateKey> {
        let pkcs8 = enc::rsa_private_pkcs8(parts)?;
        let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(rejected)?;
        let pkcs1 = enc::rsa_pkcs1_from_pkcs8(&pkcs8)?;
        Ok(PrivateKey::Rsa {
            pair,
            decrypting,
            pkcs1,
        })
    }

    pub fn ec_from_scalar(curve: Curve, scalar: &[u8]) -> Result<PrivateKey> {
        let mut fixed = Zeroizing::new(vec![0u8; curve.field_len()]);
        if scalar.is_empty() || scalar.len() > fixed.len() {
            return Err(Error::AttributeValueInvalid);
        }
        let offset = fixed.len() - scalar.len();
        fixed[offset..].copy_from_slice(scalar);
        let agreement_key =
            agreement::PrivateKey::from_private_key(curve.ecdh(), &fixed).map_err(rejected)?;
        let point = agreement_key.compute_public_key().map_err(rejected)?;
        let pair =
            EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &fixed, point.as_ref())
                .map_err(rejected)?;
        Ok(PrivateKey::Ec {
            curve,
            pair,
            scalar: fixed,
        })
    }

    pub fn ed25519_from_seed(seed: &[u8]) -> Result<PrivateKey> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(rejected)?;
        Ok(PrivateKey::Ed25519 { pair })
    }

    /// A new RSA key of `bits` (2048, 3072 or 4096) with exponent 65537, and its components.
    pub fn generate_rsa(bits: usize) -> Result<(PrivateKey, RsaParts)> {
        let size = match bits {
            2048 => rsa::KeySize::Rsa2048,
            3072 => rsa::KeySize::Rsa3072,
            4096 => rsa::KeySize::Rsa4096,
            _ => return Err(Error::KeySizeRange),
        };
        let pair = RsaKeyPair::generate(size).map_err(failed)?;
        let pkcs8 = Zeroizing::new(
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        );
        let parts = enc::rsa_parts_from_pkcs8(&pkcs8)?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(failed)?;
        let pkcs1 = enc::rsa_pkcs1_from_pkcs8(&pkcs8)?;
        Ok((
            PrivateKey::Rsa {
                pair,
                decrypting,
                pkcs1,
            },
            parts,
        ))
    }

    /// A new EC key; returns it with its private scalar.
    pub fn generate_ec(curve: Curve) -> Result<PrivateKey> {
        let agreement_key = agreement::PrivateKey::generate(curve.ecdh()).map_err(failed)?;
        let scalar = Zeroizing::new(
            aws_lc_rs::encoding::AsBigEndian::<aws_lc_rs::encoding::EcPrivateKeyBin>::as_be_bytes(
                &agreement_key,
            )
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        );
        PrivateKey::ec_from_scalar(curve, &scalar)
    }

    /// A new Ed25519 key; its seed is [`PrivateKey::secret_value`].
    pub fn generate_ed25519() -> Result<PrivateKey> {
        let pair = Ed25519KeyPair::generate().map_err(failed)?;
        Ok(PrivateKey::Ed25519 { pair })
    }

    /// The `CKA_VALUE` of an EC (scalar) or Edwards (seed) private key.
    pub fn secret_value(&self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            PrivateKey::Ec { scalar, .. } => Ok(scalar.clone()),
            PrivateKey::Ed25519 { pair } => {
                let seed = pair.seed().map_err(failed)?;
                let bytes = aws_lc_rs::encoding::AsBigEndian::<
                    aws_lc_rs::encoding::Curve25519SeedBin,
                >::as_be_bytes(&seed)
                .map_err(failed)?;
                Ok(Zeroizing::new(bytes.as_ref().to_vec()))
            }
            PrivateKey::Rsa { .. } => Err(Error::General("RSA keys have no single value".into())),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa { pair, .. } => {
                let public = pair.public_key();
                PublicKey::Rsa {
                    modulus: public.modulus().big_endian_without_leading_zero().to_vec(),
                    public_exponent: public.exponent().big_endian_without_leading_zero().to_vec(),
                }
            }
            PrivateKey::Ec { curve, pair, .. } => PublicKey::Ec {
                curve: *curve,
                point: pair.public_key().as_ref().to_vec(),
            },
            PrivateKey::Ed25519 { pair } => PublicKey::Ed25519 {
                point: pair.public_key().as_ref().to_vec(),
            },
        }
    }

    /// Length of a signature made with this key.
    pub fn signature_len(&self) -> usize {
        match self {
            PrivateKey::Rsa { pair, .. } => pair.public_modulus_len(),
            PrivateKey::Ec { curve, .. } => 2 * curve.field_len(),
            PrivateKey::Ed25519 { .. } => 64,
        }
    }

    /// Signs `input`: a digest, a DigestInfo or (Ed25519) the message, as `scheme` says.
    pub fn sign(&self, scheme: SignScheme, input: &[u8]) -> Result<Vec<u8>> {
        match (self, scheme) {
            (PrivateKey::Rsa { pair, pkcs1, .. }, SignScheme::RsaPkcs1DigestInfo) => {
                match enc::parse_digest_info(input) {
                    Ok((hash, digest)) if pkcs1_encoding(hash).is_ok() => {
                        rsa_sign_digest(pair, pkcs1_encoding(hash)?, hash, digest)
                    }
                    _ => crate::abi::engine::rsa_pkcs1_sign_raw(pkcs1, input),
                }
            }
            (PrivateKey::Rsa { pair, pkcs1, .. }, SignScheme::RsaPkcs1(hash)) => {
                match pkcs1_encoding(hash) {
                    Ok(encoding) => rsa_sign_digest(pair, encoding, hash, input),
                    Err(_) => crate::abi::engine::rsa_pkcs1_sign_raw(
                        pkcs1,
                        &enc::digest_info(hash, input)?,
                    ),
                }
            }
            (
                PrivateKey::Rsa { pair, pkcs1, .. },
                SignScheme::RsaPss {
                    hash,
                    mgf,
                    salt_len,
                },
            ) => match pss_encoding(hash, salt_len) {
                Ok(encoding) if mgf == hash => rsa_sign_digest(pair, encoding, hash, input),
                _ => crate::abi::engine::rsa_pss_sign(pkcs1, hash, mgf, salt_len, input),
            },
            (PrivateKey::Ec { curve, pair, .. }, SignScheme::Ecdsa) => {
                let digest = curve.normalize_digest(input)?;
                Ok(pair.sign_digest(&digest).map_err(failed)?.as_ref().to_vec())
            }
            (PrivateKey::Ed25519 { pair }, SignScheme::Ed25519) => {
                Ok(pair.sign(input).as_ref().to_vec())
            }
            _ => Err(Error::KeyTypeInconsistent),
        }
    }

    /// Decrypts an RSA ciphertext.
    pub fn decrypt(
        &self,
        cipher: RsaCipher,
        label: Option<&[u8]>,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let PrivateKey::Rsa { decrypting, .. } = self else {
            return Err(Error::KeyTypeInconsistent);
        };
        if input.len() != decrypting.key_size_bytes() {
            return Err(Error::EncryptedDataLenRange);
        }
        let mut out = Zeroizing::new(vec![0u8; decrypting.key_size_bytes()]);
        let len = match cipher {
            RsaCipher::Pkcs1 => {
                let key = Pkcs1PrivateDecryptingKey::new(decrypting.clone()).map_err(failed)?;
                key.decrypt(input, &mut out)
                    .map_err(|_| Error::EncryptedDataInvalid)?
                    .len()
            }
            RsaCipher::Oaep(hash) => {
                let key = OaepPrivateDecryptingKey::new(decrypting.clone()).map_err(failed)?;
                key.decrypt(oaep_algorithm(hash)?, input, &mut out, label)
                    .map_err(|_| Error::EncryptedDataInvalid)?
                    .len()
            }
        };
        out.truncate(len);
        Ok(out)
    }

    /// ECDH: the x-coordinate shared with `peer_point` (an uncompressed point).
    pub fn ecdh(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let PrivateKey::Ec { curve, scalar, .. } = self else {
            return Err(Error::KeyTypeInconsistent);
        };
        let key = agreement::PrivateKey::from_private_key(curve.ecdh(), scalar).map_err(failed)?;
        let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), peer_point);
        agreement::agree(&key, peer, Error::MechanismParamInvalid, |secret| {
            Ok(Zeroizing::new(secret.to_vec()))
        })
    }
}

fn rsa_sign_digest(
    pair: &RsaKeyPair,
    encoding: &'static RsaSignatureEncoding,
    hash: HashAlg,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let digest =
        Digest::import_less_safe(digest, hash.algorithm()).map_err(|_| Error::DataLenRange)?;
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign_digest(encoding, &digest, &mut signature)
        .map_err(failed)?;
    Ok(signature)
}

fn pkcs1_encoding(hash: HashAlg) -> Result<&'static RsaSignatureEncoding> {
    match hash {
        HashAlg::Sha256 => Ok(&signature::RSA_PKCS1_SHA256),
        HashAlg::Sha384 => Ok(&signature::RSA_PKCS1_SHA384),
        HashAlg::Sha512 => Ok(&signature::RSA_PKCS1_SHA512),
        HashAlg::Sha1 | HashAlg::Sha224 => Err(Error::MechanismInvalid),
    }
}

/// PSS encodings for a salt length, made once per (hash, length) and kept: lengths are bounded by the
/// largest modulus, so the set stays small.
fn pss_encoding(hash: HashAlg, salt_len: usize) -> Result<&'static RsaSignatureEncoding> {
    static CACHE: LazyLock<Mutex<HashMap<(u8, usize), &'static RsaSignatureEncoding>>> =
        LazyLock::new(Default::default);
    let base = match hash {
        HashAlg::Sha256 => signature::RSA_PSS_SHA256,
        HashAlg::Sha384 => signature::RSA_PSS_SHA384,
        HashAlg::Sha512 => signature::RSA_PSS_SHA512,
        HashAlg::Sha1 | HashAlg::Sha224 => return Err(Error::MechanismParamInvalid),
    };
    if salt_len > 1024 {
        return Err(Error::MechanismParamInvalid);
    }
    if salt_len == hash.output_len() {
        return Ok(match hash {
            HashAlg::Sha256 => &signature::RSA_PSS_SHA256,
            HashAlg::Sha384 => &signature::RSA_PSS_SHA384,
            _ => &signature::RSA_PSS_SHA512,
        });
    }
    let mut cache = CACHE.lock().map_err(failed)?;
    let entry = cache.entry((hash as u8, salt_len)).or_insert_with(|| {
        Box::leak(Box::new(
            base.with_pss_salt_length(RsaPssSaltLength::Custom(salt_len as u16)),
        ))
    });
    Ok(*entry)
}

fn pss_parameters(hash: HashAlg, salt_len: usize) -> Result<&'static RsaParameters> {
    static CACHE: LazyLock<Mutex<HashMap<(u8, usize), &'static RsaParameters>>> =
        LazyLock::new(Default::default);
    let base = match hash {
        HashAlg::Sha256 => signature::RSA_PSS_2048_8192_SHA256,
        HashAlg::Sha384 => signature::RSA_PSS_2048_8192_SHA384,
        HashAlg::Sha512 => signature::RSA_PSS_2048_8192_SHA512,
        HashAlg::Sha1 | HashAlg::Sha224 => return Err(Error::MechanismParamInvalid),
    };
    if salt_len > 1024 {
        return Err(Error::MechanismParamInvalid);
    }
    let mut cache = CACHE.lock().map_err(failed)?;
    let entry = cache.entry((hash as u8, salt_len)).or_insert_with(|| {
        Box::leak(Box::new(
            base.with_pss_salt_length(RsaPssSaltLength::Custom(salt_len as u16)),
        ))
    });
    Ok(*entry)
}

fn pkcs1_parameters(hash: HashAlg) -> Result<&'static RsaParameters> {
    match hash {
        HashAlg::Sha1 => Ok(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha256 => Ok(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha384 => Ok(&signature::RSA_PKCS1_2048_8192_SHA384),
        HashAlg::Sha512 => Ok(&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha224 => Err(Error::MechanismInvalid),
    }
}

fn oaep_algorithm(hash: HashAlg) -> Result<&'static OaepAlgorithm> {
    match hash {
        HashAlg::Sha1 => Ok(&rsa::OAEP_SHA1_MGF1SHA1),
        HashAlg::Sha256 => Ok(&rsa::OAEP_SHA256_MGF1SHA256),
        HashAlg::Sha384 => Ok(&rsa::OAEP_SHA384_MGF1SHA384),
        HashAlg::Sha512 => Ok(&rsa::OAEP_SHA512_MGF1SHA512),
        HashAlg::Sha224 => Err(Error::MechanismParamInvalid),
    }
}

impl PublicKey {
    /// Verifies `signature` over `input` (as in [`PrivateKey::sign`]). A mismatch is
    /// `CKR_SIGNATURE_INVALID`, a signature of the wrong length `CKR_SIGNATURE_LEN_RANGE`.
    pub fn verify(&self, scheme: SignScheme, input: &[u8], sig: &[u8]) -> Result<()> {
        if sig.len() != self.signature_len() {
            return Err(Error::SignatureLenRange);
        }
        let outcome = match (self, scheme) {
            (PublicKey::Rsa { .. }, SignScheme::RsaPkcs1DigestInfo) => {
                match enc::parse_digest_info(input) {
                    Ok((hash, digest)) if pkcs1_parameters(hash).is_ok() => {
                        self.rsa_verify(pkcs1_parameters(hash)?, hash, digest, sig)
                    }
                    _ => return self.rsa_recover_compare(input, sig),
                }
            }
            (PublicKey::Rsa { .. }, SignScheme::RsaPkcs1(hash)) => match pkcs1_parameters(hash) {
                Ok(params) => self.rsa_verify(params, hash, input, sig),
                Err(_) => return self.rsa_recover_compare(&enc::digest_info(hash, input)?, sig),
            },
            (
                PublicKey::Rsa { .. },
                SignScheme::RsaPss {
                    hash,
                    mgf,
                    salt_len,
                },
            ) => match pss_parameters(hash, salt_len) {
                Ok(params) if mgf == hash => self.rsa_verify(params, hash, input, sig),
                _ => {
                    let der = enc::rsa_public_pkcs1(self)?;
                    return crate::abi::engine::rsa_pss_verify(
                        &der, hash, mgf, salt_len, input, sig,
                    );
                }
            },
            (PublicKey::Ec { curve, point }, SignScheme::Ecdsa) => {
                let digest = curve.normalize_digest(input)?;
                UnparsedPublicKey::new(curve.verification(), point).verify_digest(&digest, sig)
            }
            (PublicKey::Ed25519 { point }, SignScheme::Ed25519) => {
                UnparsedPublicKey::new(&signature::ED25519, point).verify(input, sig)
            }
            _ => return Err(Error::KeyTypeInconsistent),
        };
        outcome.map_err(|_| Error::SignatureInvalid)
    }

    fn rsa_verify(
        &self,
        params: &'static RsaParameters,
        hash: HashAlg,
        digest: &[u8],
        sig: &[u8],
    ) -> std::result::Result<(), aws_lc_rs::error::Unspecified> {
        let der = enc::rsa_public_pkcs1(self).map_err(|_| aws_lc_rs::error::Unspecified)?;
        let digest = Digest::import_less_safe(digest, hash.algorithm())?;
        UnparsedPublicKey::new(params, der).verify_digest(&digest, sig)
    }

    /// PKCS#1 v1.5 verification through signature recovery, for inputs the engine's safe API does not
    /// take (SHA-224, raw `CKM_RSA_PKCS` data).
    fn rsa_recover_compare(&self, expected: &[u8], sig: &[u8]) -> Result<()> {
        let der = enc::rsa_public_pkcs1(self)?;
        let recovered = crate::abi::engine::rsa_pkcs1_recover(&der, sig)?;
        if super::ct_eq(&recovered, expected) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }

    pub fn signature_len(&self) -> usize {
        match self {
            PublicKey::Rsa { modulus, .. } => modulus.len(),
            PublicKey::Ec { curve, .. } => 2 * curve.field_len(),
            PublicKey::Ed25519 { .. } => 64,
        }
    }

    /// Encrypts with an RSA public key.
    pub fn encrypt(
        &self,
        cipher: RsaCipher,
        label: Option<&[u8]>,
        input: &[u8],
    ) -> Result<Vec<u8>> {
        let PublicKey::Rsa {
            modulus,
            public_exponent,
        } = self
        else {
            return Err(Error::KeyTypeInconsistent);
        };
        let components = rsa::PublicKeyComponents {
            n: modulus.as_slice(),
            e: public_exponent.as_slice(),
        };
        let key: PublicEncryptingKey =
            components.try_into().map_err(|_| Error::KeyHandleInvalid)?;
        let mut out = vec![0u8; key.key_size_bytes()];
        let len = match cipher {
            RsaCipher::Pkcs1 => {
                let key = Pkcs1PublicEncryptingKey::new(key).map_err(failed)?;
                if input.len() > key.max_plaintext_size() {
                    return Err(Error::DataLenRange);
                }
                key.encrypt(input, &mut out).map_err(failed)?.len()
            }
            RsaCipher::Oaep(hash) => {
                let key = OaepPublicEncryptingKey::new(key).map_err(failed)?;
                let alg = oaep_algorithm(hash)?;
                if input.len() > key.max_plaintext_size(alg) {
                    return Err(Error::DataLenRange);
                }
                key.encrypt(alg, input, &mut out, label)
                    .map_err(failed)?
                    .len()
            }
        };
        out.truncate(len);
        Ok(out)
    }

    /// Length of the RSA modulus in bytes (the size of a ciphertext).
    pub fn modulus_len(&self) -> usize {
        match self {
            PublicKey::Rsa { modulus, .. } => modulus.len(),
            _ => 0,
        }
    }

    /// Checks that an EC point lies on the curve (for imported public keys).
    pub fn validate(&self) -> Result<()> {
        match self {
            PublicKey::Ec { curve, point } => {
                UnparsedPublicKey::new(curve.verification(), point)
                    .parse()
                    .map_err(|_| Error::AttributeValueInvalid)?;
            }
            PublicKey::Ed25519 { point } if point.len() != 32 => {
                return Err(Error::AttributeValueInvalid)
            }
            PublicKey::Rsa { modulus, .. } if modulus.len() < 128 => {
                return Err(Error::AttributeValueInvalid)
            }
            _ => {}
        }
        Ok(())
    }
}
