//! The C ABI: every exported `C_*` function, the function lists and interfaces. The only place with
//! `unsafe` code. Each function checks its pointers, runs inside a panic guard, and calls the safe core.
#![allow(
    unsafe_code,
    non_snake_case,
    clippy::missing_safety_doc,
    clippy::too_many_arguments
)]

mod crypto;
pub mod engine;
mod general;
mod objects;
mod ptr;
mod unsupported;

use crate::error::{Error, Result};
use crate::session::Session;
use cryptoki_sys::*;
use std::ffi::c_void;

pub use crypto::*;
pub use general::*;
pub use objects::*;
pub use unsupported::*;

/// Runs a core call, turning its error into a `CK_RV` and a panic into `CKR_GENERAL_ERROR`: no panic
/// ever unwinds into the calling C code.
fn guard(body: impl FnOnce() -> Result<()>) -> CK_RV {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(err)) => err.rv(),
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Runs `f` on an open session of the initialised module.
fn session_call<T>(
    handle: CK_SESSION_HANDLE,
    f: impl FnOnce(&mut Session) -> Result<T>,
) -> Result<T> {
    let module = crate::module::get()?;
    let session = module.session(handle)?;
    let mut session = session
        .state
        .lock()
        .map_err(|_| Error::General("session lock poisoned".into()))?;
    f(&mut session)
}

macro_rules! function_list {
    ($ty:ident, $version:expr, { $($extra:ident),* }) => {
        $ty {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

static FUNCTIONS_2_40: CK_FUNCTION_LIST = function_list!(
    CK_FUNCTION_LIST,
    CK_VERSION {
        major: 2,
        minor: 40
    },
    {}
);

static FUNCTIONS_3_0: CK_FUNCTION_LIST_3_0 = function_list!(CK_FUNCTION_LIST_3_0, CK_VERSION { major: 3, minor: 0 }, {
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
    C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext, C_MessageEncryptFinal,
    C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext, C_MessageDecryptFinal,
    C_MessageSignInit, C_SignMessage, C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal,
    C_MessageVerifyInit, C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal
});

/// The interface table. It lives in writable memory because some callers (OpenSC's pkcs11-spy among
/// them) write into the `CK_INTERFACE` they are handed; the module itself only reads it.
struct Interfaces(std::cell::UnsafeCell<[CK_INTERFACE; 2]>);
// SAFETY: the module never writes the table; what callers write through the pointers they were
// given is theirs to synchronise, as with any PKCS#11 module.
unsafe impl Sync for Interfaces {}

static INTERFACE_NAME: &[u8] = b"PKCS 11\0";

static INTERFACES: Interfaces = Interfaces(std::cell::UnsafeCell::new([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut u8,
        pFunctionList: &FUNCTIONS_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut u8,
        pFunctionList: &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as *mut c_void,
        flags: 0,
    },
]));

/// `C_GetFunctionList`: the 2.40 list, callable before `C_Initialize`.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| unsafe {
        ptr::put(
            list,
            &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST,
        )
    })
}

/// `C_GetInterfaceList`: "PKCS 11" 3.0 and 2.40; CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the table is only read here.
        let all = unsafe { &*INTERFACES.0.get() };
        unsafe { ptr::deliver_list(list, count, all) }
    })
}

/// `C_GetInterface`: by name ("PKCS 11" or NULL) and version (3.0, 2.40 or NULL for the newest).
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        if interface.is_null() {
            return Err(Error::ArgumentsBad);
        }
        if !name.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string by the spec.
            let given = unsafe { std::ffi::CStr::from_ptr(name as *const std::ffi::c_char) };
            if given.to_bytes() != b"PKCS 11" {
                return Err(Error::ArgumentsBad);
            }
        }
        let wanted = if version.is_null() {
            None
        } else {
            // SAFETY: checked non-NULL.
            Some(unsafe { version.read_unaligned() })
        };
        let index = match wanted {
            None => 0,
            Some(CK_VERSION { major: 3, minor: 0 }) => 0,
            Some(CK_VERSION { major: 2, .. }) => 1,
            Some(_) => return Err(Error::ArgumentsBad),
        };
        if flags != 0 {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: `index` is 0 or 1, inside the two-entry table.
        unsafe {
            ptr::put(
                interface,
                (INTERFACES.0.get() as *mut CK_INTERFACE).add(index),
            )
        }
    })
}
