//! Key attributes the module fills in: key-usage defaults, `CKA_EC_POINT`/`CKA_EC_PARAMS` encodings,
//! the attributes that record where a key came from, and `CKA_ALLOWED_MECHANISMS`.

#[macro_use]
mod common;

use common::crosscheck::{der, spki_key_bits, tlv};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

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
