//! Secret-key cryptography: AES-GCM, AES-CBC with PKCS#7 padding, AES key wrap (RFC 3394 / 5649),
//! HMAC, and key check values.

use super::HashAlg;
use crate::error::{Error, Result};
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap, KeyWrapPadded};
use zeroize::Zeroizing;

pub const GCM_IV_LEN: usize = 12;
pub const GCM_TAG_LEN: usize = 16;
pub const AES_BLOCK: usize = 16;

fn aes_cipher(key: &[u8]) -> Result<&'static cipher::Algorithm> {
    match key.len() {
        16 => Ok(&cipher::AES_128),
        24 => Ok(&cipher::AES_192),
        32 => Ok(&cipher::AES_256),
        _ => Err(Error::KeySizeRange),
    }
}

fn gcm_key(key: &[u8]) -> Result<LessSafeKey> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(Error::KeySizeRange),
    };
    Ok(LessSafeKey::new(
        UnboundKey::new(alg, key).map_err(|_| Error::KeySizeRange)?,
    ))
}

/// AES-GCM encryption; the 16-byte tag is appended to the ciphertext.
pub fn gcm_encrypt(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::MechanismParamInvalid)?;
    let mut out = plaintext.to_vec();
    gcm_key(key)?
        .seal_in_place_append_tag(nonce, Aad::from(aad), &mut out)
        .map_err(|_| Error::DataLenRange)?;
    Ok(out)
}

/// AES-GCM decryption of ciphertext with the tag appended; a wrong tag is `CKR_ENCRYPTED_DATA_INVALID`.
pub fn gcm_decrypt(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() < GCM_TAG_LEN {
        return Err(Error::EncryptedDataLenRange);
    }
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::MechanismParamInvalid)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = gcm_key(key)?
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn iv128(iv: &[u8]) -> Result<[u8; AES_BLOCK]> {
    iv.try_into().map_err(|_| Error::MechanismParamInvalid)
}

/// AES-CBC with PKCS#7 padding.
pub fn cbc_pad_encrypt(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let unbound = UnboundCipherKey::new(aes_cipher(key)?, key).map_err(|_| Error::KeySizeRange)?;
    let encrypting =
        PaddedBlockEncryptingKey::cbc_pkcs7(unbound).map_err(|_| Error::KeySizeRange)?;
    let mut out = plaintext.to_vec();
    encrypting
        .less_safe_encrypt(
            &mut out,
            EncryptionContext::Iv128(FixedLength::from(iv128(iv)?)),
        )
        .map_err(|_| Error::DataLenRange)?;
    Ok(out)
}

pub fn cbc_pad_decrypt(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(AES_BLOCK) {
        return Err(Error::EncryptedDataLenRange);
    }
    let unbound = UnboundCipherKey::new(aes_cipher(key)?, key).map_err(|_| Error::KeySizeRange)?;
    let decrypting =
        PaddedBlockDecryptingKey::cbc_pkcs7(unbound).map_err(|_| Error::KeySizeRange)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = decrypting
        .decrypt(
            &mut buf,
            DecryptionContext::Iv128(FixedLength::from(iv128(iv)?)),
        )
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn kek(key: &[u8]) -> Result<AesKek> {
    let cipher = match key.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        _ => return Err(Error::KeySizeRange),
    };
    AesKek::new(cipher, key).map_err(|_| Error::KeySizeRange)
}

/// RFC 3394 key wrap (`CKM_AES_KEY_WRAP`); the input must be a multiple of 8 bytes, at least 16.
pub fn key_wrap(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.len() < 16 || !plaintext.len().is_multiple_of(8) {
        return Err(Error::DataLenRange);
    }
    let mut out = vec![0u8; plaintext.len() + 8];
    let len = kek(key)?
        .wrap(plaintext, &mut out)
        .map_err(|_| Error::DataLenRange)?
        .len();
    out.truncate(len);
    Ok(out)
}

pub fn key_unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::EncryptedDataLenRange);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?
        .unwrap(wrapped, &mut out)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RFC 5649 key wrap with padding (`CKM_AES_KEY_WRAP_PAD`).
pub fn key_wrap_pad(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.is_empty() {
        return Err(Error::DataLenRange);
    }
    let mut out = vec![0u8; plaintext.len() + 16];
    let len = kek(key)?
        .wrap_with_padding(plaintext, &mut out)
        .map_err(|_| Error::DataLenRange)?
        .len();
    out.truncate(len);
    Ok(out)
}

pub fn key_unwrap_pad(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::EncryptedDataLenRange);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    out.truncate(len);
    Ok(out)
}

fn hmac_algorithm(hash: HashAlg) -> hmac::Algorithm {
    match hash {
        HashAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha224 => hmac::HMAC_SHA224,
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
        HashAlg::Sha512 => hmac::HMAC_SHA512,
    }
}

/// A running HMAC (multi-part sign and verify).
pub struct Hmac(hmac::Context);

impl Hmac {
    pub fn new(hash: HashAlg, key: &[u8]) -> Hmac {
        Hmac(hmac::Context::with_key(&hmac::Key::new(
            hmac_algorithm(hash),
            key,
        )))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.sign().as_ref().to_vec()
    }
}

/// `CKA_CHECK_VALUE` of an AES key: the first three bytes of the encryption of a zero block.
pub fn aes_check_value(key: &[u8]) -> Result<Vec<u8>> {
    let unbound = UnboundCipherKey::new(aes_cipher(key)?, key).map_err(|_| Error::KeySizeRange)?;
    let encrypting = cipher::EncryptingKey::ecb(unbound).map_err(|_| Error::KeySizeRange)?;
    let mut block = [0u8; AES_BLOCK];
    encrypting
        .encrypt(&mut block)
        .map_err(|_| Error::General("AES failed".into()))?;
    Ok(block[..3].to_vec())
}

/// `CKA_CHECK_VALUE` of a generic secret: the first three bytes of its SHA-1 hash.
pub fn generic_check_value(key: &[u8]) -> Vec<u8> {
    HashAlg::Sha1.hash(key)[..3].to_vec()
}
