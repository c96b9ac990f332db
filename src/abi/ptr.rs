//! Pointer and buffer helpers: every raw pointer the module receives is checked here once, then turned
//! into an owned Rust value for the safe core.

use crate::attr::Template;
use crate::error::{Error, Result};
use crate::mechanism::{Mechanism, Param};
use crate::session::Output;
use cryptoki_sys::*;
use std::ffi::c_void;

/// Borrows `len` bytes at `ptr`; NULL is allowed only for an empty slice.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that outlive the returned slice.
pub unsafe fn bytes<'a>(ptr: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: checked non-NULL; the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len as usize) })
}

/// Writes `value` to a non-NULL out pointer.
///
/// # Safety
/// `ptr` must be NULL or valid for a write of `T`.
pub unsafe fn put<T>(ptr: *mut T, value: T) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: checked non-NULL; the caller guarantees it is writable.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Reads an attribute template.
///
/// # Safety
/// `ptr` must be NULL (with `count` 0) or point to `count` `CK_ATTRIBUTE`s whose values are readable.
pub unsafe fn template(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    if count == 0 {
        return Ok(Template::new());
    }
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: checked non-NULL; the caller guarantees `count` attributes.
    let attrs = unsafe { std::slice::from_raw_parts(ptr, count as usize) };
    let mut out = Template::new();
    for attr in attrs {
        if attr.ulValueLen == CK_UNAVAILABLE_INFORMATION {
            return Err(Error::AttributeValueInvalid);
        }
        // SAFETY: the caller guarantees each value pointer covers its length.
        let value = unsafe { bytes(attr.pValue as *const u8, attr.ulValueLen) }
            .map_err(|_| Error::AttributeValueInvalid)?;
        out.0.push((attr.type_, value.to_vec()));
    }
    Ok(out)
}

/// Hands output to the caller by the length-query convention: a NULL buffer asks for the length;
/// a short buffer gets `CKR_BUFFER_TOO_SMALL` with the length set.
///
/// # Safety
/// `out` must be NULL or valid for `*out_len` bytes; `out_len` must be valid.
pub unsafe fn deliver(out: *mut u8, out_len: *mut CK_ULONG, output: Output) -> Result<()> {
    match output {
        Output::Length(len) => unsafe { put(out_len, len as CK_ULONG) },
        Output::TooSmall(len) => {
            unsafe { put(out_len, len as CK_ULONG) }?;
            Err(Error::BufferTooSmall)
        }
        Output::Data(data) => {
            if !data.is_empty() {
                // SAFETY: the core checked the capacity the caller declared in `out_len`.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len()) };
            }
            unsafe { put(out_len, data.len() as CK_ULONG) }
        }
    }
}

/// The capacity of an output buffer: `None` for a length query.
///
/// # Safety
/// `out_len` must be NULL or valid for reads.
pub unsafe fn capacity(out: *const u8, out_len: *const CK_ULONG) -> Result<Option<usize>> {
    if out_len.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if out.is_null() {
        return Ok(None);
    }
    // SAFETY: checked non-NULL.
    Ok(Some(unsafe { *out_len } as usize))
}

/// Hands a list (slots, mechanisms, interfaces) to the caller by the length-query convention: a NULL
/// list asks for the count; a short one gets `CKR_BUFFER_TOO_SMALL` with the count set.
///
/// # Safety
/// `count` must be NULL or valid; `list` must be NULL or valid for `*count` items.
pub unsafe fn deliver_list<T: Copy>(list: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    if count.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if list.is_null() {
        return unsafe { put(count, items.len() as CK_ULONG) };
    }
    // SAFETY: checked non-NULL.
    let room = unsafe { *count } as usize;
    unsafe { put(count, items.len() as CK_ULONG) }?;
    if room < items.len() {
        return Err(Error::BufferTooSmall);
    }
    // SAFETY: the caller declared room for `room` items, at least `items.len()`.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    Ok(())
}

/// Copies a whole output (no pending state) by the length-query convention.
///
/// # Safety
/// As for [`deliver`].
pub unsafe fn deliver_all(out: *mut u8, out_len: *mut CK_ULONG, data: &[u8]) -> Result<()> {
    let output = match unsafe { capacity(out, out_len) }? {
        None => Output::Length(data.len()),
        Some(room) if room < data.len() => Output::TooSmall(data.len()),
        Some(_) => Output::Data(zeroize::Zeroizing::new(data.to_vec())),
    };
    unsafe { deliver(out, out_len, output) }
}

unsafe fn param<T: Copy>(ptr: *const c_void, len: CK_ULONG) -> Result<T> {
    if ptr.is_null() || len as usize != std::mem::size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: checked non-NULL and of the structure's size; read unaligned as callers may pack.
    Ok(unsafe { (ptr as *const T).read_unaligned() })
}

fn param_bytes(ptr: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    // SAFETY: the mechanism parameter's pointers come from the caller's structure.
    unsafe { bytes(ptr, len) }
        .map(<[u8]>::to_vec)
        .map_err(|_| Error::MechanismParamInvalid)
}

/// The GCM parameters of PKCS#11 2.40 (without `ulIvBits`), still passed by some clients.
#[repr(C)]
#[derive(Clone, Copy)]
struct GcmParams240 {
    iv: *mut u8,
    iv_len: CK_ULONG,
    aad: *mut u8,
    aad_len: CK_ULONG,
    tag_bits: CK_ULONG,
}

/// Reads a `CK_MECHANISM` and its parameter into an owned [`Mechanism`].
///
/// # Safety
/// `ptr` must be NULL or point to a `CK_MECHANISM` whose parameter is readable.
pub unsafe fn mechanism(ptr: *const CK_MECHANISM) -> Result<Mechanism> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: checked non-NULL.
    let raw = unsafe { ptr.read_unaligned() };
    let (p, len) = (raw.pParameter as *const c_void, raw.ulParameterLen);
    let none = p.is_null() || len == 0;
    let param = match raw.mechanism {
        CKM_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            let pss: CK_RSA_PKCS_PSS_PARAMS = unsafe { param(p, len) }?;
            Param::Pss {
                hash: pss.hashAlg,
                mgf: pss.mgf,
                salt_len: pss.sLen as usize,
            }
        }
        CKM_RSA_PKCS_OAEP => {
            let oaep: CK_RSA_PKCS_OAEP_PARAMS = unsafe { param(p, len) }?;
            let label = if oaep.source == CKZ_DATA_SPECIFIED || oaep.ulSourceDataLen == 0 {
                param_bytes(oaep.pSourceData as *const u8, oaep.ulSourceDataLen)?
            } else {
                return Err(Error::MechanismParamInvalid);
            };
            Param::Oaep {
                hash: oaep.hashAlg,
                mgf: oaep.mgf,
                label,
            }
        }
        CKM_AES_GCM => {
            if len as usize == std::mem::size_of::<CK_GCM_PARAMS>() {
                let gcm: CK_GCM_PARAMS = unsafe { param(p, len) }?;
                Param::Gcm {
                    iv: param_bytes(gcm.pIv, gcm.ulIvLen)?,
                    aad: param_bytes(gcm.pAAD, gcm.ulAADLen)?,
                    tag_bits: gcm.ulTagBits as usize,
                }
            } else {
                let gcm: GcmParams240 = unsafe { param(p, len) }?;
                Param::Gcm {
                    iv: param_bytes(gcm.iv, gcm.iv_len)?,
                    aad: param_bytes(gcm.aad, gcm.aad_len)?,
                    tag_bits: gcm.tag_bits as usize,
                }
            }
        }
        CKM_AES_CBC_PAD => Param::Iv(param_bytes(p as *const u8, len)?),
        CKM_ECDH1_DERIVE => {
            let ecdh: CK_ECDH1_DERIVE_PARAMS = unsafe { param(p, len) }?;
            Param::Ecdh {
                kdf: ecdh.kdf,
                shared_data: param_bytes(ecdh.pSharedData, ecdh.ulSharedDataLen)?,
                public_data: param_bytes(ecdh.pPublicData, ecdh.ulPublicDataLen)?,
            }
        }
        CKM_EDDSA if !none => {
            let eddsa: CK_EDDSA_PARAMS = unsafe { param(p, len) }?;
            if eddsa.phFlag != CK_FALSE || eddsa.ulContextDataLen != 0 {
                return Err(Error::MechanismParamInvalid);
            }
            Param::None
        }
        _ if none => Param::None,
        _ => return Err(Error::MechanismParamInvalid),
    };
    Ok(Mechanism {
        kind: raw.mechanism,
        param,
    })
}

/// Copies `text` into a blank-padded fixed-size field.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let len = text.len().min(N);
    out[..len].copy_from_slice(&text.as_bytes()[..len]);
    out
}
