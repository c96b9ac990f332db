//! The two RSA private-key operations the engine's safe API lacks: a PKCS#1 v1.5 type-1 signature over
//! caller-formatted input (`CKM_RSA_PKCS` with a DigestInfo the safe API does not take, e.g. SHA-1).
//! Kept here because it needs the engine's C functions; the core calls it through a safe function.

use crate::error::{Error, Result};

/// Signs `input` (at most the modulus length minus 11 bytes) with PKCS#1 v1.5 type-1 padding using the
/// RSA key given as a PKCS#1 `RSAPrivateKey`. Blinding is on in the engine.
pub fn rsa_pkcs1_sign_raw(pkcs1_der: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    // SAFETY: `pkcs1_der` is a valid slice; the engine copies what it parses.
    let rsa =
        unsafe { aws_lc_sys::RSA_private_key_from_bytes(pkcs1_der.as_ptr(), pkcs1_der.len()) };
    if rsa.is_null() {
        return Err(Error::General("RSA key rejected by the engine".into()));
    }
    // SAFETY: `rsa` is a valid key until freed below.
    let size = unsafe { aws_lc_sys::RSA_size(rsa) } as usize;
    let outcome = if input.len() + 11 > size {
        Err(Error::DataLenRange)
    } else {
        let mut out = vec![0u8; size];
        let mut out_len = 0usize;
        // SAFETY: `out` has `size` bytes, the maximum the engine writes; `input` is a valid slice.
        let ok = unsafe {
            aws_lc_sys::RSA_sign_raw(
                rsa,
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                input.as_ptr(),
                input.len(),
                aws_lc_sys::RSA_PKCS1_PADDING,
            )
        };
        if ok == 1 {
            out.truncate(out_len);
            Ok(out)
        } else {
            Err(Error::General("RSA signing failed".into()))
        }
    };
    // SAFETY: `rsa` came from the engine and is freed once.
    unsafe { aws_lc_sys::RSA_free(rsa) };
    outcome
}
