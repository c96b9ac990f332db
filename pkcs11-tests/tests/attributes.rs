//! Attribute rules: `C_GetAttributeValue`'s per-attribute outcome, what `C_SetAttributeValue` may
//! change, key-usage defaults, `CKA_EC_POINT`/`CKA_EC_PARAMS` encodings and the attributes that record
//! where a key came from.

#[macro_use]
mod common;

use common::crosscheck::{der, spki_key_bits, tlv};
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
            rv(session.update_attributes(key, &[read_only.clone()])),
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

fn flags(session: &Session, object: ObjectHandle, kinds: &[AttributeType]) -> Vec<bool> {
    kinds
        .iter()
        .map(|k| bool_attr(session, object, *k))
        .collect()
}

#[test]
fn key_usage_defaults_follow_what_the_key_can_do() {
    use AttributeType::{Decrypt, Derive, Encrypt, Sign, Unwrap, Verify, Wrap};
    let (_, session) = user_session("usage");
    let public_usage = [Encrypt, Verify, Wrap, Derive];
    let private_usage = [Decrypt, Sign, Unwrap, Derive];

    let (public, private) = rsa_pair(&session, 2048);
    assert_eq!(
        flags(&session, public, &public_usage),
        [true, true, true, false]
    );
    assert_eq!(
        flags(&session, private, &private_usage),
        [true, true, true, false]
    );

    let (public, private) = ec_pair(&session, P256);
    assert_eq!(
        flags(&session, public, &public_usage),
        [false, true, false, false]
    );
    assert_eq!(
        flags(&session, private, &private_usage),
        [false, true, false, true]
    );

    let (public, private) = ed25519_pair(&session);
    assert_eq!(
        flags(&session, public, &public_usage),
        [false, true, false, false]
    );
    assert_eq!(
        flags(&session, private, &private_usage),
        [false, true, false, false]
    );

    let secret_usage = [Encrypt, Decrypt, Wrap, Unwrap, Sign, Verify, Derive];
    let aes = session
        .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())])
        .unwrap();
    assert_eq!(
        flags(&session, aes, &secret_usage),
        [true, true, true, true, false, false, false]
    );
    let hmac = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[Attribute::ValueLen(32.into())],
        )
        .unwrap();
    assert_eq!(
        flags(&session, hmac, &secret_usage),
        [false, false, false, false, true, true, false]
    );

    // Imported keys get the same defaults.
    let imported = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![0; 16]),
        ])
        .unwrap();
    assert_eq!(
        flags(&session, imported, &secret_usage),
        [true, true, true, true, false, false, false]
    );

    // What a template says wins, and the key then refuses that use.
    let (_, no_sign) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::Sign(false)],
    );
    assert!(!bool_attr(&session, no_sign, Sign));
    assert_eq!(
        rv(session.sign_init(&Mechanism::Ecdsa, no_sign)),
        RvError::KeyFunctionNotPermitted
    );
}

#[test]
fn ec_points_are_der_octet_strings_and_params_named_curves() {
    let (_, session) = user_session("ecpoint");
    for (params, point_len) in [(P256, 65), (P384, 97), (P521, 133), (ED25519, 32)] {
        let (public, private) = if params == ED25519 {
            ed25519_pair(&session)
        } else {
            ec_pair(&session, params)
        };
        for object in [public, private] {
            let encoded = bytes_attr(&session, object, AttributeType::EcPoint);
            let (octets, rest) = tlv(&encoded);
            assert_eq!(octets.tag, 0x04, "CKA_EC_POINT is an OCTET STRING");
            assert!(rest.is_empty());
            assert_eq!(octets.content.len(), point_len);
            if params != ED25519 {
                assert_eq!(octets.content[0], 0x04, "uncompressed point");
            }
            assert_eq!(
                bytes_attr(&session, object, AttributeType::EcParams),
                params
            );
            let spki = bytes_attr(&session, object, AttributeType::PublicKeyInfo);
            assert_eq!(spki_key_bits(&spki), octets.content);
        }
    }

    // The printable-string form of CKA_EC_PARAMS names a curve too.
    for (name, oid) in [
        ("prime256v1", P256),
        ("secp384r1", P384),
        ("edwards25519", ED25519),
    ] {
        let mechanism = if oid == ED25519 {
            Mechanism::EccEdwardsKeyPairGen
        } else {
            Mechanism::EccKeyPairGen
        };
        let (public, _) = key_pair(
            &session,
            &mechanism,
            &[Attribute::EcParams(der(0x13, name.as_bytes()))],
            &[],
        );
        assert_eq!(bytes_attr(&session, public, AttributeType::EcParams), oid);
    }
    let secp256k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(secp256k1.to_vec())],
            &[],
        )),
        RvError::CurveNotSupported
    );
}

#[test]
fn generated_keys_record_that_they_were_born_on_the_token() {
    use AttributeType::{
        AlwaysSensitive, CheckValue, Extractable, KeyGenMechanism, Local, NeverExtractable,
        Sensitive, ValueLen,
    };
    let (_, session) = user_session("origin");
    let origin = [
        Local,
        Sensitive,
        Extractable,
        AlwaysSensitive,
        NeverExtractable,
    ];
    let (public, private) = ec_pair(&session, P256);
    assert_eq!(
        flags(&session, private, &origin),
        [true, true, false, true, true]
    );
    assert!(bool_attr(&session, public, Local));
    for object in [public, private] {
        match attr(&session, object, KeyGenMechanism) {
            Attribute::KeyGenMechanism(m) => assert_eq!(m, MechanismType::ECC_KEY_PAIR_GEN),
            other => panic!("{other:?}"),
        }
    }
    let (_, readable) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    assert_eq!(
        flags(&session, readable, &origin),
        [true, false, true, false, false]
    );

    let aes = session
        .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())])
        .unwrap();
    assert_eq!(
        flags(&session, aes, &origin),
        [true, true, false, true, true]
    );
    match attr(&session, aes, KeyGenMechanism) {
        Attribute::KeyGenMechanism(m) => assert_eq!(m, MechanismType::AES_KEY_GEN),
        other => panic!("{other:?}"),
    }

    // A created key is not local and was never guaranteed sensitive.
    let zero_key = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![0; 16]),
        ])
        .unwrap();
    assert_eq!(
        flags(&session, zero_key, &origin),
        [false, true, false, false, false]
    );
    // CKA_CHECK_VALUE of AES: the start of AES(key, zero block); for the zero key, 66e94b.
    assert_eq!(
        bytes_attr(&session, zero_key, CheckValue),
        [0x66, 0xe9, 0x4b]
    );
    match attr(&session, zero_key, ValueLen) {
        Attribute::ValueLen(len) => assert_eq!(u64::from(len), 16),
        other => panic!("{other:?}"),
    }

    // The token sets these; a template may not.
    for token_set in [
        Attribute::Local(true),
        Attribute::AlwaysSensitive(true),
        Attribute::NeverExtractable(true),
    ] {
        assert_eq!(
            rv(session.create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(vec![0; 16]),
                token_set.clone(),
            ])),
            RvError::AttributeReadOnly,
            "{token_set:?}"
        );
        assert_eq!(
            rv(session.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(16.into()), token_set.clone()]
            )),
            RvError::AttributeReadOnly,
            "{token_set:?}"
        );
    }
}

#[test]
fn allowed_mechanisms_limit_what_a_key_does() {
    let (_, session) = user_session("allowed");
    let (_, private) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::AllowedMechanisms(vec![
            MechanismType::ECDSA_SHA256,
        ])],
    );
    match attr(&session, private, AttributeType::AllowedMechanisms) {
        Attribute::AllowedMechanisms(list) => {
            assert_eq!(list, vec![MechanismType::ECDSA_SHA256])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rv(session.sign_init(&Mechanism::Ecdsa, private)),
        RvError::MechanismInvalid
    );
    session
        .sign(&Mechanism::EcdsaSha256, private, b"allowed")
        .unwrap();
}
