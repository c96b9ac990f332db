//! Cryptographic functions: encrypt, decrypt, digest, sign, verify, key management and random numbers.

use super::ptr;
use super::{guard, session_call};
use crate::error::Error;
use crate::session::OpKind;
use cryptoki_sys::*;

unsafe fn init(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    kind: OpKind,
) -> CK_RV {
    guard(|| {
        session_call(session, |s| {
            if mechanism.is_null() {
                return Err(Error::ArgumentsBad);
            }
            // A mechanism that cannot do this operation is CKR_MECHANISM_INVALID whatever its
            // parameter, so that is checked before the parameter is parsed.
            // SAFETY: checked non-NULL; a CK_MECHANISM by the spec, read unaligned as callers may
            // pack it.
            let mechanism_type = unsafe { mechanism.read_unaligned() }.mechanism;
            let usage = match kind {
                OpKind::Sign => CKF_SIGN,
                OpKind::Verify => CKF_VERIFY,
                OpKind::Encrypt => CKF_ENCRYPT,
                OpKind::Decrypt => CKF_DECRYPT,
                OpKind::Digest => CKF_DIGEST,
            };
            crate::mechanism::require(mechanism_type, usage)?;
            let mechanism = unsafe { ptr::mechanism(mechanism) }?;
            match kind {
                OpKind::Sign => s.sign_init(&mechanism, key, false),
                OpKind::Verify => s.sign_init(&mechanism, key, true),
                OpKind::Encrypt => s.encrypt_init(&mechanism, key, false),
                OpKind::Decrypt => s.encrypt_init(&mechanism, key, true),
                OpKind::Digest => s.digest_init(&mechanism),
            }
        })
    })
}

unsafe fn single(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    data: *const u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let data = unsafe { ptr::bytes(data, len) }?;
        let room = unsafe { ptr::capacity(out, out_len) }?;
        let output = session_call(session, |s| s.finish(kind, Some(data), room))?;
        unsafe { ptr::deliver(out, out_len, output) }
    })
}

unsafe fn update(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    data: *const u8,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let data = unsafe { ptr::bytes(data, len) }?;
        session_call(session, |s| s.update(kind, data))
    })
}

/// Multi-part encrypt/decrypt update: input is gathered, so no output is produced until the end.
/// A NULL output buffer only asks for the output length: the input is not consumed then, because
/// the caller passes the same input again with a buffer.
unsafe fn cipher_update(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    data: *const u8,
    len: CK_ULONG,
    out: *const u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if out_len.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let data = unsafe { ptr::bytes(data, len) }?;
        let consumed = if out.is_null() { &[][..] } else { data };
        session_call(session, |s| s.update(kind, consumed))?;
        unsafe { ptr::put(out_len, 0) }
    })
}

unsafe fn finish(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let room = unsafe { ptr::capacity(out, out_len) }?;
        let output = session_call(session, |s| s.finish(kind, None, room))?;
        unsafe { ptr::deliver(out, out_len, output) }
    })
}

/// `C_EncryptInit`: CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_KEY_HANDLE_INVALID,
/// CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_OPERATION_ACTIVE.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    unsafe { init(session, mechanism, key, OpKind::Encrypt) }
}

/// `C_Encrypt`: CKR_DATA_LEN_RANGE; CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { single(s, OpKind::Encrypt, data, len, out, out_len) }
}

/// `C_EncryptUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { cipher_update(s, OpKind::Encrypt, data, len, out, out_len) }
}

/// `C_EncryptFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    s: CK_SESSION_HANDLE,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { finish(s, OpKind::Encrypt, out, out_len) }
}

/// `C_DecryptInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    unsafe { init(session, mechanism, key, OpKind::Decrypt) }
}

/// `C_Decrypt`: CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE.
#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { single(s, OpKind::Decrypt, data, len, out, out_len) }
}

/// `C_DecryptUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { cipher_update(s, OpKind::Decrypt, data, len, out, out_len) }
}

/// `C_DecryptFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    s: CK_SESSION_HANDLE,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { finish(s, OpKind::Decrypt, out, out_len) }
}

/// `C_DigestInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
) -> CK_RV {
    unsafe { init(session, mechanism, CK_INVALID_HANDLE, OpKind::Digest) }
}

/// `C_Digest`.
#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { single(s, OpKind::Digest, data, len, out, out_len) }
}

/// `C_DigestUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    unsafe { update(s, OpKind::Digest, data, len) }
}

/// `C_DigestKey`: CKR_KEY_HANDLE_INVALID for anything but a secret key.
#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| session_call(session, |s| s.digest_key(key)))
}

/// `C_DigestFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    s: CK_SESSION_HANDLE,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { finish(s, OpKind::Digest, out, out_len) }
}

/// `C_SignInit`: CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_MECHANISM_INVALID,
/// CKR_MECHANISM_PARAM_INVALID, CKR_USER_NOT_LOGGED_IN, CKR_OPERATION_ACTIVE.
#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    unsafe { init(session, mechanism, key, OpKind::Sign) }
}

/// `C_Sign`: CKR_DATA_LEN_RANGE, CKR_DATA_INVALID, CKR_USER_NOT_LOGGED_IN (context login needed);
/// CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { single(s, OpKind::Sign, data, len, out, out_len) }
}

/// `C_SignUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(s: CK_SESSION_HANDLE, data: *mut u8, len: CK_ULONG) -> CK_RV {
    unsafe { update(s, OpKind::Sign, data, len) }
}

/// `C_SignFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    s: CK_SESSION_HANDLE,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    unsafe { finish(s, OpKind::Sign, out, out_len) }
}

/// `C_VerifyInit`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    unsafe { init(session, mechanism, key, OpKind::Verify) }
}

/// `C_Verify`: CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    sig: *mut u8,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let data = unsafe { ptr::bytes(data, len) }?;
        let sig = unsafe { ptr::bytes(sig, sig_len) }?;
        session_call(s, |session| session.verify(Some(data), sig))
    })
}

/// `C_VerifyUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    unsafe { update(s, OpKind::Verify, data, len) }
}

/// `C_VerifyFinal`: CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    s: CK_SESSION_HANDLE,
    sig: *mut u8,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let sig = unsafe { ptr::bytes(sig, sig_len) }?;
        session_call(s, |session| session.verify(None, sig))
    })
}

/// `C_GenerateKey`: CKR_TEMPLATE_INCOMPLETE (no CKA_VALUE_LEN), CKR_KEY_SIZE_RANGE.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let mechanism = unsafe { ptr::mechanism(mechanism) }?;
        let template = unsafe { ptr::template(template, count) }?;
        if key.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = session_call(session, |s| s.generate_key(&mechanism, &template))?;
        unsafe { ptr::put(key, handle) }
    })
}

/// `C_GenerateKeyPair`: CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCONSISTENT, CKR_KEY_SIZE_RANGE,
/// CKR_CURVE_NOT_SUPPORTED.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public_template: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_template: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let mechanism = unsafe { ptr::mechanism(mechanism) }?;
        let public_template = unsafe { ptr::template(public_template, public_count) }?;
        let private_template = unsafe { ptr::template(private_template, private_count) }?;
        if public_key.is_null() || private_key.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let (public, private) = session_call(session, |s| {
            s.generate_key_pair(&mechanism, &public_template, &private_template)
        })?;
        unsafe { ptr::put(public_key, public) }?;
        unsafe { ptr::put(private_key, private) }
    })
}

/// `C_WrapKey`: CKR_KEY_UNEXTRACTABLE, CKR_KEY_NOT_WRAPPABLE, CKR_WRAPPING_KEY_HANDLE_INVALID;
/// CKR_BUFFER_TOO_SMALL by the length-query convention.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    wrapped: *mut u8,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let mechanism = unsafe { ptr::mechanism(mechanism) }?;
        if wrapped_len.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let data = session_call(session, |s| s.wrap_key(&mechanism, wrapping_key, key))?;
        unsafe { ptr::deliver_all(wrapped, wrapped_len, &data) }
    })
}

/// `C_UnwrapKey`: CKR_WRAPPED_KEY_INVALID, CKR_WRAPPED_KEY_LEN_RANGE, CKR_UNWRAPPING_KEY_HANDLE_INVALID.
#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut u8,
    wrapped_len: CK_ULONG,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let mechanism = unsafe { ptr::mechanism(mechanism) }?;
        let wrapped = unsafe { ptr::bytes(wrapped, wrapped_len) }?;
        let template = unsafe { ptr::template(template, count) }?;
        if key.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = session_call(session, |s| {
            s.unwrap_key(&mechanism, unwrapping_key, wrapped, &template)
        })?;
        unsafe { ptr::put(key, handle) }
    })
}

/// `C_DeriveKey`: `CKM_ECDH1_DERIVE` with `CKD_NULL`.
#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    base_key: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let mechanism = unsafe { ptr::mechanism(mechanism) }?;
        let template = unsafe { ptr::template(template, count) }?;
        if key.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = session_call(session, |s| s.derive_key(&mechanism, base_key, &template))?;
        unsafe { ptr::put(key, handle) }
    })
}

/// `C_SeedRandom`: the engine's DRBG seeds itself; extra seed is accepted and not needed.
#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(
    session: CK_SESSION_HANDLE,
    seed: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        unsafe { ptr::bytes(seed, len) }?;
        session_call(session, |_| Ok(()))
    })
}

/// `C_GenerateRandom`.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    session: CK_SESSION_HANDLE,
    out: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        session_call(session, |_| Ok(()))?;
        if len == 0 {
            return Ok(());
        }
        if out.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: checked non-NULL; the caller declared `len` writable bytes.
        let buffer = unsafe { std::slice::from_raw_parts_mut(out, len as usize) };
        crate::crypto::random(buffer)
    })
}
