//! Importing with `C_CreateObject`: X.509 certificates with their fields filled in, and RSA, EC and
//! Ed25519 keys made by OpenSSL, which then verifies what the module signs with them.

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

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
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
