//! Encryption at rest for the local store (see docs/storage-encryption.md): the random token key,
//! its wrapping under Argon2id keys derived from the PINs, and the sealing of object records.

use crate::crypto::{random_vec, symmetric};
use crate::error::{Error, Result};
use zeroize::Zeroizing;

pub const TOKEN_KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const WRAP_VERSION: u8 = 1;
const SEAL_VERSION: u8 = 1;

/// The most Argon2id work a PIN record may ask for: memory (KiB) times passes, 2 GiB·pass, which
/// admits both of RFC 9106's recommended settings (2 GiB × 1, 64 MiB × 3). The cost is read from the
/// record itself, so without this bound a damaged or edited token file could make every login run
/// for hours or allocate terabytes instead of failing (found by fuzz/store_records).
pub const MAX_KDF_COST_KIB: u64 = 2 * 1024 * 1024;

/// The most Argon2id lanes a PIN record may ask for.
const MAX_KDF_PARALLELISM: u32 = 16;

/// The token key, held only while a user or SO is logged in.
pub type TokenKey = Zeroizing<[u8; TOKEN_KEY_LEN]>;

/// Argon2id cost parameters, stored with each wrapped key so they can change later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

pub fn new_token_key() -> Result<TokenKey> {
    let random = random_vec(TOKEN_KEY_LEN)?;
    let mut key = Zeroizing::new([0u8; TOKEN_KEY_LEN]);
    key.copy_from_slice(&random);
    Ok(key)
}

fn derive(pin: &[u8], salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|_| Error::Device("bad KDF parameters in token store".into()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pin, salt, out.as_mut())
        .map_err(|_| Error::General("key derivation failed".into()))?;
    Ok(out)
}

/// Wraps the token key under a key derived from `pin`. `context` binds the record to its token and role.
pub fn wrap_token_key(
    key: &TokenKey,
    pin: &[u8],
    params: KdfParams,
    context: &[u8],
) -> Result<Vec<u8>> {
    let salt = random_vec(SALT_LEN)?;
    let nonce = random_vec(symmetric::GCM_IV_LEN)?;
    let kek = derive(pin, &salt, params)?;
    let mut record = vec![WRAP_VERSION];
    record.extend_from_slice(&params.memory_kib.to_le_bytes());
    record.extend_from_slice(&params.iterations.to_le_bytes());
    record.extend_from_slice(&params.parallelism.to_le_bytes());
    record.extend_from_slice(&salt);
    record.extend_from_slice(&nonce);
    let aad = [b"cryptera-token-key-v1".as_slice(), context].concat();
    record.extend_from_slice(&symmetric::gcm_encrypt(
        kek.as_ref(),
        &nonce,
        &aad,
        key.as_ref(),
    )?);
    Ok(record)
}

/// Unwraps the token key with `pin`: `Ok(None)` when the PIN is wrong.
pub fn unwrap_token_key(record: &[u8], pin: &[u8], context: &[u8]) -> Result<Option<TokenKey>> {
    let corrupt = || Error::Device("corrupt PIN record".into());
    let header = 1 + 12 + SALT_LEN + symmetric::GCM_IV_LEN;
    if record.len() != header + TOKEN_KEY_LEN + symmetric::GCM_TAG_LEN || record[0] != WRAP_VERSION
    {
        return Err(corrupt());
    }
    let word = |at: usize| {
        u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
    };
    let params = KdfParams {
        memory_kib: word(1),
        iterations: word(5),
        parallelism: word(9),
    };
    // The module writes parallelism 1. Checked here too because argon2 0.5 computes
    // `8 * parallelism` before its own range check, which overflows (a panic with overflow checks).
    if u64::from(params.memory_kib) * u64::from(params.iterations) > MAX_KDF_COST_KIB
        || !(1..=MAX_KDF_PARALLELISM).contains(&params.parallelism)
    {
        return Err(corrupt());
    }
    let salt = &record[13..13 + SALT_LEN];
    let nonce = &record[13 + SALT_LEN..header];
    let kek = derive(pin, salt, params)?;
    let aad = [b"cryptera-token-key-v1".as_slice(), context].concat();
    match symmetric::gcm_decrypt(kek.as_ref(), nonce, &aad, &record[header..]) {
        Ok(plain) => {
            let mut key = Zeroizing::new([0u8; TOKEN_KEY_LEN]);
            key.copy_from_slice(&plain);
            Ok(Some(key))
        }
        Err(Error::EncryptedDataInvalid) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Seals an object's private attributes; `aad` binds them to the object's identity and public record.
pub fn seal(key: &TokenKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let nonce = random_vec(symmetric::GCM_IV_LEN)?;
    let mut out = vec![SEAL_VERSION];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&symmetric::gcm_encrypt(
        key.as_ref(),
        &nonce,
        aad,
        plaintext,
    )?);
    Ok(out)
}

pub fn open(key: &TokenKey, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let tampered = || Error::Device("object record fails authentication".into());
    if sealed.len() < 1 + symmetric::GCM_IV_LEN + symmetric::GCM_TAG_LEN
        || sealed[0] != SEAL_VERSION
    {
        return Err(tampered());
    }
    let (nonce, body) = sealed[1..].split_at(symmetric::GCM_IV_LEN);
    symmetric::gcm_decrypt(key.as_ref(), nonce, aad, body).map_err(|_| tampered())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn wrap_unwrap_and_wrong_pin() {
        let key = new_token_key().expect("key");
        let record = wrap_token_key(&key, b"1234", fast(), b"ctx").expect("wrap");
        let back = unwrap_token_key(&record, b"1234", b"ctx")
            .expect("unwrap")
            .expect("right pin");
        assert_eq!(back.as_ref(), key.as_ref());
        assert!(unwrap_token_key(&record, b"4321", b"ctx")
            .expect("unwrap")
            .is_none());
        assert!(unwrap_token_key(&record, b"1234", b"other")
            .expect("unwrap")
            .is_none());
    }

    #[test]
    fn a_record_asking_for_too_much_work_is_corrupt() {
        let key = new_token_key().expect("key");
        let mut record = wrap_token_key(&key, b"1234", fast(), b"ctx").expect("wrap");
        for (at, value) in [(5, u32::MAX), (1, u32::MAX), (9, u32::MAX), (9, 0)] {
            let mut edited = record.clone();
            edited[at..at + 4].copy_from_slice(&value.to_le_bytes());
            assert!(matches!(
                unwrap_token_key(&edited, b"1234", b"ctx"),
                Err(Error::Device(_))
            ));
        }
        // Within the bounds, other costs are a wrong PIN (another key), not damage.
        record[5..9].copy_from_slice(&2u32.to_le_bytes());
        assert!(unwrap_token_key(&record, b"1234", b"ctx").is_ok());
    }

    #[test]
    fn sealed_records_are_bound() {
        let key = new_token_key().expect("key");
        let sealed = seal(&key, b"secret", b"object-1").expect("seal");
        assert_eq!(
            open(&key, &sealed, b"object-1").expect("open").as_slice(),
            b"secret"
        );
        assert!(open(&key, &sealed, b"object-2").is_err());
        let mut edited = sealed.clone();
        edited[20] ^= 1;
        assert!(open(&key, &edited, b"object-1").is_err());
    }
}
