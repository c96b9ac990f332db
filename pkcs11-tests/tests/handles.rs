//! Misuse through the raw C functions, part two: invalid session, object, key and slot handles;
//! operations in the wrong state; the free slot's blank token; bad templates.

#[macro_use]
mod common;

use common::*;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki_sys::*;
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
