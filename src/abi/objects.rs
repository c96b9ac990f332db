//! Object management functions.

use super::ptr;
use super::{guard, session_call};
use crate::error::Error;
use cryptoki_sys::*;

/// `C_CreateObject`: CKR_TEMPLATE_INCOMPLETE/INCONSISTENT, CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_READ_ONLY, CKR_SESSION_READ_ONLY, CKR_USER_NOT_LOGGED_IN.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let template = unsafe { ptr::template(template, count) }?;
        if object.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = session_call(session, |s| s.create_object(&template))?;
        unsafe { ptr::put(object, handle) }
    })
}

/// `C_CopyObject`: CKR_ACTION_PROHIBITED for an uncopyable object, CKR_ATTRIBUTE_READ_ONLY.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    new_object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        let template = unsafe { ptr::template(template, count) }?;
        if new_object.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = session_call(session, |s| s.copy_object(object, &template))?;
        unsafe { ptr::put(new_object, handle) }
    })
}

/// `C_DestroyObject`: CKR_OBJECT_HANDLE_INVALID, CKR_ACTION_PROHIBITED, CKR_SESSION_READ_ONLY.
#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| session_call(session, |s| s.destroy_object(object)))
}

/// `C_GetObjectSize`.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if size.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let value = session_call(session, |s| Ok(s.object(object)?.object.size()))?;
        unsafe { ptr::put(size, value as CK_ULONG) }
    })
}

/// `C_GetAttributeValue`: per attribute, `CK_UNAVAILABLE_INFORMATION` with CKR_ATTRIBUTE_SENSITIVE,
/// CKR_ATTRIBUTE_TYPE_INVALID or CKR_BUFFER_TOO_SMALL; every other attribute is still filled in.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        if template.is_null() && count > 0 {
            return Err(Error::ArgumentsBad);
        }
        if count == 0 {
            return session_call(session, |s| s.object(object).map(|_| ()));
        }
        // SAFETY: checked non-NULL; the caller passes `count` attributes.
        let attrs = unsafe { std::slice::from_raw_parts_mut(template, count as usize) };
        let types: Vec<CK_ATTRIBUTE_TYPE> = attrs.iter().map(|a| a.type_).collect();
        let values = session_call(session, |s| s.read_attributes(object, &types))?;
        let mut outcome = Ok(());
        // Sensitive and invalid types outrank a short buffer in the overall result.
        fn note(outcome: &mut crate::Result<()>, err: Error) {
            if outcome.is_ok() || *outcome == Err(Error::BufferTooSmall) {
                *outcome = Err(err);
            }
        }
        for (attr, value) in attrs.iter_mut().zip(values) {
            match value {
                None => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    note(&mut outcome, Error::AttributeTypeInvalid);
                }
                Some(Err(err)) => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    note(&mut outcome, err);
                }
                Some(Ok(bytes)) => {
                    if attr.pValue.is_null() {
                        attr.ulValueLen = bytes.len() as CK_ULONG;
                    } else if (attr.ulValueLen as usize) < bytes.len() {
                        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        if outcome.is_ok() {
                            outcome = Err(Error::BufferTooSmall);
                        }
                    } else {
                        // SAFETY: the caller declared `ulValueLen` writable bytes at `pValue`.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                bytes.as_ptr(),
                                attr.pValue as *mut u8,
                                bytes.len(),
                            )
                        };
                        attr.ulValueLen = bytes.len() as CK_ULONG;
                    }
                }
            }
        }
        outcome
    })
}

/// `C_SetAttributeValue`: CKR_ATTRIBUTE_READ_ONLY, CKR_ACTION_PROHIBITED (unmodifiable object).
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let template = unsafe { ptr::template(template, count) }?;
        session_call(session, |s| s.set_attributes(object, &template))
    })
}

/// `C_FindObjectsInit`: CKR_OPERATION_ACTIVE while a search runs.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let template = unsafe { ptr::template(template, count) }?;
        session_call(session, |s| s.find_init(&template))
    })
}

/// `C_FindObjects`: CKR_OPERATION_NOT_INITIALIZED without a search.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if count.is_null() || (objects.is_null() && max > 0) {
            return Err(Error::ArgumentsBad);
        }
        let batch = session_call(session, |s| s.find_next(max as usize))?;
        if !batch.is_empty() {
            // SAFETY: the caller declared room for `max` handles; the batch holds at most that.
            unsafe { std::ptr::copy_nonoverlapping(batch.as_ptr(), objects, batch.len()) };
        }
        unsafe { ptr::put(count, batch.len() as CK_ULONG) }
    })
}

/// `C_FindObjectsFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| session_call(session, |s| s.find_final()))
}
