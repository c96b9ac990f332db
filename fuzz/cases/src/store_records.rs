//! The local store's decoding of its own records, on damaged records: the attribute codec, an object
//! row as `Token::refresh` decodes it (public record plus sealed part, the sealed part either raw bytes
//! or fuzzed plaintext sealed the way the store seals it, so the decoder behind the AEAD is reached),
//! the wrapped token key of a PIN record, and sealed blobs. A decoded object then goes through what
//! the module does with stored objects: attribute reads under the rules, searches, copies, and its
//! engine key (parsed and used to sign). Every failure must be an error, never a panic or a hang.

use crate::{Reader, ATTRIBUTE_TYPES};
use cryptera_pkcs11::attr::Template;
use cryptera_pkcs11::crypto::asym::{PrivateKey, SignScheme};
use cryptera_pkcs11::crypto::HashAlg;
use cryptera_pkcs11::local::store::Row;
use cryptera_pkcs11::local::{codec, crypt};
use cryptera_pkcs11::object::{keys, AttrRead, Object};
use cryptera_pkcs11::token::{decode_row, seal_context};
use cryptoki_sys::*;
use zeroize::Zeroizing;

const UUID: &[u8] = b"0123456789abcdef";

fn token_key() -> crypt::TokenKey {
    Zeroizing::new([7u8; crypt::TOKEN_KEY_LEN])
}

/// Uses a decoded object the way sessions use stored objects.
fn exercise(object: &Object, r: &mut Reader) {
    let _ = (object.class(), object.key_type(), object.scope());
    let _ = (object.is_token(), object.is_private(), object.label());
    let _ = object.size();
    for attr in ATTRIBUTE_TYPES {
        match object.read(*attr) {
            AttrRead::Value(value) => assert!(object.attrs.get(attr).is_some_and(|v| v == value)),
            AttrRead::Sensitive | AttrRead::Invalid => {}
        }
    }
    for mechanism in [CKM_SHA256_RSA_PKCS, CKM_ECDSA, CKM_AES_GCM] {
        let _ = object.allows_mechanism(mechanism);
    }
    // A search template from the input must match or not, nothing else.
    let mut template = Template::new();
    for _ in 0..r.u8() % 4 {
        let attr = r.pick(ATTRIBUTE_TYPES);
        template = template.with(attr, r.bytes(false).to_vec());
    }
    let _ = template.matches(&object.attrs);
    let _ = object.copy_with(&Template::new());
    let _ = object.clone().set_attributes(&template);
    let _ = keys::public_key(object).map(|key| key.validate());
    if let Ok(key) = keys::private_key(object) {
        sign_once(&key, r.bytes(false));
    }
}

fn sign_once(key: &PrivateKey, input: &[u8]) {
    let digest = HashAlg::Sha256.hash(input);
    let scheme = match key {
        PrivateKey::Rsa { .. } => SignScheme::RsaPkcs1(HashAlg::Sha256),
        PrivateKey::Ec { .. } => SignScheme::Ecdsa,
        PrivateKey::Ed25519 { .. } => SignScheme::Ed25519,
    };
    let input = if scheme == SignScheme::Ed25519 {
        input
    } else {
        &digest
    };
    let signature = key
        .sign(scheme, input)
        .expect("a stored key that parses signs");
    key.public_key()
        .verify(scheme, input, &signature)
        .expect("and its signature verifies");
}

/// One input: what the fuzz target of the same name runs, and what the corpus replay test runs.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    match r.u8() % 4 {
        0 => {
            let bytes = r.rest();
            if let Ok(attrs) = codec::decode(bytes) {
                let again = codec::encode(&attrs, |_| true);
                assert_eq!(codec::decode(&again).ok(), Some(attrs));
            }
        }
        1 => {
            let uid = r.u64() as i64;
            let flags = r.u8();
            let public = r.bytes(true).to_vec();
            let rest = r.rest();
            let key = token_key();
            let sealed = match (flags >> 1) & 3 {
                0 => None,
                1 => Some(rest.to_vec()),
                _ => Some(
                    crypt::seal(&key, rest, &seal_context(UUID, uid, &public))
                        .expect("seal a record"),
                ),
            };
            let row = Row {
                uid,
                public,
                sealed,
                private: flags & 1 != 0,
            };
            let logged_in = flags & 0x10 == 0;
            let decoded = decode_row(&row, UUID, logged_in.then_some(&key));
            if let Ok(Some(object)) = decoded {
                let mut tail = Reader::new(rest.get(..rest.len().min(64)).unwrap_or_default());
                exercise(&object, &mut tail);
            }
        }
        2 => {
            // A PIN record: cost parameters, salt, nonce and wrapped key, all from the file.
            let record = r.rest();
            // A cost within the bound is legitimate however slow (up to seconds natively, minutes
            // under ASan): such records are not run beyond 16 MiB·pass. Past the bound the record
            // must be refused at once.
            let word = |at: usize| {
                record.get(at..at + 4).map_or(0, |w| {
                    u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                })
            };
            let cost = word(1) * word(5);
            if cost <= 16 * 1024 || cost > crypt::MAX_KDF_COST_KIB {
                let outcome = crypt::unwrap_token_key(record, b"user-1234", b"context");
                if cost > crypt::MAX_KDF_COST_KIB {
                    assert!(outcome.is_err(), "a PIN record past the KDF bound was used");
                }
            }
        }
        _ => {
            let sealed = r.rest();
            let _ = crypt::open(&token_key(), sealed, b"aad");
        }
    }
}
