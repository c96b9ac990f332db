//! Objects: data objects and their defaults, copying within the rules, destroying, and searching
//! over any template, and who may make trusted keys. Imported keys and certificates are in
//! `import.rs`.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki_sys::*;

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

#[test]
fn only_the_so_makes_trusted_keys_and_they_alone_wrap_protected_keys() {
    let (_, session) = user_session("trusted");
    let aes = |value: u8, extra: &[Attribute]| {
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![value; 16]),
        ];
        template.extend_from_slice(extra);
        template
    };
    // The user cannot mark a key trusted, by creating, generating or copying.
    assert_eq!(
        rv(session.create_object(&aes(1, &[Attribute::Trusted(true)]))),
        RvError::AttributeReadOnly
    );
    assert_eq!(
        rv(session.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into()), Attribute::Trusted(true)]
        )),
        RvError::AttributeReadOnly
    );
    let plain_kek = session.create_object(&aes(2, &[])).unwrap();
    assert_eq!(
        rv(session.copy_object(plain_kek, &[Attribute::Trusted(true)])),
        RvError::AttributeReadOnly
    );
    let protected = session
        .create_object(&aes(
            3,
            &[
                Attribute::Extractable(true),
                Attribute::WrapWithTrusted(true),
            ],
        ))
        .unwrap();
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrap, plain_kek, protected)),
        RvError::KeyNotWrappable
    );
    session.logout().unwrap();

    // The SO makes a public trusted wrapping key; the user's protected key leaves through it only.
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    let trusted_kek = session
        .create_object(&aes(
            4,
            &[Attribute::Trusted(true), Attribute::Private(false)],
        ))
        .unwrap();
    session.logout().unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(bool_attr(&session, trusted_kek, AttributeType::Trusted));
    // The logout destroyed the private session key (as C_Logout must): make it again.
    assert_eq!(
        rv(session.get_attributes(protected, &[AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    let protected = session
        .create_object(&aes(
            3,
            &[
                Attribute::Extractable(true),
                Attribute::WrapWithTrusted(true),
            ],
        ))
        .unwrap();
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrap, trusted_kek, protected)
        .unwrap();
    assert_eq!(wrapped.len(), 24);
}
