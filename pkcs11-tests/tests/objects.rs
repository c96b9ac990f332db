//! Objects: data objects, X.509 certificates, imported RSA/EC/Ed25519 keys (checked against OpenSSL,
//! which made them), copying, destroying and searching.

#[macro_use]
mod common;

use common::crosscheck::{self, openssl_verifies};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

#[test]
fn data_objects_keep_their_values_and_get_defaults() {
    let (_, session) = user_session("data");
    let object = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(b"note".to_vec()),
            Attribute::Application(b"tests".to_vec()),
            Attribute::Value(b"hello".to_vec()),
        ])
        .unwrap();
    assert_eq!(bytes_attr(&session, object, AttributeType::Value), b"hello");
    assert_eq!(
        bytes_attr(&session, object, AttributeType::Application),
        b"tests"
    );
    assert!(!bool_attr(&session, object, AttributeType::Token));
    assert!(!bool_attr(&session, object, AttributeType::Private));
    assert!(bool_attr(&session, object, AttributeType::Modifiable));
    assert!(bool_attr(&session, object, AttributeType::Copyable));
    assert!(bool_attr(&session, object, AttributeType::Destroyable));
    let mut size: CK_ULONG = 0;
    assert_eq!(
        ck!(
            C_GetObjectSize,
            session.handle(),
            object.handle(),
            &mut size
        ),
        CKR_OK
    );
    assert!(size > 0);
    // A key attribute does not belong on a data object.
    assert_eq!(
        rv(session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Modulus(vec![1, 2, 3]),
        ])),
        RvError::AttributeTypeInvalid
    );
    assert_eq!(
        rv(session.create_object(&[Attribute::Label(b"no class".to_vec())])),
        RvError::TemplateIncomplete
    );
}

#[test]
fn certificates_expose_their_x509_fields() {
    let (_, session) = user_session("certs");
    let cert = crosscheck::self_signed_certificate("objects-test");
    let handle = session
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Label(b"my cert".to_vec()),
            Attribute::Id(vec![0xc3]),
            Attribute::Value(cert.der.clone()),
        ])
        .unwrap();
    assert_eq!(bytes_attr(&session, handle, AttributeType::Value), cert.der);
    assert_eq!(
        bytes_attr(&session, handle, AttributeType::Subject),
        cert.subject
    );
    assert_eq!(
        bytes_attr(&session, handle, AttributeType::Issuer),
        cert.issuer
    );
    assert_eq!(
        bytes_attr(&session, handle, AttributeType::SerialNumber),
        cert.serial_number
    );
    assert_eq!(
        bytes_attr(&session, handle, AttributeType::PublicKeyInfo),
        cert.spki
    );
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert.der);
    assert_eq!(
        bytes_attr(&session, handle, AttributeType::CheckValue),
        sha1.as_ref()[..3]
    );
    // Certificates are public objects by default.
    assert!(!bool_attr(&session, handle, AttributeType::Private));
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Subject(cert.subject.clone()),
        ])
        .unwrap();
    assert_eq!(found, vec![handle]);

    let base = |value: Option<Vec<u8>>, kind: Option<CertificateType>| {
        let mut template = vec![Attribute::Class(ObjectClass::CERTIFICATE)];
        template.extend(kind.map(Attribute::CertificateType));
        template.extend(value.map(Attribute::Value));
        template
    };
    assert_eq!(
        rv(session.create_object(&base(None, Some(CertificateType::X_509)))),
        RvError::TemplateIncomplete
    );
    assert_eq!(
        rv(session.create_object(&base(Some(cert.der.clone()), None))),
        RvError::TemplateIncomplete
    );
    assert_eq!(
        rv(session.create_object(&base(
            Some(b"not a certificate".to_vec()),
            Some(CertificateType::X_509)
        ))),
        RvError::AttributeValueInvalid
    );
}

fn import_rsa(session: &Session, key: &crosscheck::RsaKey) -> (ObjectHandle, ObjectHandle) {
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(key.modulus.clone()),
            Attribute::PublicExponent(key.public_exponent.clone()),
        ])
        .unwrap();
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(key.modulus.clone()),
            Attribute::PublicExponent(key.public_exponent.clone()),
            Attribute::PrivateExponent(key.private_exponent.clone()),
            Attribute::Prime1(key.prime_1.clone()),
            Attribute::Prime2(key.prime_2.clone()),
            Attribute::Exponent1(key.exponent_1.clone()),
            Attribute::Exponent2(key.exponent_2.clone()),
            Attribute::Coefficient(key.coefficient.clone()),
        ])
        .unwrap();
    (public, private)
}

#[test]
fn imported_rsa_keys_sign_as_openssl_expects() {
    let (_, session) = user_session("rsa-import");
    let key = crosscheck::rsa_key(2048);
    let (public, private) = import_rsa(&session, &key);
    let message = b"imported RSA key";
    let signature = session
        .sign(&Mechanism::Sha256RsaPkcs, private, message)
        .unwrap();
    assert!(openssl_verifies(
        &key.spki,
        &["digest:sha256"],
        false,
        &sha256(message),
        &signature
    ));
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, message, &signature)
        .unwrap();
    assert_eq!(
        bytes_attr(&session, public, AttributeType::PublicKeyInfo),
        key.spki
    );
    assert_eq!(
        bytes_attr(&session, private, AttributeType::PublicKeyInfo),
        key.spki
    );
    match attr(&session, public, AttributeType::ModulusBits) {
        Attribute::ModulusBits(bits) => assert_eq!(u64::from(bits), 2048),
        other => panic!("{other:?}"),
    }
    // Imported keys were not made on the token.
    assert!(!bool_attr(&session, private, AttributeType::Local));
    assert!(!bool_attr(
        &session,
        private,
        AttributeType::AlwaysSensitive
    ));
    assert!(!bool_attr(
        &session,
        private,
        AttributeType::NeverExtractable
    ));
    assert!(bool_attr(&session, private, AttributeType::Sensitive));

    // Components of two different keys do not make a key.
    let other = crosscheck::rsa_key(2048);
    let mixed = crosscheck::RsaKey {
        modulus: other.modulus.clone(),
        ..key
    };
    let refused = rv(session.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(mixed.modulus.clone()),
        Attribute::PublicExponent(mixed.public_exponent.clone()),
        Attribute::PrivateExponent(mixed.private_exponent.clone()),
        Attribute::Prime1(mixed.prime_1.clone()),
        Attribute::Prime2(mixed.prime_2.clone()),
        Attribute::Exponent1(mixed.exponent_1.clone()),
        Attribute::Exponent2(mixed.exponent_2.clone()),
        Attribute::Coefficient(mixed.coefficient.clone()),
    ]));
    assert!(
        matches!(
            refused,
            RvError::TemplateInconsistent | RvError::AttributeValueInvalid
        ),
        "{refused:?}"
    );
}

fn import_curve_key(
    session: &Session,
    key_type: KeyType,
    params: &[u8],
    key: &crosscheck::CurveKey,
) -> (ObjectHandle, ObjectHandle) {
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(key_type),
            Attribute::EcParams(params.to_vec()),
            Attribute::EcPoint(crosscheck::der(0x04, &key.point)),
        ])
        .unwrap();
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
            Attribute::EcParams(params.to_vec()),
            Attribute::Value(key.private.clone()),
        ])
        .unwrap();
    (public, private)
}

#[test]
fn imported_ec_keys_sign_as_openssl_expects() {
    let (_, session) = user_session("ec-import");
    for (name, params, mechanism, digest) in [
        ("P-256", P256, Mechanism::EcdsaSha256, "sha256"),
        ("P-384", P384, Mechanism::EcdsaSha384, "sha384"),
    ] {
        let key = crosscheck::ec_key(name);
        let (public, private) = import_curve_key(&session, KeyType::EC, params, &key);
        let message = format!("imported {name} key");
        let signature = session
            .sign(&mechanism, private, message.as_bytes())
            .unwrap();
        let hashed = crosscheck::openssl(&[
            "dgst",
            &format!("-{digest}"),
            "-binary",
            &crosscheck::scratch_file("msg", message.as_bytes()),
        ]);
        assert!(
            openssl_verifies(
                &key.spki,
                &[],
                false,
                &hashed,
                &crosscheck::ecdsa_der(&signature)
            ),
            "{name}"
        );
        session
            .verify(&mechanism, public, message.as_bytes(), &signature)
            .unwrap();
        // The private key reports its public half, as OpenSSL encodes it.
        assert_eq!(
            bytes_attr(&session, private, AttributeType::EcPoint),
            crosscheck::der(0x04, &key.point)
        );
        assert_eq!(
            bytes_attr(&session, private, AttributeType::PublicKeyInfo),
            key.spki
        );
        assert_eq!(
            bytes_attr(&session, public, AttributeType::PublicKeyInfo),
            key.spki
        );
    }
    // A point that is not on the curve is refused.
    let mut bad = crosscheck::ec_key("P-256").point;
    bad[40] ^= 1;
    assert_eq!(
        rv(session.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(crosscheck::der(0x04, &bad)),
        ])),
        RvError::AttributeValueInvalid
    );
}

#[test]
fn imported_ed25519_keys_sign_as_openssl_expects() {
    let (_, session) = user_session("ed-import");
    let key = crosscheck::ed25519_key();
    let (public, private) = import_curve_key(&session, KeyType::EC_EDWARDS, ED25519, &key);
    let message = b"imported Ed25519 key";
    let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let signature = session.sign(&mechanism, private, message).unwrap();
    assert!(openssl_verifies(&key.spki, &[], true, message, &signature));
    session
        .verify(&mechanism, public, message, &signature)
        .unwrap();
    assert_eq!(
        bytes_attr(&session, private, AttributeType::PublicKeyInfo),
        key.spki
    );
}

#[test]
fn copies_take_the_template_within_the_rules() {
    let (_, session) = user_session("copy");
    let original = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(b"original".to_vec()),
            Attribute::Value(b"payload".to_vec()),
        ])
        .unwrap();
    let copy = session
        .copy_object(
            original,
            &[Attribute::Label(b"copy".to_vec()), Attribute::Token(true)],
        )
        .unwrap();
    assert_ne!(copy, original);
    assert_eq!(bytes_attr(&session, copy, AttributeType::Value), b"payload");
    assert_eq!(bytes_attr(&session, copy, AttributeType::Label), b"copy");
    assert!(bool_attr(&session, copy, AttributeType::Token));
    assert_eq!(
        bytes_attr(&session, original, AttributeType::Label),
        b"original"
    );
    assert_eq!(
        rv(session.copy_object(original, &[Attribute::Value(b"other".to_vec())])),
        RvError::AttributeReadOnly
    );

    let secret = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![9; 16]),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ])
        .unwrap();
    let tightened = session
        .copy_object(
            secret,
            &[Attribute::Sensitive(true), Attribute::Extractable(false)],
        )
        .unwrap();
    assert!(bool_attr(&session, tightened, AttributeType::Sensitive));
    assert!(!bool_attr(&session, tightened, AttributeType::Extractable));
    assert_eq!(
        rv(session.copy_object(tightened, &[Attribute::Sensitive(false)])),
        RvError::AttributeReadOnly
    );
    assert_eq!(
        rv(session.copy_object(tightened, &[Attribute::Extractable(true)])),
        RvError::AttributeReadOnly
    );

    let sealed = session
        .copy_object(original, &[Attribute::Copyable(false)])
        .unwrap();
    assert_eq!(
        rv(session.copy_object(sealed, &[])),
        RvError::ActionProhibited
    );
}

#[test]
fn destroyed_objects_are_gone_and_undestroyable_ones_stay() {
    let (slot, session) = user_session("destroy");
    let stored = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"doomed".to_vec()),
        ])
        .unwrap();
    session.destroy_object(stored).unwrap();
    assert_eq!(
        rv(session.get_attributes(stored, &[AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        rv(session.destroy_object(stored)),
        RvError::ObjectHandleInvalid
    );
    let other = pkcs11().open_ro_session(slot).unwrap();
    assert!(other
        .find_objects(&[Attribute::Label(b"doomed".to_vec())])
        .unwrap()
        .is_empty());

    let kept = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Destroyable(false),
        ])
        .unwrap();
    assert_eq!(rv(session.destroy_object(kept)), RvError::ActionProhibited);
    assert!(!bool_attr(&session, kept, AttributeType::Destroyable));
}

#[test]
fn find_objects_matches_any_template() {
    let (_, session) = user_session("find");
    let data = |label: &str, app: &str| {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Application(app.as_bytes().to_vec()),
            ])
            .unwrap()
    };
    let a = data("alpha", "x");
    let b = data("beta", "x");
    let c = data("gamma", "y");
    let (public, private) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(P256.to_vec()),
            Attribute::Id(vec![1, 2]),
        ],
        &[Attribute::Id(vec![1, 2]), Attribute::Token(true)],
    );
    let sorted = |mut v: Vec<ObjectHandle>| {
        v.sort_by_key(|h| h.handle());
        v
    };
    assert_eq!(
        sorted(
            session
                .find_objects(&[Attribute::Class(ObjectClass::DATA)])
                .unwrap()
        ),
        sorted(vec![a, b, c])
    );
    assert_eq!(
        sorted(
            session
                .find_objects(&[Attribute::Application(b"x".to_vec())])
                .unwrap()
        ),
        sorted(vec![a, b])
    );
    assert_eq!(
        session
            .find_objects(&[Attribute::Label(b"gamma".to_vec())])
            .unwrap(),
        vec![c]
    );
    assert_eq!(
        sorted(session.find_objects(&[Attribute::Id(vec![1, 2])]).unwrap()),
        sorted(vec![public, private])
    );
    assert_eq!(
        session
            .find_objects(&[Attribute::Id(vec![1, 2]), Attribute::Sign(true)])
            .unwrap(),
        vec![private]
    );
    assert_eq!(
        session
            .find_objects(&[Attribute::KeyType(KeyType::EC), Attribute::Token(true)])
            .unwrap(),
        vec![private]
    );
    assert!(session
        .find_objects(&[Attribute::Label(b"delta".to_vec())])
        .unwrap()
        .is_empty());
    // An attribute the objects do not have matches nothing.
    assert!(session
        .find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::ModulusBits(2048.into())
        ])
        .unwrap()
        .is_empty());
    assert_eq!(session.find_objects(&[]).unwrap().len(), 5);

    // The raw interface hands out results in batches of the caller's size.
    let handle = session.handle();
    assert_eq!(
        ck!(C_FindObjectsInit, handle, std::ptr::null_mut(), 0),
        CKR_OK
    );
    assert_eq!(
        ck!(C_FindObjectsInit, handle, std::ptr::null_mut(), 0),
        CKR_OPERATION_ACTIVE
    );
    let mut seen = Vec::new();
    loop {
        let mut batch = [0 as CK_OBJECT_HANDLE; 2];
        let mut count: CK_ULONG = 0;
        assert_eq!(
            ck!(C_FindObjects, handle, batch.as_mut_ptr(), 2, &mut count),
            CKR_OK
        );
        assert!(count <= 2);
        if count == 0 {
            break;
        }
        seen.extend_from_slice(&batch[..count as usize]);
    }
    assert_eq!(ck!(C_FindObjectsFinal, handle), CKR_OK);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    assert_eq!(
        ck!(C_FindObjectsFinal, handle),
        CKR_OPERATION_NOT_INITIALIZED
    );
}
