//! Misuse through the raw C functions: NULL pointers, the length-query convention, invalid session,
//! object and slot handles, operations in the wrong state, bad templates, the function lists and
//! interfaces, unsupported functions and the module's exported symbols.

#[macro_use]
mod common;

use common::*;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
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
    assert_eq!(ck!(C_Finalize, 1usize as *mut c_void), CKR_ARGUMENTS_BAD);
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
fn invalid_handles_are_named_as_such() {
    let (slot, session, public, _) = session_with_keys("handles");
    let slot = slot.id();
    let h = session.handle();
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    for bad in [0 as CK_SESSION_HANDLE, 0xdead_beef] {
        assert_eq!(
            ck!(C_GetSessionInfo, bad, &mut info),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(ck!(C_CloseSession, bad), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(
            ck!(C_FindObjectsInit, bad, null_mut(), 0),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(ck!(C_Logout, bad), CKR_SESSION_HANDLE_INVALID);
        let mut byte = [0u8; 4];
        assert_eq!(
            ck!(C_GenerateRandom, bad, byte.as_mut_ptr(), 4),
            CKR_SESSION_HANDLE_INVALID
        );
    }
    // A closed session's handle stays invalid and is not handed out again.
    let mut closed: CK_SESSION_HANDLE = 0;
    let flags = CKF_SERIAL_SESSION;
    assert_eq!(
        ck!(C_OpenSession, slot, flags, null_mut(), None, &mut closed),
        CKR_OK
    );
    assert_eq!(ck!(C_CloseSession, closed), CKR_OK);
    assert_eq!(
        ck!(C_GetSessionInfo, closed, &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    let mut next: CK_SESSION_HANDLE = 0;
    assert_eq!(
        ck!(C_OpenSession, slot, flags, null_mut(), None, &mut next),
        CKR_OK
    );
    assert_ne!(next, closed);
    assert_eq!(ck!(C_CloseSession, next), CKR_OK);

    let mut size: CK_ULONG = 0;
    let mut label = *b"x";
    let mut template = [attribute(CKA_LABEL, &mut label)];
    let mut copy: CK_OBJECT_HANDLE = 0;
    for bad in [0 as CK_OBJECT_HANDLE, 0xdead_beef] {
        assert_eq!(
            ck!(C_GetObjectSize, h, bad, &mut size),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(ck!(C_DestroyObject, h, bad), CKR_OBJECT_HANDLE_INVALID);
        assert_eq!(
            ck!(C_GetAttributeValue, h, bad, template.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            ck!(C_SetAttributeValue, h, bad, template.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            ck!(C_CopyObject, h, bad, template.as_mut_ptr(), 1, &mut copy),
            CKR_OBJECT_HANDLE_INVALID
        );
        let mut ecdsa = mech(CKM_ECDSA);
        assert_eq!(ck!(C_SignInit, h, &mut ecdsa, bad), CKR_KEY_HANDLE_INVALID);
        assert_eq!(
            ck!(C_VerifyInit, h, &mut ecdsa, bad),
            CKR_KEY_HANDLE_INVALID
        );
        let mut wrap = mech(CKM_AES_KEY_WRAP);
        let mut len: CK_ULONG = 0;
        assert_eq!(
            ck!(
                C_WrapKey,
                h,
                &mut wrap,
                bad,
                public.handle(),
                null_mut(),
                &mut len
            ),
            CKR_WRAPPING_KEY_HANDLE_INVALID
        );
        let mut wrapped = [0u8; 24];
        let mut unwrapped: CK_OBJECT_HANDLE = 0;
        assert_eq!(
            ck!(
                C_UnwrapKey,
                h,
                &mut wrap,
                bad,
                wrapped.as_mut_ptr(),
                24,
                null_mut(),
                0,
                &mut unwrapped
            ),
            CKR_UNWRAPPING_KEY_HANDLE_INVALID
        );
    }
    // Object handles are not reused either.
    let first = session
        .create_object(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap();
    session.destroy_object(first).unwrap();
    let second = session
        .create_object(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap();
    assert_ne!(first, second);

    let mut slot_info = std::mem::MaybeUninit::<CK_SLOT_INFO>::uninit();
    let mut token_info = std::mem::MaybeUninit::<CK_TOKEN_INFO>::uninit();
    let mut count: CK_ULONG = 0;
    let bad_slot = 0xdead_beef;
    assert_eq!(
        ck!(C_GetSlotInfo, bad_slot, slot_info.as_mut_ptr()),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(
        ck!(C_GetTokenInfo, bad_slot, token_info.as_mut_ptr()),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(
        ck!(C_GetMechanismList, bad_slot, null_mut(), &mut count),
        CKR_SLOT_ID_INVALID
    );
    let mut session_out: CK_SESSION_HANDLE = 0;
    assert_eq!(
        ck!(
            C_OpenSession,
            bad_slot,
            flags,
            null_mut(),
            None,
            &mut session_out
        ),
        CKR_SLOT_ID_INVALID
    );
}

#[test]
fn operations_in_the_wrong_state_are_refused() {
    let (slot, session, public, private) = session_with_keys("states");
    let h = session.handle();
    let mut data = *b"data";
    let mut out = [0u8; 128];
    let mut len = out.len() as CK_ULONG;
    let mut sig = [0u8; 64];
    assert_eq!(
        ck!(C_SignUpdate, h, data.as_mut_ptr(), 4),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_SignFinal, h, out.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_Sign, h, data.as_mut_ptr(), 4, out.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_Verify, h, data.as_mut_ptr(), 4, sig.as_mut_ptr(), 64),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_VerifyFinal, h, sig.as_mut_ptr(), 64),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_DigestUpdate, h, data.as_mut_ptr(), 4),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(
            C_Encrypt,
            h,
            data.as_mut_ptr(),
            4,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(
            C_DecryptUpdate,
            h,
            data.as_mut_ptr(),
            4,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    let mut handles = [0 as CK_OBJECT_HANDLE; 4];
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_FindObjects, h, handles.as_mut_ptr(), 4, &mut count),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_FindObjectsFinal, h), CKR_OPERATION_NOT_INITIALIZED);

    let mut ecdsa = mech(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
    assert_eq!(
        ck!(C_SignInit, h, &mut ecdsa, private.handle()),
        CKR_OPERATION_ACTIVE
    );
    // Another operation's calls do not touch the active one.
    assert_eq!(
        ck!(C_VerifyUpdate, h, data.as_mut_ptr(), 4),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_SignUpdate, h, data.as_mut_ptr(), 4), CKR_OK);
    len = out.len() as CK_ULONG;
    assert_eq!(ck!(C_SignFinal, h, out.as_mut_ptr(), &mut len), CKR_OK);
    assert_eq!(ck!(C_VerifyInit, h, &mut ecdsa, public.handle()), CKR_OK);
    assert_eq!(ck!(C_VerifyUpdate, h, data.as_mut_ptr(), 4), CKR_OK);
    assert_eq!(ck!(C_VerifyFinal, h, out.as_mut_ptr(), len), CKR_OK);
    // Each session has its own operation.
    let other = pkcs11().open_ro_session(slot).unwrap();
    assert_eq!(ck!(C_SignInit, h, &mut ecdsa, private.handle()), CKR_OK);
    assert_eq!(
        ck!(C_SignInit, other.handle(), &mut ecdsa, private.handle()),
        CKR_OK
    );

    // Who may do what: C_InitPIN needs the SO, C_Logout a login.
    assert_eq!(
        ck!(C_InitPIN, h, b"abcdef".as_ptr() as *mut u8, 6),
        CKR_USER_NOT_LOGGED_IN
    );
    assert_eq!(ck!(C_Logout, other.handle()), CKR_OK);
    assert_eq!(ck!(C_Logout, h), CKR_USER_NOT_LOGGED_IN);
    let mut session_out: CK_SESSION_HANDLE = 0;
    assert_eq!(
        ck!(
            C_OpenSession,
            slot.id(),
            CKF_RW_SESSION,
            null_mut(),
            None,
            &mut session_out
        ),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        ck!(C_Initialize, null_mut()),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
}

#[test]
fn the_free_slot_holds_an_unrecognised_token_until_initialised() {
    let context = pkcs11();
    let _turn = free_slot_turn();
    let free = free_slot(context);
    assert!(context.get_slot_info(free).unwrap().token_present());
    let info = context.get_token_info(free).unwrap();
    assert!(!info.token_initialized());
    assert!(!info.user_pin_initialized());
    let mut handle: CK_SESSION_HANDLE = 0;
    assert_eq!(
        ck!(
            C_OpenSession,
            free.id(),
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut handle
        ),
        CKR_TOKEN_NOT_RECOGNIZED
    );
}

#[test]
fn bad_templates_are_refused_with_the_reason() {
    let (_, session, _, _) = session_with_keys("templates");
    let h = session.handle();
    let mut handle: CK_OBJECT_HANDLE = 0;
    let mut create = |template: &mut [CK_ATTRIBUTE]| {
        ck!(
            C_CreateObject,
            h,
            template.as_mut_ptr(),
            template.len() as CK_ULONG,
            &mut handle
        )
    };
    let mut data = CKO_DATA.to_ne_bytes();
    let mut two_bytes = [1u8, 1];
    let mut odd = 0x1234_5678 as CK_ULONG;
    let mut odd_class = odd.to_ne_bytes();
    let mut unavailable = [
        attribute(CKA_CLASS, &mut data),
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: CK_UNAVAILABLE_INFORMATION,
        },
    ];
    assert_eq!(create(&mut unavailable), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut dangling = [
        attribute(CKA_CLASS, &mut data),
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 5,
        },
    ];
    assert_eq!(create(&mut dangling), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut wide_bool = [
        attribute(CKA_CLASS, &mut data),
        attribute(CKA_TOKEN, &mut two_bytes),
    ];
    assert_eq!(create(&mut wide_bool), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut short_class = [attribute(CKA_CLASS, &mut two_bytes)];
    assert_eq!(create(&mut short_class), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut unknown_class = [attribute(CKA_CLASS, &mut odd_class)];
    assert_eq!(create(&mut unknown_class), CKR_ATTRIBUTE_VALUE_INVALID);
    let mut label = *b"label";
    let mut unknown_type = [
        attribute(CKA_CLASS, &mut data),
        attribute(0x7fff_0001, &mut label),
    ];
    assert_eq!(create(&mut unknown_type), CKR_ATTRIBUTE_TYPE_INVALID);
    odd = CKK_AES;
    let mut aes = odd.to_ne_bytes();
    let mut secret = CKO_SECRET_KEY.to_ne_bytes();
    let mut no_value = [
        attribute(CKA_CLASS, &mut secret),
        attribute(CKA_KEY_TYPE, &mut aes),
    ];
    assert_eq!(create(&mut no_value), CKR_TEMPLATE_INCOMPLETE);
    let mut no_key_type = [attribute(CKA_CLASS, &mut secret)];
    assert_eq!(create(&mut no_key_type), CKR_TEMPLATE_INCOMPLETE);
    let mut bad_length = [0u8; 15];
    let mut wrong_size = [
        attribute(CKA_CLASS, &mut secret),
        attribute(CKA_KEY_TYPE, &mut aes),
        attribute(CKA_VALUE, &mut bad_length),
    ];
    let refused = create(&mut wrong_size);
    assert!(
        refused == CKR_ATTRIBUTE_VALUE_INVALID || refused == CKR_KEY_SIZE_RANGE,
        "{refused:#x}"
    );
}

fn function_pointers<T>(list: &T) -> Vec<usize> {
    // A function list is a CK_VERSION (padded to pointer alignment) followed by function pointers.
    let words = std::mem::size_of::<T>() / std::mem::size_of::<usize>();
    // SAFETY: the list is a repr(C) struct of that many pointer-sized fields after the version.
    let all = unsafe { std::slice::from_raw_parts((list as *const T).cast::<usize>(), words) };
    all[1..].to_vec()
}

#[test]
fn interfaces_offer_3_0_and_2_40_with_every_function() {
    pkcs11();
    let library = unsafe { libloading::Library::new(module_path()) }.unwrap();
    type GetInterfaceList = unsafe extern "C" fn(*mut CK_INTERFACE, *mut CK_ULONG) -> CK_RV;
    type GetInterface = unsafe extern "C" fn(
        *mut CK_UTF8CHAR,
        *mut CK_VERSION,
        *mut *mut CK_INTERFACE,
        CK_FLAGS,
    ) -> CK_RV;
    // SAFETY: the symbols have these signatures by the spec.
    let (list_fn, get_fn) = unsafe {
        (
            *library
                .get::<GetInterfaceList>(b"C_GetInterfaceList\0")
                .unwrap(),
            *library.get::<GetInterface>(b"C_GetInterface\0").unwrap(),
        )
    };
    let mut count: CK_ULONG = 0;
    assert_eq!(unsafe { list_fn(null_mut(), &mut count) }, CKR_OK);
    assert_eq!(count, 2);
    assert_eq!(
        unsafe { list_fn(null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    let empty = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    let mut interfaces = [empty; 2];
    let mut room: CK_ULONG = 1;
    assert_eq!(
        unsafe { list_fn(interfaces.as_mut_ptr(), &mut room) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(room, 2);
    assert_eq!(
        unsafe { list_fn(interfaces.as_mut_ptr(), &mut room) },
        CKR_OK
    );
    let mut versions = Vec::new();
    for interface in &interfaces {
        // SAFETY: the module hands out NUL-terminated names and function lists.
        let name = unsafe { std::ffi::CStr::from_ptr(interface.pInterfaceName as *const _) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        let version = unsafe { (*(interface.pFunctionList as *const CK_FUNCTION_LIST)).version };
        versions.push((version.major, version.minor));
    }
    versions.sort_unstable();
    assert_eq!(versions, [(2, 40), (3, 0)]);

    let mut name = *b"PKCS 11\0";
    let mut found: *mut CK_INTERFACE = null_mut();
    let version_of = |found: *mut CK_INTERFACE| {
        // SAFETY: the module returned a valid interface.
        let list = unsafe { (*found).pFunctionList as *const CK_FUNCTION_LIST };
        let v = unsafe { (*list).version };
        (v.major, v.minor)
    };
    assert_eq!(
        unsafe { get_fn(null_mut(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0), "the default is the newest");
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0));
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v240, &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (2, 40));
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v30, &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0));
    // SAFETY: the 3.0 interface carries a CK_FUNCTION_LIST_3_0.
    let list30 = unsafe { &*((*found).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    assert!(
        function_pointers(list30).iter().all(|p| *p != 0),
        "every 3.0 entry is set"
    );
    assert!(
        function_pointers(common::raw()).iter().all(|p| *p != 0),
        "every 2.40 entry is set"
    );
    let mut v99 = CK_VERSION { major: 9, minor: 9 };
    assert_ne!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v99, &mut found, 0) },
        CKR_OK
    );
    let mut other = *b"Vendor\0";
    assert_ne!(
        unsafe { get_fn(other.as_mut_ptr(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(
        unsafe { get_fn(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD
    );

    // What the module does not do, it says so.
    let (_, session) = user_session("unsupported");
    let h = session.handle();
    let mut len: CK_ULONG = 0;
    let mut m = mech(CKM_AES_GCM);
    // SAFETY: valid arguments for each signature.
    unsafe {
        assert_eq!(
            list30.C_GetOperationState.unwrap()(h, null_mut(), &mut len),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            list30.C_MessageEncryptInit.unwrap()(h, &mut m, 0),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            list30.C_SignRecoverInit.unwrap()(h, &mut m, 0),
            CKR_FUNCTION_NOT_SUPPORTED
        );
    }
    let mut login = *b"user-1234";
    assert_eq!(
        unsafe { list30.C_LoginUser.unwrap()(h, CKU_USER, login.as_mut_ptr(), 9, null_mut(), 0) },
        CKR_USER_ALREADY_LOGGED_IN
    );
}

#[test]
fn the_library_exports_only_pkcs11_symbols() {
    let output = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils) lists the module's dynamic symbols");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let symbols: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(symbols.contains(&"C_GetFunctionList"));
    assert!(symbols.contains(&"C_GetInterface"));
    let foreign: Vec<&&str> = symbols.iter().filter(|s| !s.starts_with("C_")).collect();
    assert!(foreign.is_empty(), "non-PKCS#11 exports: {foreign:?}");
}
