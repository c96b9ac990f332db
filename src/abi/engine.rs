//! RSA operations the engine's safe API lacks, through its C functions: PKCS#1 v1.5 type-1 signatures
//! over caller-formatted input (`CKM_RSA_PKCS` beyond SHA-256/384/512 DigestInfos, SHA-1 and SHA-224
//! signatures) and PSS with any hash, MGF1 hash and salt length. Kept here because it needs `unsafe`;
//! the core calls these safe functions. The engine blinds every private-key operation.

use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use aws_lc_sys::{EVP_MD, RSA};

/// An engine RSA key, freed on drop.
struct Key(*mut RSA);

impl Key {
    fn private(pkcs1_der: &[u8]) -> Result<Key> {
        // SAFETY: `pkcs1_der` is a valid slice; the engine copies what it parses.
        let rsa =
            unsafe { aws_lc_sys::RSA_private_key_from_bytes(pkcs1_der.as_ptr(), pkcs1_der.len()) };
        if rsa.is_null() {
            return Err(Error::General("RSA key rejected by the engine".into()));
        }
        Ok(Key(rsa))
    }

    fn public(pkcs1_der: &[u8]) -> Result<Key> {
        // SAFETY: as above.
        let rsa =
            unsafe { aws_lc_sys::RSA_public_key_from_bytes(pkcs1_der.as_ptr(), pkcs1_der.len()) };
        if rsa.is_null() {
            return Err(Error::KeyHandleInvalid);
        }
        Ok(Key(rsa))
    }

    fn size(&self) -> usize {
        // SAFETY: `self.0` is a valid key.
        unsafe { aws_lc_sys::RSA_size(self.0) as usize }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the key came from the engine and is freed once.
        unsafe { aws_lc_sys::RSA_free(self.0) };
    }
}

fn md(hash: HashAlg) -> *const EVP_MD {
    // SAFETY: these return pointers to the engine's static digest tables.
    unsafe {
        match hash {
            HashAlg::Sha1 => aws_lc_sys::EVP_sha1(),
            HashAlg::Sha224 => aws_lc_sys::EVP_sha224(),
            HashAlg::Sha256 => aws_lc_sys::EVP_sha256(),
            HashAlg::Sha384 => aws_lc_sys::EVP_sha384(),
            HashAlg::Sha512 => aws_lc_sys::EVP_sha512(),
        }
    }
}

/// Signs `input` (at most the modulus length minus 11 bytes) with PKCS#1 v1.5 type-1 padding, the key
/// given as a PKCS#1 `RSAPrivateKey`.
pub fn rsa_pkcs1_sign_raw(pkcs1_der: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let key = Key::private(pkcs1_der)?;
    let size = key.size();
    if input.len() + 11 > size {
        return Err(Error::DataLenRange);
    }
    let mut out = vec![0u8; size];
    let mut out_len = 0usize;
    // SAFETY: `out` has room for `size` bytes, the most the engine writes; `input` is a valid slice.
    let ok = unsafe {
        aws_lc_sys::RSA_sign_raw(
            key.0,
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            input.as_ptr(),
            input.len(),
            aws_lc_sys::RSA_PKCS1_PADDING,
        )
    };
    if ok != 1 {
        return Err(Error::General("RSA signing failed".into()));
    }
    out.truncate(out_len);
    Ok(out)
}

/// Recovers the payload of a PKCS#1 v1.5 type-1 signature with the public key given as a PKCS#1
/// `RSAPublicKey`; a signature that does not open is `CKR_SIGNATURE_INVALID`.
pub fn rsa_pkcs1_recover(public_pkcs1_der: &[u8], signature: &[u8]) -> Result<Vec<u8>> {
    let key = Key::public(public_pkcs1_der)?;
    if signature.len() != key.size() {
        return Err(Error::SignatureLenRange);
    }
    let mut out = vec![0u8; key.size()];
    let mut out_len = 0usize;
    // SAFETY: `out` has room for the modulus length; `signature` is a valid slice.
    let ok = unsafe {
        aws_lc_sys::RSA_verify_raw(
            key.0,
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            signature.as_ptr(),
            signature.len(),
            aws_lc_sys::RSA_PKCS1_PADDING,
        )
    };
    if ok != 1 {
        return Err(Error::SignatureInvalid);
    }
    out.truncate(out_len);
    Ok(out)
}

/// RSA-PSS over `digest` (made with `hash`), MGF1 with `mgf`, `salt_len` bytes of salt.
pub fn rsa_pss_sign(
    pkcs1_der: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let key = Key::private(pkcs1_der)?;
    if digest.len() != hash.output_len() {
        return Err(Error::DataLenRange);
    }
    let salt = i32::try_from(salt_len).map_err(|_| Error::MechanismParamInvalid)?;
    let mut out = vec![0u8; key.size()];
    let mut out_len = 0usize;
    // SAFETY: `out` has room for the modulus length; `digest` is a valid slice; the digests are static.
    let ok = unsafe {
        aws_lc_sys::RSA_sign_pss_mgf1(
            key.0,
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            digest.as_ptr(),
            digest.len(),
            md(hash),
            md(mgf),
            salt,
        )
    };
    if ok != 1 {
        // The only input-dependent failure: a salt too long for the modulus.
        return Err(Error::MechanismParamInvalid);
    }
    out.truncate(out_len);
    Ok(out)
}

/// Checks an RSA-PSS signature; see [`rsa_pss_sign`].
pub fn rsa_pss_verify(
    public_pkcs1_der: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
    digest: &[u8],
    signature: &[u8],
) -> Result<()> {
    let key = Key::public(public_pkcs1_der)?;
    if signature.len() != key.size() {
        return Err(Error::SignatureLenRange);
    }
    let salt = i32::try_from(salt_len).map_err(|_| Error::MechanismParamInvalid)?;
    // SAFETY: valid slices; the digests are static.
    let ok = unsafe {
        aws_lc_sys::RSA_verify_pss_mgf1(
            key.0,
            digest.as_ptr(),
            digest.len(),
            md(hash),
            md(mgf),
            salt,
            signature.as_ptr(),
            signature.len(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(Error::SignatureInvalid)
    }
}
