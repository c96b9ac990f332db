//! `fork()`: the child inherits the parent's initialised module but may not use it; every call gets
//! `CKR_CRYPTOKI_NOT_INITIALIZED` until the child calls `C_Initialize`, after which it works on its
//! own (and finds the parent's token key). The parent is unaffected. Its own file and one test, so
//! no other test thread is inside the module when the process forks.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki_sys::*;
use std::ptr::null_mut;

/// What the child checks, in order; it exits with the number of the first step that failed.
fn child_steps(parent_session: CK_SESSION_HANDLE, slot: CK_SLOT_ID) -> i32 {
    let mut count: CK_ULONG = 0;
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    if ck!(C_GetSlotList, CK_FALSE, null_mut(), &mut count) != CKR_CRYPTOKI_NOT_INITIALIZED {
        return 10;
    }
    if ck!(C_GetSessionInfo, parent_session, &mut info) != CKR_CRYPTOKI_NOT_INITIALIZED {
        return 11;
    }
    let mut data = *b"from the child";
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let rv = ck!(
        C_Sign,
        parent_session,
        data.as_mut_ptr(),
        14,
        out.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_CRYPTOKI_NOT_INITIALIZED {
        return 12;
    }
    if ck!(C_Initialize, null_mut()) != CKR_OK {
        return 13;
    }
    if ck!(C_GetSlotList, CK_FALSE, null_mut(), &mut count) != CKR_OK || count < 2 {
        return 14;
    }
    // The parent's session handle means nothing to the child's new module state.
    if ck!(C_GetSessionInfo, parent_session, &mut info) != CKR_SESSION_HANDLE_INVALID {
        return 15;
    }
    let mut session: CK_SESSION_HANDLE = 0;
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    if ck!(C_OpenSession, slot, flags, null_mut(), None, &mut session) != CKR_OK {
        return 16;
    }
    let mut user_pin = USER_PIN.as_bytes().to_vec();
    let pin_len = user_pin.len() as CK_ULONG;
    if ck!(C_Login, session, CKU_USER, user_pin.as_mut_ptr(), pin_len) != CKR_OK {
        return 17;
    }
    let mut class = CKO_PRIVATE_KEY.to_ne_bytes();
    let mut label = *b"forked";
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class.as_mut_ptr().cast(),
            ulValueLen: class.len() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: label.len() as CK_ULONG,
        },
    ];
    let mut key: CK_OBJECT_HANDLE = 0;
    if ck!(C_FindObjectsInit, session, template.as_mut_ptr(), 2) != CKR_OK
        || ck!(C_FindObjects, session, &mut key, 1, &mut count) != CKR_OK
        || count != 1
        || ck!(C_FindObjectsFinal, session) != CKR_OK
    {
        return 18;
    }
    let mut mechanism = CK_MECHANISM {
        mechanism: CKM_ECDSA_SHA256,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    if ck!(C_SignInit, session, &mut mechanism, key) != CKR_OK
        || ck!(
            C_Sign,
            session,
            data.as_mut_ptr(),
            14,
            out.as_mut_ptr(),
            &mut len
        ) != CKR_OK
        || len != 64
    {
        return 19;
    }
    if ck!(C_Finalize, null_mut()) != CKR_OK {
        return 20;
    }
    0
}

#[test]
fn a_forked_child_must_initialize_again() {
    let (slot, session) = user_session("fork");
    let (_, private) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec()), Attribute::Token(true)],
        &[Attribute::Token(true), Attribute::Label(b"forked".to_vec())],
    );
    // Load the raw function list before forking, so the child only calls into the module.
    common::raw();
    // SAFETY: the child runs only `child_steps` (module calls) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child_steps(session.handle(), slot.id());
        // SAFETY: ends the child without running the parent's exit handlers or test harness.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child made above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child did not exit normally");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child failed at step {} (see child_steps)",
        libc::WEXITSTATUS(status)
    );
    // The parent's module, session and login are untouched.
    session
        .sign(&Mechanism::EcdsaSha256, private, b"parent still works")
        .unwrap();
}
