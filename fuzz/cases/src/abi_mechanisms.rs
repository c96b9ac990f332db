//! Mechanism parameters through the C ABI: `C_SignInit`, `C_VerifyInit`, `C_EncryptInit`,
//! `C_DecryptInit`, `C_DeriveKey`, `C_WrapKey`, `C_UnwrapKey` and `C_DigestInit` with `CK_MECHANISM`s
//! whose parameters (PSS, OAEP, GCM in both layouts, CBC IVs, ECDH1, EdDSA) are built from the input:
//! fields fuzzed, declared lengths right or wrong, structures unaligned, inner pointers NULL with a
//! length. When an init succeeds, the single-part operation runs with fuzzed data and output space.
//!
//! Keys (RSA-2048, P-256, Ed25519, AES-256, an extractable AES-128 to wrap) are session objects made
//! once per process; each step runs in a fresh session so no operation stays active across steps.

use crate::{exact, module, trace, RawTemplate, Reader};
use cryptera_pkcs11::abi::*;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::sync::OnceLock;

struct Keys {
    rsa_public: CK_OBJECT_HANDLE,
    rsa_private: CK_OBJECT_HANDLE,
    ec_public: CK_OBJECT_HANDLE,
    ec_private: CK_OBJECT_HANDLE,
    ed_public: CK_OBJECT_HANDLE,
    ed_private: CK_OBJECT_HANDLE,
    aes: CK_OBJECT_HANDLE,
    wrappable: CK_OBJECT_HANDLE,
    /// `CKA_EC_POINT` of the P-256 key (DER OCTET STRING): a valid ECDH peer.
    ec_point: Vec<u8>,
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn attr(kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: kind,
        pValue: value.as_ptr() as *mut c_void,
        ulValueLen: value.len() as CK_ULONG,
    }
}

const YES: &[u8] = &[CK_TRUE];
const NO: &[u8] = &[CK_FALSE];

fn pair(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    public: &mut [CK_ATTRIBUTE],
    private: &mut [CK_ATTRIBUTE],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut mechanism = CK_MECHANISM {
        mechanism,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let (mut pub_h, mut priv_h) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
    // SAFETY: templates and out pointers are valid for the call.
    let rv = unsafe {
        C_GenerateKeyPair(
            session,
            &mut mechanism,
            public.as_mut_ptr(),
            public.len() as CK_ULONG,
            private.as_mut_ptr(),
            private.len() as CK_ULONG,
            &mut pub_h,
            &mut priv_h,
        )
    };
    assert_eq!(
        rv,
        CKR_OK,
        "C_GenerateKeyPair {mechanism:?}",
        mechanism = mechanism.mechanism
    );
    (pub_h, priv_h)
}

fn secret(session: CK_SESSION_HANDLE, len: CK_ULONG, extractable: bool) -> CK_OBJECT_HANDLE {
    let len_bytes = len.to_ne_bytes();
    let mut template = [
        attr(CKA_TOKEN, NO),
        attr(CKA_VALUE_LEN, &len_bytes),
        attr(CKA_ENCRYPT, YES),
        attr(CKA_DECRYPT, YES),
        attr(CKA_WRAP, YES),
        attr(CKA_UNWRAP, YES),
        attr(CKA_EXTRACTABLE, if extractable { YES } else { NO }),
        attr(CKA_SENSITIVE, if extractable { NO } else { YES }),
    ];
    let mut mechanism = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut key = CK_INVALID_HANDLE;
    // SAFETY: valid template and out pointer.
    let rv = unsafe {
        C_GenerateKey(
            session,
            &mut mechanism,
            template.as_mut_ptr(),
            template.len() as CK_ULONG,
            &mut key,
        )
    };
    assert_eq!(rv, CKR_OK, "C_GenerateKey");
    key
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let session = module("abi_mechanisms").keeper;
        let bits = (2048 as CK_ULONG).to_ne_bytes();
        let exponent = [1u8, 0, 1];
        let (rsa_public, rsa_private) = pair(
            session,
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_TOKEN, NO),
                attr(CKA_MODULUS_BITS, &bits),
                attr(CKA_PUBLIC_EXPONENT, &exponent),
                attr(CKA_VERIFY, YES),
                attr(CKA_ENCRYPT, YES),
                attr(CKA_WRAP, YES),
            ],
            &mut [
                attr(CKA_TOKEN, NO),
                attr(CKA_SIGN, YES),
                attr(CKA_DECRYPT, YES),
                attr(CKA_UNWRAP, YES),
            ],
        );
        let (ec_public, ec_private) = pair(
            session,
            CKM_EC_KEY_PAIR_GEN,
            &mut [
                attr(CKA_TOKEN, NO),
                attr(CKA_EC_PARAMS, P256),
                attr(CKA_VERIFY, YES),
            ],
            &mut [
                attr(CKA_TOKEN, NO),
                attr(CKA_SIGN, YES),
                attr(CKA_DERIVE, YES),
            ],
        );
        let (ed_public, ed_private) = pair(
            session,
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_TOKEN, NO),
                attr(CKA_EC_PARAMS, ED25519),
                attr(CKA_VERIFY, YES),
            ],
            &mut [attr(CKA_TOKEN, NO), attr(CKA_SIGN, YES)],
        );
        let aes = secret(session, 32, false);
        let wrappable = secret(session, 16, true);
        let mut point = vec![0u8; 128];
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_EC_POINT,
            pValue: point.as_mut_ptr() as *mut c_void,
            ulValueLen: point.len() as CK_ULONG,
        }];
        // SAFETY: the buffer holds 128 bytes, the declared length.
        let rv = unsafe { C_GetAttributeValue(session, ec_public, template.as_mut_ptr(), 1) };
        assert_eq!(rv, CKR_OK, "read CKA_EC_POINT");
        point.truncate(template[0].ulValueLen as usize);
        Keys {
            rsa_public,
            rsa_private,
            ec_public,
            ec_private,
            ed_public,
            ed_private,
            aes,
            wrappable,
            ec_point: point,
        }
    })
}

const HASHES: &[CK_ULONG] = &[
    CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_MD5,
];
const MGFS: &[CK_ULONG] = &[
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
    0,
];
const SIGN_MECHANISMS: &[CK_ULONG] = &[
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_EDDSA,
    CKM_SHA256_HMAC,
    CKM_RSA_PKCS_OAEP,
    CKM_AES_GCM,
];
const CIPHER_MECHANISMS: &[CK_ULONG] = &[
    CKM_RSA_PKCS_OAEP,
    CKM_AES_GCM,
    CKM_AES_CBC_PAD,
    CKM_RSA_PKCS,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_AES_CBC,
    CKM_AES_ECB,
    CKM_RSA_PKCS_PSS,
    CKM_ECDH1_DERIVE,
];
const DERIVE_MECHANISMS: &[CK_ULONG] = &[CKM_ECDH1_DERIVE, CKM_ECDH1_COFACTOR_DERIVE, CKM_AES_GCM];

/// A `CK_MECHANISM` and everything its parameter points to, each in an exact-size allocation.
struct RawMechanism {
    mechanism: Box<CK_MECHANISM>,
    _param: Option<Box<[u8]>>,
    _inner: Vec<Box<[u8]>>,
}

impl RawMechanism {
    fn ptr(&mut self) -> *mut CK_MECHANISM {
        &mut *self.mechanism
    }
}

/// An inner (pointer, length) pair: a buffer of fuzzed bytes, NULL with a length, NULL and empty,
/// or a pointer with a zero length.
fn inner(r: &mut Reader, keep: &mut Vec<Box<[u8]>>) -> (*mut u8, CK_ULONG) {
    let mode = r.u8();
    let bytes = r.bytes(mode & 0x04 != 0);
    match mode & 0x03 {
        0 => {
            let mut buffer = exact(bytes);
            let pointer = if buffer.is_empty() {
                std::ptr::null_mut()
            } else {
                buffer.as_mut_ptr()
            };
            let len = buffer.len() as CK_ULONG;
            keep.push(buffer);
            (pointer, len)
        }
        1 => (std::ptr::null_mut(), bytes.len().max(1) as CK_ULONG),
        2 => (std::ptr::null_mut(), 0),
        _ => {
            let mut buffer = exact(&[0x42]);
            let pointer = buffer.as_mut_ptr();
            keep.push(buffer);
            (pointer, 0)
        }
    }
}

/// The ECDH peer: the key's own point (DER or raw), or fuzzed bytes.
fn peer(r: &mut Reader, keep: &mut Vec<Box<[u8]>>, own_point: &[u8]) -> (*mut u8, CK_ULONG) {
    match r.u8() % 4 {
        0 => {
            let mut buffer = exact(own_point);
            let pointer = buffer.as_mut_ptr();
            keep.push(buffer);
            (pointer, own_point.len() as CK_ULONG)
        }
        1 => {
            let raw = own_point.get(2..).unwrap_or_default();
            let mut buffer = exact(raw);
            let pointer = buffer.as_mut_ptr();
            keep.push(buffer);
            (pointer, raw.len() as CK_ULONG)
        }
        _ => inner(r, keep),
    }
}

fn struct_bytes<T>(value: &T) -> Vec<u8> {
    // SAFETY: `T` is a plain C structure; its bytes (padding included) are readable.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()) }
        .to_vec()
}

/// The declared sizes at which the module reads the parameter of `kind` as a structure with pointers.
fn pointer_sizes(kind: CK_ULONG) -> &'static [usize] {
    const OAEP: usize = std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>();
    const GCM: usize = std::mem::size_of::<CK_GCM_PARAMS>();
    const GCM_240: usize = 5 * std::mem::size_of::<CK_ULONG>();
    const ECDH: usize = std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>();
    const EDDSA: usize = std::mem::size_of::<CK_EDDSA_PARAMS>();
    match kind {
        CKM_RSA_PKCS_OAEP => &[OAEP],
        CKM_AES_GCM => &[GCM, GCM_240],
        CKM_ECDH1_DERIVE => &[ECDH],
        CKM_EDDSA => &[EDDSA],
        _ => &[],
    }
}

/// The parameter structure of the family `kind` belongs to (or of another family, which the module
/// must reject by size), as bytes.
fn param_struct(r: &mut Reader, kind: CK_ULONG, keep: &mut Vec<Box<[u8]>>) -> Vec<u8> {
    let family = match kind {
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => 0,
        CKM_RSA_PKCS_OAEP => 1,
        CKM_AES_GCM => 2,
        CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => 4,
        CKM_EDDSA => 5,
        _ => 6,
    };
    // Another family's structure, for a mechanism whose parameter the module reads as a structure
    // holding pointers, would have it follow non-pointers: the caller's undefined behaviour, not the
    // module's. Those mechanisms get their own structure (either GCM layout for GCM).
    let selector = r.u8();
    let family = match (selector & 0x80 != 0, pointer_sizes(kind).is_empty()) {
        (true, true) => selector % 8,
        (true, false) if family == 2 => 2 + (selector & 1),
        _ => family,
    };
    match family {
        0 => {
            let params = CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: r.pick(HASHES),
                mgf: r.pick(MGFS),
                sLen: if selector & 0x40 != 0 {
                    r.u64() as CK_ULONG
                } else {
                    CK_ULONG::from(r.u8())
                },
            };
            struct_bytes(&params)
        }
        1 => {
            let hash = r.pick(HASHES);
            let mgf = r.pick(MGFS);
            let source = r.pick(&[CKZ_DATA_SPECIFIED, 0]);
            let (data, len) = inner(r, keep);
            let params = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: hash,
                mgf,
                source,
                pSourceData: data as *mut c_void,
                ulSourceDataLen: len,
            };
            struct_bytes(&params)
        }
        2 => {
            let (iv, iv_len) = inner(r, keep);
            let (aad, aad_len) = inner(r, keep);
            let tag_bits = r.pick(&[128, 96, 120, 112, 104, 64, 32, 0, 129, 256]);
            let params = CK_GCM_PARAMS {
                pIv: iv,
                ulIvLen: iv_len,
                ulIvBits: iv_len.wrapping_mul(8),
                pAAD: aad,
                ulAADLen: aad_len,
                ulTagBits: tag_bits,
            };
            struct_bytes(&params)
        }
        3 => {
            // The PKCS#11 2.40 GCM layout (no ulIvBits).
            let (iv, iv_len) = inner(r, keep);
            let (aad, aad_len) = inner(r, keep);
            let tag_bits = r.pick(&[128, 96, 0, 8]);
            let mut out = Vec::new();
            out.extend_from_slice(&(iv as usize).to_ne_bytes());
            out.extend_from_slice(&iv_len.to_ne_bytes());
            out.extend_from_slice(&(aad as usize).to_ne_bytes());
            out.extend_from_slice(&aad_len.to_ne_bytes());
            out.extend_from_slice(&tag_bits.to_ne_bytes());
            out
        }
        4 => {
            let kdf = r.pick(&[CKD_NULL, CKD_SHA1_KDF, CKD_SHA256_KDF]);
            let (shared, shared_len) = inner(r, keep);
            let (public, public_len) = peer(r, keep, &keys().ec_point);
            let params = CK_ECDH1_DERIVE_PARAMS {
                kdf,
                ulSharedDataLen: shared_len,
                pSharedData: shared,
                ulPublicDataLen: public_len,
                pPublicData: public,
            };
            struct_bytes(&params)
        }
        5 => {
            let flag = r.u8() % 3;
            let (context, context_len) = inner(r, keep);
            let params = CK_EDDSA_PARAMS {
                phFlag: flag,
                ulContextDataLen: context_len,
                pContextData: context,
            };
            struct_bytes(&params)
        }
        6 => r.bytes(false).to_vec(),
        _ => Vec::new(),
    }
}

/// A mechanism of `kind` with a parameter built from the input. Layouts: the structure at its size;
/// a declared length from the input (the buffer is as long as the larger of the two); a NULL
/// parameter with a length; no parameter. The structure may sit at an odd address.
fn mechanism(r: &mut Reader, kind: CK_ULONG) -> RawMechanism {
    let mut keep = Vec::new();
    let layout = r.u8();
    let body = if layout & 0x03 == 3 {
        Vec::new()
    } else {
        param_struct(r, kind, &mut keep)
    };
    let offset = usize::from(layout & 0x04 != 0);
    let (param, pointer, len) = match layout & 0x03 {
        0 | 1 => {
            let mut declared = if layout & 0x03 == 1 {
                usize::from(r.u8())
            } else {
                body.len()
            };
            // A wrong size at which the module would still read pointers from the bytes (GCM's
            // two layouts) stays wrong, but not readable: the harness's pointers are only those it
            // wrote.
            if declared != body.len() && pointer_sizes(kind).contains(&declared) {
                declared += 1;
            }
            let mut buffer = vec![0u8; offset + body.len().max(declared)];
            buffer[offset..offset + body.len()].copy_from_slice(&body);
            let mut buffer = buffer.into_boxed_slice();
            // SAFETY (harness pointer arithmetic): `offset` is within the buffer.
            let pointer = unsafe { buffer.as_mut_ptr().add(offset) } as *mut c_void;
            (Some(buffer), pointer, declared as CK_ULONG)
        }
        2 => (None, std::ptr::null_mut(), body.len().max(1) as CK_ULONG),
        _ => (None, std::ptr::null_mut(), 0),
    };
    RawMechanism {
        mechanism: Box::new(CK_MECHANISM {
            mechanism: kind,
            pParameter: pointer,
            ulParameterLen: len,
        }),
        _param: param,
        _inner: keep,
    }
}

/// Output space: a length query (NULL) or a buffer of fuzzed size.
fn output(r: &mut Reader) -> Option<Box<[u8]>> {
    let size = r.u16();
    if size & 0x8000 != 0 {
        None
    } else {
        Some(vec![0u8; usize::from(size % 1024)].into_boxed_slice())
    }
}

type SingleFn =
    unsafe extern "C" fn(CK_SESSION_HANDLE, *mut u8, CK_ULONG, *mut u8, *mut CK_ULONG) -> CK_RV;

/// Runs a single-part call and checks the length it reports against the space it was given.
fn single(session: CK_SESSION_HANDLE, call: SingleFn, data: &[u8], out: Option<Box<[u8]>>) {
    let mut data = exact(data);
    let mut out = out;
    let (pointer, room) = match out.as_mut() {
        Some(buffer) => (buffer.as_mut_ptr(), buffer.len()),
        None => (std::ptr::null_mut(), 0),
    };
    let mut len = room as CK_ULONG;
    // SAFETY: `data` and `pointer` are valid for the lengths passed.
    let rv = unsafe {
        call(
            session,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            pointer,
            &mut len,
        )
    };
    trace("single-part call", rv);
    if rv == CKR_OK && !pointer.is_null() {
        assert!(
            len as usize <= room,
            "reported {len} bytes written into {room}"
        );
    }
}

fn destroy(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) {
    // SAFETY: no pointers.
    let rv = unsafe { C_DestroyObject(session, object) };
    assert!(
        rv == CKR_OK || rv == CKR_ACTION_PROHIBITED,
        "destroying a derived or unwrapped key: {rv:#x}"
    );
}

/// One input: what the fuzz target of the same name runs, and what the corpus replay test runs.
pub fn run(data: &[u8]) {
    let module = module("abi_mechanisms");
    let keys = keys();
    let mut r = Reader::new(data);
    let mut steps = 0;
    while !r.is_empty() && steps < 6 {
        steps += 1;
        let session = module.open_session();
        let op = r.u8();
        let choose = |r: &mut Reader, options: &[CK_OBJECT_HANDLE]| {
            options[usize::from(r.u8()) % options.len()]
        };
        // SAFETY: every pointer passed below is NULL or valid for the length it is passed with.
        unsafe {
            match op % 8 {
                0 => {
                    let key = choose(
                        &mut r,
                        &[keys.rsa_private, keys.ec_private, keys.ed_private, keys.aes],
                    );
                    let kind = r.pick(SIGN_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    if trace("C_SignInit", C_SignInit(session, mechanism.ptr(), key)) == CKR_OK {
                        let data = r.bytes(false);
                        let out = output(&mut r);
                        single(session, C_Sign, data, out);
                    }
                }
                1 => {
                    let key = choose(&mut r, &[keys.rsa_public, keys.ec_public, keys.ed_public]);
                    let kind = r.pick(SIGN_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    if trace("C_VerifyInit", C_VerifyInit(session, mechanism.ptr(), key)) == CKR_OK
                    {
                        let mut data = exact(r.bytes(false));
                        let mut signature = exact(r.bytes(true));
                        let rv = C_Verify(
                            session,
                            data.as_mut_ptr(),
                            data.len() as CK_ULONG,
                            signature.as_mut_ptr(),
                            signature.len() as CK_ULONG,
                        );
                        trace("C_Verify", rv);
                    }
                }
                2 => {
                    let key = choose(&mut r, &[keys.rsa_public, keys.aes, keys.ec_public]);
                    let kind = r.pick(CIPHER_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    if trace(
                        "C_EncryptInit",
                        C_EncryptInit(session, mechanism.ptr(), key),
                    ) == CKR_OK
                    {
                        let data = r.bytes(true);
                        let out = output(&mut r);
                        single(session, C_Encrypt, data, out);
                    }
                }
                3 => {
                    let key = choose(&mut r, &[keys.rsa_private, keys.aes, keys.ec_private]);
                    let kind = r.pick(CIPHER_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    if trace(
                        "C_DecryptInit",
                        C_DecryptInit(session, mechanism.ptr(), key),
                    ) == CKR_OK
                    {
                        let data = r.bytes(true);
                        let out = output(&mut r);
                        single(session, C_Decrypt, data, out);
                    }
                }
                4 => {
                    let base = choose(
                        &mut r,
                        &[keys.ec_private, keys.rsa_private, keys.aes, keys.ed_private],
                    );
                    let kind = r.pick(DERIVE_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    let mut template = RawTemplate::read(&mut r);
                    let mut derived = CK_INVALID_HANDLE;
                    let rv = C_DeriveKey(
                        session,
                        mechanism.ptr(),
                        base,
                        template.ptr(),
                        template.count(),
                        &mut derived,
                    );
                    if trace("C_DeriveKey", rv) == CKR_OK {
                        destroy(session, derived);
                    }
                }
                5 => {
                    let wrapping = choose(&mut r, &[keys.rsa_public, keys.aes]);
                    let kind = r.pick(CIPHER_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    let mut out = output(&mut r);
                    let (pointer, room) = match out.as_mut() {
                        Some(buffer) => (buffer.as_mut_ptr(), buffer.len()),
                        None => (std::ptr::null_mut(), 0),
                    };
                    let mut len = room as CK_ULONG;
                    let rv = C_WrapKey(
                        session,
                        mechanism.ptr(),
                        wrapping,
                        keys.wrappable,
                        pointer,
                        &mut len,
                    );
                    if trace("C_WrapKey", rv) == CKR_OK && !pointer.is_null() {
                        assert!(
                            len as usize <= room,
                            "C_WrapKey reported {len} bytes written into {room}"
                        );
                    }
                }
                6 => {
                    let unwrapping = choose(&mut r, &[keys.rsa_private, keys.aes]);
                    let kind = r.pick(CIPHER_MECHANISMS);
                    let mut mechanism = mechanism(&mut r, kind);
                    let mut wrapped = exact(r.bytes(true));
                    let mut template = RawTemplate::read(&mut r);
                    let mut unwrapped = CK_INVALID_HANDLE;
                    let rv = C_UnwrapKey(
                        session,
                        mechanism.ptr(),
                        unwrapping,
                        wrapped.as_mut_ptr(),
                        wrapped.len() as CK_ULONG,
                        template.ptr(),
                        template.count(),
                        &mut unwrapped,
                    );
                    if trace("C_UnwrapKey", rv) == CKR_OK {
                        destroy(session, unwrapped);
                    }
                }
                _ => {
                    let kind = r.pick(&[CKM_SHA256, CKM_SHA_1, CKM_SHA512, CKM_MD5]);
                    let mut mechanism = mechanism(&mut r, kind);
                    if trace("C_DigestInit", C_DigestInit(session, mechanism.ptr())) == CKR_OK {
                        let data = r.bytes(false);
                        let out = output(&mut r);
                        single(session, C_Digest, data, out);
                    }
                }
            }
        }
        module.close_session(session);
    }
}
