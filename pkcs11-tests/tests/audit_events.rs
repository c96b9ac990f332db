//! Audit records of key unwrapping and derivation, read from the store's audit file after
//! `C_Finalize` has written every pending record; the chain is checked with the CLI verifier.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[test]
fn unwrap_and_derive_are_recorded() {
    let context = new_context();
    let slot = fresh_token_in(&context, "audited-keys");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();

    let aes = |label: &str| {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(vec![0x11; 32]),
                Attribute::Extractable(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap()
    };
    let kek = aes("audit-kek");
    let target = aes("audit-target");
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrap, kek, target)
        .unwrap();
    session
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Label(b"audited-unwrap".to_vec()),
            ],
        )
        .unwrap();

    let pair = || {
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(P256.to_vec())],
                &[Attribute::Derive(true)],
            )
            .unwrap()
    };
    let (_, ours) = pair();
    let (theirs, _) = pair();
    let point = match session
        .get_attributes(theirs, &[cryptoki::object::AttributeType::EcPoint])
        .unwrap()
        .remove(0)
    {
        Attribute::EcPoint(point) => point,
        other => panic!("{other:?}"),
    };
    session
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
            ours,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Label(b"audited-derive".to_vec()),
            ],
        )
        .unwrap();
    drop(session);
    context.finalize().unwrap();

    let store = configure().parent().unwrap().join("store");
    let audit = std::fs::read_to_string(store.join("audit.jsonl")).expect("the audit file");
    let has = |event: &str, label: &str| {
        audit.lines().any(|line| {
            line.contains(&format!("\"event\":\"{event}\",\"rv\":\"CKR_OK\""))
                && line.contains(&format!("\"key_label\":\"{label}\""))
        })
    };
    assert!(
        has("unwrap", "audited-unwrap"),
        "no unwrap record:\n{audit}"
    );
    assert!(
        has("derive", "audited-derive"),
        "no derive record:\n{audit}"
    );
    assert!(has("import", "audit-kek"), "no import record");
    let cli = module_path().with_file_name("cryptera-pkcs11");
    if cli.exists() {
        let verify = std::process::Command::new(cli)
            .args(["audit", "verify"])
            .arg(store.join("audit.jsonl"))
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}
