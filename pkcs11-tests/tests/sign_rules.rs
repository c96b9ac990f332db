//! HMAC signatures against a reference HMAC, and the rules binding keys and parameters to signing
//! mechanisms: wrong key types, missing or mismatched PSS parameters, and errors that end the
//! active operation.

#[macro_use]
mod common;

use common::rawsign::{sign, verify, Mech};
use common::*;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki_sys::*;

const MESSAGE: &[u8] = b"HMAC and the rules of signing mechanisms.";

#[test]
fn hmac_signatures_match_a_reference_hmac() {
    let (_, session) = user_session("hmac");
    let value: Vec<u8> = (0u8..48).collect();
    let key = session
        .create_object(&[
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
            Attribute::Value(value.clone()),
        ])
        .unwrap();
    for (kind, alg, len) in [
        (CKM_SHA256_HMAC, aws_lc_rs::hmac::HMAC_SHA256, 32),
        (CKM_SHA384_HMAC, aws_lc_rs::hmac::HMAC_SHA384, 48),
        (CKM_SHA512_HMAC, aws_lc_rs::hmac::HMAC_SHA512, 64),
    ] {
        let reference = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(alg, &value), MESSAGE);
        let mut mech = Mech::plain(kind);
        let single = sign(&session, &mut mech, key, &[MESSAGE]);
        assert_eq!(single, reference.as_ref());
        assert_eq!(single.len(), len);
        let (a, b) = MESSAGE.split_at(20);
        assert_eq!(sign(&session, &mut mech, key, &[a, b]), single);
        assert_eq!(
            verify(&session, &mut mech, key, &[MESSAGE], &single),
            CKR_OK
        );
        assert_eq!(verify(&session, &mut mech, key, &[a, b], &single), CKR_OK);
        let mut wrong = single.clone();
        wrong[0] ^= 1;
        assert_eq!(
            verify(&session, &mut mech, key, &[MESSAGE], &wrong),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            verify(&session, &mut mech, key, &[MESSAGE], &single[..len - 1]),
            CKR_SIGNATURE_LEN_RANGE
        );
    }
    // HMAC wants a generic secret; an AES key is the wrong type.
    let aes = session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into())],
        )
        .unwrap();
    let mut raw = Mech::plain(CKM_SHA256_HMAC).raw();
    assert_eq!(
        ck!(C_SignInit, session.handle(), &mut raw, aes.handle()),
        CKR_KEY_TYPE_INCONSISTENT
    );
}

#[test]
fn keys_and_parameters_must_fit_the_mechanism() {
    let (_, session) = user_session("sign-misuse");
    let (rsa_public, rsa_private) = rsa_pair(&session, 2048);
    let (_, ec_private) = ec_pair(&session, P256);
    let h = session.handle();
    let init = |kind: CK_MECHANISM_TYPE, key: ObjectHandle, verify: bool| {
        let mut raw = Mech::plain(kind).raw();
        if verify {
            ck!(C_VerifyInit, h, &mut raw, key.handle())
        } else {
            ck!(C_SignInit, h, &mut raw, key.handle())
        }
    };
    assert_eq!(
        init(CKM_ECDSA, rsa_private, false),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(CKM_SHA256_RSA_PKCS, ec_private, false),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(CKM_SHA256_RSA_PKCS, rsa_public, false),
        CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(CKM_SHA256_RSA_PKCS, rsa_private, true),
        CKR_KEY_TYPE_INCONSISTENT
    );
    // Mechanisms the module has, but not for signing.
    assert_eq!(init(CKM_SHA256, rsa_private, false), CKR_MECHANISM_INVALID);
    assert_eq!(
        init(CKM_RSA_PKCS_OAEP, rsa_private, false),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(init(0x8000_0001, rsa_private, false), CKR_MECHANISM_INVALID);
    // PSS needs its parameters, and a hashing variant's hash must match them.
    assert_eq!(
        init(CKM_SHA256_RSA_PKCS_PSS, rsa_private, false),
        CKR_MECHANISM_PARAM_INVALID
    );
    let mut mismatch = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48);
    let mut raw = mismatch.raw();
    assert_eq!(
        ck!(C_SignInit, h, &mut raw, rsa_private.handle()),
        CKR_MECHANISM_PARAM_INVALID
    );

    // An input too long for CKM_RSA_PKCS fails and ends the operation.
    let mut raw = Mech::plain(CKM_RSA_PKCS).raw();
    assert_eq!(ck!(C_SignInit, h, &mut raw, rsa_private.handle()), CKR_OK);
    let mut long = vec![1u8; 250];
    let mut out = vec![0u8; 256];
    let mut len = out.len() as CK_ULONG;
    assert_eq!(
        ck!(
            C_Sign,
            h,
            long.as_mut_ptr(),
            long.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_DATA_LEN_RANGE
    );
    let mut short = vec![1u8; 20];
    assert_eq!(
        ck!(
            C_Sign,
            h,
            short.as_mut_ptr(),
            short.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A failed verification ends the operation too.
    let mut mech = Mech::plain(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        verify(&session, &mut mech, rsa_public, &[b"data"], &[0u8; 256]),
        CKR_SIGNATURE_INVALID
    );
    let mut data = b"data".to_vec();
    let mut sig = vec![0u8; 256];
    assert_eq!(
        ck!(C_Verify, h, data.as_mut_ptr(), 4, sig.as_mut_ptr(), 256),
        CKR_OPERATION_NOT_INITIALIZED
    );
}
