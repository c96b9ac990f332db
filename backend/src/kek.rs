//! The key-encryption key (KEK) and the sealing of secrets at rest with AES-256-GCM.
//!
//! `init` writes a 32-byte master-key file with mode 0600; `serve` refuses a file readable by group or
//! others. Every sealed blob carries a version byte and a random nonce, and its AAD binds it to the row it
//! belongs to (see [`Aad`]), so a ciphertext copied to another key, organisation or environment fails to open.
//! The KEK can instead be held by a PKCS#11 module ([`crate::kek_pkcs11`], [`KekSource::Pkcs11`]);
//! the blob's version byte says which engine sealed it, and one engine never opens the other's blobs.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::aead::{Aad as GcmAad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use crate::error::{Result, ServiceError};
use crate::kek_pkcs11::Pkcs11Kek;
use crate::util::random_bytes;

const KEK_LEN: usize = 32;
/// Blob versions: 1 = sealed by the file KEK in this process, 2 = sealed inside a PKCS#11 module.
const FILE_BLOB: u8 = 1;
const PKCS11_BLOB: u8 = 2;

/// Where the KEK lives; production keys need [`KekSource::Pkcs11`] unless explicitly overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KekSource {
    MasterKeyFile,
    Pkcs11,
}

enum Engine {
    File(RandomizedNonceKey),
    Pkcs11(Pkcs11Kek),
}

pub struct Kek {
    engine: Engine,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("source", &self.source())
            .finish_non_exhaustive()
    }
}

/// Additional authenticated data: a purpose tag and the ids the blob is bound to, NUL-separated.
pub struct Aad(Vec<u8>);

impl Aad {
    pub fn new(purpose: &str, parts: &[&str]) -> Self {
        let mut bytes = purpose.as_bytes().to_vec();
        for part in parts {
            bytes.push(0);
            bytes.extend_from_slice(part.as_bytes());
        }
        Self(bytes)
    }
}

impl Kek {
    /// Creates a new master-key file; fails if the file exists, so `init` never overwrites a KEK.
    pub fn create_file(path: &Path) -> Result<()> {
        let key = Zeroizing::new(random_bytes::<KEK_LEN>()?);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|err| ServiceError::Io(format!("creating {}: {err}", path.display())))?;
        file.write_all(key.as_ref())
            .and_then(|()| file.sync_all())
            .map_err(|err| ServiceError::Io(format!("writing {}: {err}", path.display())))
    }

    /// Loads the master-key file, refusing one that group or others could read.
    pub fn load_file(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path)
            .map_err(|err| ServiceError::Io(format!("opening {}: {err}", path.display())))?;
        let mode = file
            .metadata()
            .map_err(|err| ServiceError::Io(format!("{}: {err}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(ServiceError::Io(format!(
                "{} is accessible by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
        let mut key = Zeroizing::new(Vec::with_capacity(KEK_LEN + 1));
        file.read_to_end(&mut key)
            .map_err(|err| ServiceError::Io(format!("reading {}: {err}", path.display())))?;
        if key.len() != KEK_LEN {
            return Err(ServiceError::Io(format!(
                "{} is not a {KEK_LEN}-byte master key",
                path.display()
            )));
        }
        Self::from_bytes(&key)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| ServiceError::Crypto("KEK setup"))?;
        Ok(Self {
            engine: Engine::File(key),
        })
    }

    /// A KEK held by a PKCS#11 module.
    pub fn pkcs11(kek: Pkcs11Kek) -> Self {
        Self {
            engine: Engine::Pkcs11(kek),
        }
    }

    pub fn source(&self) -> KekSource {
        match self.engine {
            Engine::File(_) => KekSource::MasterKeyFile,
            Engine::Pkcs11(_) => KekSource::Pkcs11,
        }
    }

    /// `version(1) || nonce(12) || ciphertext || tag(16)`; the version names the engine.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = match &self.engine {
            Engine::File(key) => key,
            Engine::Pkcs11(kek) => {
                let mut blob = vec![PKCS11_BLOB];
                blob.extend(kek.seal(&aad.0, plaintext)?);
                return Ok(blob);
            }
        };
        // Room for the tag up front, so appending it never reallocates and strands a plaintext copy.
        let mut in_out =
            Zeroizing::new(Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len()));
        in_out.extend_from_slice(plaintext);
        let nonce = key
            .seal_in_place_append_tag(GcmAad::from(aad.0.as_slice()), &mut *in_out)
            .map_err(|_| ServiceError::Crypto("seal"))?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        blob.push(FILE_BLOB);
        blob.extend_from_slice(nonce.as_ref());
        // The buffer now holds ciphertext only; copying it out is safe.
        blob.extend_from_slice(&in_out);
        Ok(blob)
    }

    pub fn open(&self, aad: &Aad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match (&self.engine, blob.split_first()) {
            (Engine::File(key), Some((&FILE_BLOB, rest))) => open_file_blob(key, aad, rest),
            (Engine::Pkcs11(kek), Some((&PKCS11_BLOB, rest))) => kek.open(&aad.0, rest),
            _ => Err(ServiceError::Crypto("sealed by another KEK")),
        }
    }
}

fn open_file_blob(key: &RandomizedNonceKey, aad: &Aad, rest: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if rest.len() < NONCE_LEN {
        return Err(ServiceError::Crypto("sealed blob too short"));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| ServiceError::Crypto("nonce"))?;
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let plain_len = key
        .open_in_place(nonce, GcmAad::from(aad.0.as_slice()), &mut in_out)
        .map_err(|_| ServiceError::Crypto("open sealed blob"))?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_the_aad_and_rejects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        Kek::create_file(&path).expect("create");
        assert!(Kek::create_file(&path).is_err(), "never overwrites a KEK");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let kek = Kek::load_file(&path).expect("load");

        let aad = Aad::new("test", &["key_1", "org_1", "development"]);
        let blob = kek.seal(&aad, b"secret key material").expect("seal");
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            &kek.open(&aad, &blob).expect("open")[..],
            b"secret key material"
        );

        let other = Aad::new("test", &["key_1", "org_1", "production"]);
        assert!(kek.open(&other, &blob).is_err());
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(kek.open(&aad, &flipped).is_err());
    }

    #[test]
    fn refuses_a_world_readable_master_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        Kek::create_file(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(Kek::load_file(&path).is_err());
    }
}
