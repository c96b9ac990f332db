//! Misuse through the raw C functions, part one: NULL pointers are CKR_ARGUMENTS_BAD, and output
//! follows the length-query convention (NULL buffer gives the length, a short buffer gives
//! CKR_BUFFER_TOO_SMALL and keeps the operation). Invalid handles and states are in `handles.rs`,
//! the function lists and interfaces in `interfaces.rs`.

#[macro_use]
mod common;

use common::*;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;

fn mech(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn attribute(kind: CK_ATTRIBUTE_TYPE, value: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: kind,
        pValue: value.as_mut_ptr().cast(),
        ulValueLen: value.len() as CK_ULONG,
    }
}

fn session_with_keys(label: &str) -> (Slot, Session, ObjectHandle, ObjectHandle) {
    let (slot, session) = user_session(label);
    let (public, private) = ec_pair(&session, P256);
    (slot, session, public, private)
}

#[test]
fn null_pointers_are_arguments_bad() {
    let (slot, session, public, private) = session_with_keys("nulls");
    let slot = slot.id();
    let h = session.handle();
    let mut count: CK_ULONG = 0;
    let mut handle: CK_ULONG = 0;
    let mut data = *b"some data";
    let mut buffer = [0u8; 256];
    let mut len = buffer.len() as CK_ULONG;
    assert_eq!(ck!(C_GetInfo, null_mut()), CKR_ARGUMENTS_BAD);
    assert_eq!(
        ck!(C_GetSlotList, CK_TRUE, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_GetSlotInfo, slot, null_mut()), CKR_ARGUMENTS_BAD);
    assert_eq!(ck!(C_GetTokenInfo, slot, null_mut()), CKR_ARGUMENTS_BAD);
    assert_eq!(
        ck!(C_GetMechanismList, slot, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_GetMechanismInfo, slot, CKM_SHA256, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    let flags = CKF_SERIAL_SESSION;
    assert_eq!(
        ck!(C_OpenSession, slot, flags, null_mut(), None, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_GetSessionInfo, h, null_mut()), CKR_ARGUMENTS_BAD);
    assert_eq!(ck!(C_Login, h, CKU_USER, null_mut(), 4), CKR_ARGUMENTS_BAD);
    assert_eq!(
        ck!(C_SetPIN, h, null_mut(), 4, null_mut(), 4),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_CreateObject, h, null_mut(), 1, &mut handle),
        CKR_ARGUMENTS_BAD
    );
    let mut class = CKO_DATA.to_ne_bytes();
    let mut template = [attribute(CKA_CLASS, &mut class)];
    assert_eq!(
        ck!(C_CreateObject, h, template.as_mut_ptr(), 1, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_CopyObject, h, public.handle(), null_mut(), 0, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_GetObjectSize, h, public.handle(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_GetAttributeValue, h, public.handle(), null_mut(), 1),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_FindObjectsInit, h, null_mut(), 2), CKR_ARGUMENTS_BAD);
    assert_eq!(ck!(C_FindObjectsInit, h, null_mut(), 0), CKR_OK);
    assert_eq!(
        ck!(C_FindObjects, h, null_mut(), 1, &mut count),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_FindObjects, h, &mut handle, 1, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_FindObjectsFinal, h), CKR_OK);
    assert_eq!(
        ck!(C_SignInit, h, null_mut(), private.handle()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_DigestInit, h, null_mut()), CKR_ARGUMENTS_BAD);
    let mut sha = mech(CKM_SHA256);
    assert_eq!(ck!(C_DigestInit, h, &mut sha), CKR_OK);
    assert_eq!(
        ck!(C_Digest, h, null_mut(), 5, buffer.as_mut_ptr(), &mut len),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(
            C_Digest,
            h,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            buffer.as_mut_ptr(),
            null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    let mut ecdsa = mech(CKM_ECDSA);
    assert_eq!(
        ck!(C_SignInit, h, &mut ecdsa, private.handle()),
        CKR_OPERATION_ACTIVE
    );
    let mut keygen = mech(CKM_AES_KEY_GEN);
    let mut value_len = (16 as CK_ULONG).to_ne_bytes();
    let mut template = [attribute(CKA_VALUE_LEN, &mut value_len)];
    assert_eq!(
        ck!(
            C_GenerateKey,
            h,
            &mut keygen,
            template.as_mut_ptr(),
            1,
            null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    let mut pairgen = mech(CKM_EC_KEY_PAIR_GEN);
    assert_eq!(
        ck!(
            C_GenerateKeyPair,
            h,
            &mut pairgen,
            null_mut(),
            0,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_GenerateRandom, h, null_mut(), 8), CKR_ARGUMENTS_BAD);
    assert_eq!(
        ck!(C_InitToken, slot, null_mut(), 0, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_Finalize, std::ptr::dangling_mut::<c_void>()),
        CKR_ARGUMENTS_BAD
    );
    let get_list = common::raw().C_GetFunctionList.unwrap();
    // SAFETY: a NULL out pointer is what is being tested.
    assert_eq!(unsafe { get_list(null_mut()) }, CKR_ARGUMENTS_BAD);
}

/// Runs `call(buffer, &mut len)` three times: NULL buffer, a too-short one, a right-sized one.
fn length_query(mut call: impl FnMut(*mut u8, &mut CK_ULONG) -> CK_RV) -> Vec<u8> {
    let mut len: CK_ULONG = 0;
    assert_eq!(call(null_mut(), &mut len), CKR_OK, "length query");
    let needed = len as usize;
    assert!(needed > 0);
    let mut short = vec![0u8; needed - 1];
    len = short.len() as CK_ULONG;
    assert_eq!(call(short.as_mut_ptr(), &mut len), CKR_BUFFER_TOO_SMALL);
    assert_eq!(
        len as usize, needed,
        "the too-small answer says what is needed"
    );
    let mut out = vec![0u8; needed + 10];
    len = out.len() as CK_ULONG;
    assert_eq!(call(out.as_mut_ptr(), &mut len), CKR_OK);
    out.truncate(len as usize);
    out
}

#[test]
fn length_queries_and_short_buffers_keep_the_operation() {
    let (slot, session, public, private) = session_with_keys("lengths");
    let slot = slot.id();
    let h = session.handle();
    let mut data = *b"length query";
    let n = data.len() as CK_ULONG;

    let mut ecdsa = mech(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
    let signature = length_query(|out, len| ck!(C_Sign, h, data.as_mut_ptr(), n, out, len));
    assert_eq!(signature.len(), 64);
    let mut sig = signature.clone();
    // The operation ended with the signature; the signature is the one computed first.
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    assert_eq!(
        ck!(C_Sign, h, data.as_mut_ptr(), n, out.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_VerifyInit, h, &mut ecdsa, public.handle()), CKR_OK);
    assert_eq!(
        ck!(C_Verify, h, data.as_mut_ptr(), n, sig.as_mut_ptr(), 64),
        CKR_OK
    );

    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
    assert_eq!(ck!(C_SignUpdate, h, data.as_mut_ptr(), n), CKR_OK);
    let signature = length_query(|out, len| ck!(C_SignFinal, h, out, len));
    assert_eq!(signature.len(), 64);

    let mut sha = mech(CKM_SHA256);
    assert_eq!(ck!(C_DigestInit, h, &mut sha), CKR_OK);
    let digest = length_query(|out, len| ck!(C_Digest, h, data.as_mut_ptr(), n, out, len));
    assert_eq!(
        digest,
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data).as_ref()
    );
    assert_eq!(ck!(C_DigestInit, h, &mut sha), CKR_OK);
    assert_eq!(ck!(C_DigestUpdate, h, data.as_mut_ptr(), n), CKR_OK);
    assert_eq!(
        length_query(|out, len| ck!(C_DigestFinal, h, out, len)),
        digest
    );

    let (rsa_public, rsa_private) = rsa_pair(&session, 2048);
    let mut pkcs1 = mech(CKM_RSA_PKCS);
    assert_eq!(
        ck!(C_EncryptInit, h, &mut pkcs1, rsa_public.handle()),
        CKR_OK
    );
    let mut ciphertext = length_query(|out, len| ck!(C_Encrypt, h, data.as_mut_ptr(), n, out, len));
    assert_eq!(ciphertext.len(), 256);
    assert_eq!(
        ck!(C_DecryptInit, h, &mut pkcs1, rsa_private.handle()),
        CKR_OK
    );
    let c = ciphertext.len() as CK_ULONG;
    // The plaintext's length is only known after decryption; the query may overestimate it.
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(
            C_Decrypt,
            h,
            ciphertext.as_mut_ptr(),
            c,
            null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert!(len as usize >= data.len());
    let mut plain = vec![0u8; len as usize];
    assert_eq!(
        ck!(
            C_Decrypt,
            h,
            ciphertext.as_mut_ptr(),
            c,
            plain.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(&plain[..len as usize], &data);

    let kek = session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into())],
        )
        .unwrap();
    let target = session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into()), Attribute::Extractable(true)],
        )
        .unwrap();
    let mut wrap = mech(CKM_AES_KEY_WRAP);
    let wrapped = length_query(|out, len| {
        ck!(
            C_WrapKey,
            h,
            &mut wrap,
            kek.handle(),
            target.handle(),
            out,
            len
        )
    });
    assert_eq!(wrapped.len(), 24);

    // Lists follow the same convention with counts.
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList, slot, null_mut(), &mut count),
        CKR_OK
    );
    let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize - 1];
    let mut room = list.len() as CK_ULONG;
    assert_eq!(
        ck!(C_GetMechanismList, slot, list.as_mut_ptr(), &mut room),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(room, count);
    assert_eq!(ck!(C_GetSlotList, CK_FALSE, null_mut(), &mut count), CKR_OK);
    assert!(count >= 2);
    let mut slots = vec![0 as CK_SLOT_ID; count as usize];
    let mut room: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetSlotList, CK_FALSE, slots.as_mut_ptr(), &mut room),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(room, count);
}

#[test]
fn an_uncollected_result_keeps_the_operation_active() {
    let (_slot, session, _public, private) = session_with_keys("uncollected");
    let h = session.handle();
    let mut data = *b"collect me";
    let n = data.len() as CK_ULONG;
    let mut ecdsa = mech(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(C_Sign, h, data.as_mut_ptr(), n, null_mut(), &mut len),
        CKR_OK
    );
    assert_eq!(len, 64);
    // The length query left the signature to collect: the operation is still active.
    assert_eq!(
        ck!(C_SignInit, h, &mut ecdsa, private.handle()),
        CKR_OPERATION_ACTIVE
    );
    let mut sha = mech(CKM_SHA256);
    assert_eq!(ck!(C_DigestInit, h, &mut sha), CKR_OPERATION_ACTIVE);
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    assert_eq!(
        ck!(C_Sign, h, data.as_mut_ptr(), n, out.as_mut_ptr(), &mut len),
        CKR_OK
    );
    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
}
