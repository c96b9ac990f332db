//! General, slot, token, session and login functions.

use super::ptr::{self, padded};
use super::{guard, session_call};
use crate::error::Error;
use crate::module;
use cryptoki_sys::*;
use std::ffi::c_void;

extern "C" fn forked_child() {
    module::note_fork();
}

/// Registers the fork handler once. glibc ties it to this library and drops it if the library is
/// unloaded.
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic counter, safe in a forked child.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
}

/// `C_Initialize`: CKR_OK, CKR_ARGUMENTS_BAD, CKR_CANT_LOCK, CKR_CRYPTOKI_ALREADY_INITIALIZED.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard(|| {
        let mut may_create_threads = true;
        if !init_args.is_null() {
            // SAFETY: a non-NULL argument points to CK_C_INITIALIZE_ARGS by the spec.
            let args = unsafe { (init_args as *const CK_C_INITIALIZE_ARGS).read_unaligned() };
            if !args.pReserved.is_null() {
                return Err(Error::ArgumentsBad);
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(Error::ArgumentsBad);
            }
            // The module always locks with the OS's primitives, which is what both CKF_OS_LOCKING_OK
            // and the application's own mutex callbacks ask for: safe multi-threaded access.
            may_create_threads = args.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS == 0;
        }
        watch_forks();
        module::initialize(may_create_threads)
    })
}

/// `C_Finalize`: CKR_OK, CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module::finalize()
    })
}

/// `C_GetInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        module::get()?;
        let value = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded("Cryptera"),
            flags: 0,
            libraryDescription: padded("Cryptera PKCS#11"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        unsafe { ptr::put(info, value) }
    })
}

/// `C_GetSlotList`: every token slot plus the free slot; with `token_present` the same (each slot
/// holds a token, initialised or not). CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    _token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let ids = module::get()?.slot_ids()?;
        unsafe { ptr::deliver_list(list, count, &ids) }
    })
}

/// `C_GetSlotInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let token = module::get()?.token(slot)?;
        let description = match &token.remote {
            Some(remote) => format!("Cryptera remote token {}", remote.config.url),
            None => format!("Cryptera local token slot {slot}"),
        };
        let value = CK_SLOT_INFO {
            slotDescription: padded(&description),
            manufacturerID: padded("Cryptera"),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: CK_VERSION { major: 0, minor: 1 },
            firmwareVersion: CK_VERSION { major: 0, minor: 1 },
        };
        drop(token);
        unsafe { ptr::put(info, value) }
    })
}

/// `C_GetTokenInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let module = module::get()?;
        let token = module.token(slot)?;
        let facts = token.facts()?;
        let sessions = module.sessions_on(slot)?;
        let value = CK_TOKEN_INFO {
            label: facts.label,
            manufacturerID: padded("Cryptera"),
            model: padded("soft-token"),
            serialNumber: facts.serial,
            flags: facts.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions.len() as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: sessions.iter().filter(|(_, rw)| *rw).count() as CK_ULONG,
            ulMaxPinLen: module.config.max_pin_len as CK_ULONG,
            ulMinPinLen: module.config.min_pin_len as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 0, minor: 1 },
            firmwareVersion: CK_VERSION { major: 0, minor: 1 },
            utcTime: [b' '; 16],
        };
        unsafe { ptr::put(info, value) }
    })
}

/// `C_GetMechanismList`: CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let token = module::get()?.token(slot)?;
        let mut mechanisms = crate::mechanism::list();
        if token.remote.is_some() {
            mechanisms.retain(|m| !crate::remote::NOT_IN_SERVICE.contains(m));
        }
        unsafe { ptr::deliver_list(list, count, &mechanisms) }
    })
}

/// `C_GetMechanismInfo`: CKR_MECHANISM_INVALID for mechanisms the module does not offer.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        let token = module::get()?.token(slot)?;
        if token.remote.is_some() && crate::remote::NOT_IN_SERVICE.contains(&kind) {
            return Err(crate::error::Error::MechanismInvalid);
        }
        let value = crate::mechanism::info(kind)?;
        unsafe { ptr::put(info, value) }
    })
}

/// `C_InitToken`: CKR_SESSION_EXISTS while sessions are open, CKR_PIN_INCORRECT for a wrong SO PIN
/// on an initialised token, CKR_PIN_LEN_RANGE.
#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard(|| {
        let module = module::get()?;
        let token = module.token(slot)?;
        if label.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: the label is a 32-byte blank-padded field by the spec.
        let label: [u8; 32] = unsafe { *(label as *const [u8; 32]) };
        let pin = zeroize::Zeroizing::new(unsafe { ptr::bytes(pin, pin_len) }?.to_vec());
        if !module.sessions_on(slot)?.is_empty() {
            return Err(Error::SessionExists);
        }
        let outcome = token.init_token(&pin, &label);
        module.record_init_token(slot, &label, &outcome)?;
        outcome?;
        module.refresh_slots()
    })
}

/// `C_InitPIN`: the SO sets the user PIN. CKR_USER_NOT_LOGGED_IN unless in an SO session.
#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    session: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let pin = zeroize::Zeroizing::new(unsafe { ptr::bytes(pin, pin_len) }?.to_vec());
        session_call(session, |s| {
            if !s.read_write {
                return Err(Error::SessionReadOnly);
            }
            s.init_pin(&pin)
        })
    })
}

/// `C_SetPIN`: CKR_PIN_INCORRECT, CKR_PIN_LEN_RANGE, CKR_SESSION_READ_ONLY.
#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    session: CK_SESSION_HANDLE,
    old_pin: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new_pin: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let old = zeroize::Zeroizing::new(unsafe { ptr::bytes(old_pin, old_len) }?.to_vec());
        let new = zeroize::Zeroizing::new(unsafe { ptr::bytes(new_pin, new_len) }?.to_vec());
        session_call(session, |s| {
            if !s.read_write {
                return Err(Error::SessionReadOnly);
            }
            s.set_pin(&old, &new)
        })
    })
}

/// `C_OpenSession`: CKR_SESSION_PARALLEL_NOT_SUPPORTED without CKF_SERIAL_SESSION,
/// CKR_TOKEN_NOT_RECOGNIZED for the free slot, CKR_SESSION_READ_WRITE_SO_EXISTS.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        if session.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = module::get()?.open_session(slot, flags)?;
        unsafe { ptr::put(session, handle) }
    })
}

/// `C_CloseSession`.
#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| module::get()?.close_session(session))
}

/// `C_CloseAllSessions`.
#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| module::get()?.close_all_sessions(slot))
}

/// `C_GetSessionInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard(|| {
        if info.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let (slot, (state, flags)) = session_call(session, |s| Ok((s.slot_id, s.info()?)))?;
        unsafe {
            ptr::put(
                info,
                CK_SESSION_INFO {
                    slotID: slot,
                    state,
                    flags,
                    ulDeviceError: 0,
                },
            )
        }
    })
}

/// `C_Login`: CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_USER_ALREADY_LOGGED_IN,
/// CKR_USER_ANOTHER_ALREADY_LOGGED_IN, CKR_USER_PIN_NOT_INITIALIZED, CKR_SESSION_READ_ONLY_EXISTS,
/// CKR_USER_TYPE_INVALID, CKR_OPERATION_NOT_INITIALIZED (context-specific without an operation).
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let pin = zeroize::Zeroizing::new(unsafe { ptr::bytes(pin, pin_len) }?.to_vec());
        module::get()?.login(session, user_type, &pin)
    })
}

/// `C_LoginUser` (3.0): user names are not supported beyond the one user.
#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    _username: *mut CK_UTF8CHAR,
    _username_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let pin = zeroize::Zeroizing::new(unsafe { ptr::bytes(pin, pin_len) }?.to_vec());
        module::get()?.login(session, user_type, &pin)
    })
}

/// `C_Logout`: CKR_USER_NOT_LOGGED_IN.
#[no_mangle]
pub unsafe extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| module::get()?.logout(session))
}

/// The application's policy callback: `event_json` is a NUL-terminated JSON object; returning CKR_OK
/// allows the signature, anything else rejects it with CKR_FUNCTION_REJECTED.
pub type CrypteraPolicyCallback = Option<
    unsafe extern "C" fn(event_json: *const std::ffi::c_char, context: *mut c_void) -> CK_RV,
>;

/// `C_CrypteraSetPolicyCallback` (vendor function, declared in `include/cryptera_pkcs11.h`): registers
/// a callback asked before each signature, for every token of the process; NULL removes it. Callable
/// before `C_Initialize`. Returns CKR_OK.
#[no_mangle]
pub unsafe extern "C" fn C_CrypteraSetPolicyCallback(
    callback: CrypteraPolicyCallback,
    context: *mut c_void,
) -> CK_RV {
    guard(|| {
        let Some(callback) = callback else {
            crate::audit::set_callback(None);
            return Ok(());
        };
        // The context pointer is the application's; it is handed back untouched.
        let context = context as usize;
        crate::audit::set_callback(Some(std::sync::Arc::new(move |json: &str| {
            let Ok(text) = std::ffi::CString::new(json) else {
                return false;
            };
            // SAFETY: the application registered `callback` for exactly this call shape; `text`
            // outlives the call.
            let rv = unsafe { callback(text.as_ptr(), context as *mut c_void) };
            rv == CKR_OK
        })));
        Ok(())
    })
}
