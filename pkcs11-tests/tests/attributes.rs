//! Attribute rules: `C_GetAttributeValue`'s per-attribute outcome and what `C_SetAttributeValue`
//! may change. Defaults and token-set attributes of keys are in `key_defaults.rs`.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use std::ptr::null_mut;

/// A template entry: a length query (`room` None) or a buffer of `room` bytes.
struct Query {
    kind: CK_ATTRIBUTE_TYPE,
    buffer: Option<Vec<u8>>,
}

fn query(kind: CK_ATTRIBUTE_TYPE, room: Option<usize>) -> Query {
    Query {
        kind,
        buffer: room.map(|n| vec![0u8; n]),
    }
}

/// Calls `C_GetAttributeValue` directly: the return value and, per attribute, the length reported and
/// the bytes written.
fn get_raw(
    session: &Session,
    object: ObjectHandle,
    queries: &mut [Query],
) -> (CK_RV, Vec<(CK_ULONG, Vec<u8>)>) {
    let mut template: Vec<CK_ATTRIBUTE> = queries
        .iter_mut()
        .map(|q| CK_ATTRIBUTE {
            type_: q.kind,
            pValue: q
                .buffer
                .as_mut()
                .map_or(null_mut(), |b| b.as_mut_ptr().cast()),
            ulValueLen: q.buffer.as_ref().map_or(0, |b| b.len() as CK_ULONG),
        })
        .collect();
    let result = ck!(
        C_GetAttributeValue,
        session.handle(),
        object.handle(),
        template.as_mut_ptr(),
        template.len() as CK_ULONG
    );
    let out = template
        .iter()
        .zip(queries.iter())
        .map(|(t, q)| {
            let written = match (&q.buffer, t.ulValueLen) {
                (Some(b), len) if len != CK_UNAVAILABLE_INFORMATION => b[..len as usize].to_vec(),
                _ => Vec::new(),
            };
            (t.ulValueLen, written)
        })
        .collect();
    (result, out)
}

#[test]
fn get_attribute_value_reports_each_attribute_separately() {
    let (_, session) = user_session("getattr");
    let (_, private) = key_pair(
        &session,
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::ModulusBits(2048.into())],
        &[Attribute::Label(b"rsa-label".to_vec())],
    );
    const NA: CK_ULONG = CK_UNAVAILABLE_INFORMATION;

    // A NULL buffer asks for the length.
    let (result, out) = get_raw(&session, private, &mut [query(CKA_LABEL, None)]);
    assert_eq!((result, out[0].0), (CKR_OK, 9));

    // Sensitive: only that attribute is unavailable; the others are still filled in.
    let (result, out) = get_raw(
        &session,
        private,
        &mut [
            query(CKA_LABEL, Some(32)),
            query(CKA_PRIVATE_EXPONENT, Some(512)),
            query(CKA_MODULUS, None),
        ],
    );
    assert_eq!(result, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(out[0], (9, b"rsa-label".to_vec()));
    assert_eq!(out[1].0, NA);
    assert_eq!(out[2].0, 256);

    // An attribute the object does not have.
    let (result, out) = get_raw(
        &session,
        private,
        &mut [
            query(CKA_VALUE_LEN, Some(8)),
            query(CKA_LABEL, Some(32)),
            query(0x8000_1234, Some(8)),
        ],
    );
    assert_eq!(result, CKR_ATTRIBUTE_TYPE_INVALID);
    assert_eq!(out[0].0, NA);
    assert_eq!(out[1], (9, b"rsa-label".to_vec()));
    assert_eq!(out[2].0, NA);

    // A buffer too small for its value.
    let (result, out) = get_raw(
        &session,
        private,
        &mut [query(CKA_LABEL, Some(3)), query(CKA_SIGN, Some(1))],
    );
    assert_eq!(result, CKR_BUFFER_TOO_SMALL);
    assert_eq!(out[0].0, NA);
    assert_eq!(out[1], (1, vec![CK_TRUE]));

    // All three at once: sensitive or type-invalid outranks the short buffer, each entry marked.
    let (result, out) = get_raw(
        &session,
        private,
        &mut [
            query(CKA_LABEL, Some(2)),
            query(CKA_PRIME_1, None),
            query(CKA_VALUE_LEN, None),
            query(CKA_KEY_TYPE, Some(std::mem::size_of::<CK_ULONG>())),
        ],
    );
    assert!(
        result == CKR_ATTRIBUTE_SENSITIVE || result == CKR_ATTRIBUTE_TYPE_INVALID,
        "{result:#x}"
    );
    assert_eq!(out[0].0, NA);
    assert_eq!(out[1].0, NA);
    assert_eq!(out[2].0, NA);
    assert_eq!(out[3].1, CKK_RSA.to_ne_bytes());

    // The same key made readable shows its components.
    let (_, open) = key_pair(
        &session,
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::ModulusBits(2048.into())],
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let (result, out) = get_raw(&session, open, &mut [query(CKA_PRIVATE_EXPONENT, None)]);
    assert_eq!(result, CKR_OK);
    assert!(out[0].0 > 200 && out[0].0 <= 256);
    // Not sensitive but unextractable is still unreadable.
    let (_, locked) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::Sensitive(false), Attribute::Extractable(false)],
    );
    let (result, out) = get_raw(&session, locked, &mut [query(CKA_VALUE, None)]);
    assert_eq!((result, out[0].0), (CKR_ATTRIBUTE_SENSITIVE, NA));
}

#[test]
fn set_attribute_value_follows_the_change_rules() {
    let (slot, session) = user_session("setattr");
    let key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Token(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Label(b"before".to_vec()),
            ],
        )
        .unwrap();
    session
        .update_attributes(
            key,
            &[Attribute::Label(b"after".to_vec()), Attribute::Id(vec![7])],
        )
        .unwrap();
    // The change is stored: another session finds the key by its new label.
    let other = pkcs11().open_ro_session(slot).unwrap();
    assert_eq!(
        other
            .find_objects(&[Attribute::Label(b"after".to_vec())])
            .unwrap(),
        vec![key]
    );

    for read_only in [
        Attribute::Class(ObjectClass::DATA),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
        Attribute::Value(vec![0; 16]),
        Attribute::Local(false),
        Attribute::AlwaysSensitive(true),
        Attribute::NeverExtractable(true),
        Attribute::KeyGenMechanism(MechanismType::AES_CBC),
        Attribute::CheckValue(vec![1, 2, 3]),
    ] {
        assert_eq!(
            rv(session.update_attributes(key, std::slice::from_ref(&read_only))),
            RvError::AttributeReadOnly,
            "{read_only:?}"
        );
    }
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::Modulus(vec![1, 2, 3])])),
        RvError::AttributeTypeInvalid
    );
    // All or nothing: a valid change next to a refused one is not applied.
    assert_eq!(
        rv(session.update_attributes(
            key,
            &[
                Attribute::Label(b"partial".to_vec()),
                Attribute::Class(ObjectClass::DATA)
            ]
        )),
        RvError::AttributeReadOnly
    );
    assert_eq!(bytes_attr(&session, key, AttributeType::Label), b"after");

    // CKA_SENSITIVE only goes false -> true, CKA_EXTRACTABLE only true -> false.
    session
        .update_attributes(key, &[Attribute::Sensitive(true)])
        .unwrap();
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::Sensitive(false)])),
        RvError::AttributeReadOnly
    );
    session
        .update_attributes(key, &[Attribute::Extractable(false)])
        .unwrap();
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::Extractable(true)])),
        RvError::AttributeReadOnly
    );
    // What the key once was is not rewritten.
    assert!(!bool_attr(&session, key, AttributeType::AlwaysSensitive));
    assert!(!bool_attr(&session, key, AttributeType::NeverExtractable));
    let (result, _) = get_raw(&session, key, &mut [query(CKA_VALUE, None)]);
    assert_eq!(result, CKR_ATTRIBUTE_SENSITIVE);

    // A CK_BBOOL must be one byte.
    let mut two = [1u8, 0];
    let mut template = [CK_ATTRIBUTE {
        type_: CKA_DERIVE,
        pValue: two.as_mut_ptr().cast(),
        ulValueLen: 2,
    }];
    assert_eq!(
        ck!(
            C_SetAttributeValue,
            session.handle(),
            key.handle(),
            template.as_mut_ptr(),
            1
        ),
        CKR_ATTRIBUTE_VALUE_INVALID
    );

    let frozen = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Modifiable(false),
        ])
        .unwrap();
    assert_eq!(
        rv(session.update_attributes(frozen, &[Attribute::Label(b"x".to_vec())])),
        RvError::ActionProhibited
    );
}
