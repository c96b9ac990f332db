//! Mechanisms: what the module offers (`C_GetMechanismList` / `C_GetMechanismInfo` read this table and
//! nothing else), and the owned form of a caller's `CK_MECHANISM` with its parameter.

pub mod ops;

use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use cryptoki_sys::*;

/// A mechanism as the core sees it, parsed from `CK_MECHANISM` by the ABI layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub param: Param,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    None,
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: usize,
    },
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        label: Vec<u8>,
    },
    Gcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_bits: usize,
    },
    Iv(Vec<u8>),
    Ecdh {
        kdf: CK_EC_KDF_TYPE,
        shared_data: Vec<u8>,
        public_data: Vec<u8>,
    },
}

impl Mechanism {
    pub fn new(kind: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism {
            kind,
            param: Param::None,
        }
    }
}

const RSA_BITS: (CK_ULONG, CK_ULONG) = (2048, 4096);
const EC_BITS: (CK_ULONG, CK_ULONG) = (256, 521);
const ED_BITS: (CK_ULONG, CK_ULONG) = (255, 255);
const AES_BYTES: (CK_ULONG, CK_ULONG) = (16, 32);
const SECRET_BYTES: (CK_ULONG, CK_ULONG) = (1, 512);
const NONE: (CK_ULONG, CK_ULONG) = (0, 0);
const SIGN: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;

/// Every mechanism the module offers: (type, (min, max) key size, flags).
pub static MECHANISMS: &[(CK_MECHANISM_TYPE, (CK_ULONG, CK_ULONG), CK_FLAGS)] = &[
    (CKM_RSA_PKCS_KEY_PAIR_GEN, RSA_BITS, CKF_GENERATE_KEY_PAIR),
    (
        CKM_RSA_PKCS,
        RSA_BITS,
        SIGN | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (CKM_SHA1_RSA_PKCS, RSA_BITS, SIGN),
    (CKM_SHA224_RSA_PKCS, RSA_BITS, SIGN),
    (CKM_SHA256_RSA_PKCS, RSA_BITS, SIGN),
    (CKM_SHA384_RSA_PKCS, RSA_BITS, SIGN),
    (CKM_SHA512_RSA_PKCS, RSA_BITS, SIGN),
    (CKM_RSA_PKCS_PSS, RSA_BITS, SIGN),
    (CKM_SHA224_RSA_PKCS_PSS, RSA_BITS, SIGN),
    (CKM_SHA256_RSA_PKCS_PSS, RSA_BITS, SIGN),
    (CKM_SHA384_RSA_PKCS_PSS, RSA_BITS, SIGN),
    (CKM_SHA512_RSA_PKCS_PSS, RSA_BITS, SIGN),
    (
        CKM_RSA_PKCS_OAEP,
        RSA_BITS,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (
        CKM_EC_KEY_PAIR_GEN,
        EC_BITS,
        CKF_GENERATE_KEY_PAIR | EC_FLAGS,
    ),
    (CKM_ECDSA, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDSA_SHA1, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDSA_SHA224, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDSA_SHA256, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDSA_SHA384, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDSA_SHA512, EC_BITS, SIGN | EC_FLAGS),
    (CKM_ECDH1_DERIVE, EC_BITS, CKF_DERIVE | EC_FLAGS),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, ED_BITS, CKF_GENERATE_KEY_PAIR),
    (CKM_EDDSA, ED_BITS, SIGN),
    (CKM_SHA_1, NONE, CKF_DIGEST),
    (CKM_SHA224, NONE, CKF_DIGEST),
    (CKM_SHA256, NONE, CKF_DIGEST),
    (CKM_SHA384, NONE, CKF_DIGEST),
    (CKM_SHA512, NONE, CKF_DIGEST),
    (CKM_AES_KEY_GEN, AES_BYTES, CKF_GENERATE),
    (CKM_AES_GCM, AES_BYTES, CKF_ENCRYPT | CKF_DECRYPT),
    (
        CKM_AES_CBC_PAD,
        AES_BYTES,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
    ),
    (CKM_AES_KEY_WRAP, AES_BYTES, CKF_WRAP | CKF_UNWRAP),
    (CKM_AES_KEY_WRAP_PAD, AES_BYTES, CKF_WRAP | CKF_UNWRAP),
    (CKM_GENERIC_SECRET_KEY_GEN, SECRET_BYTES, CKF_GENERATE),
    (CKM_SHA256_HMAC, SECRET_BYTES, SIGN),
    (CKM_SHA384_HMAC, SECRET_BYTES, SIGN),
    (CKM_SHA512_HMAC, SECRET_BYTES, SIGN),
];

pub fn list() -> Vec<CK_MECHANISM_TYPE> {
    MECHANISMS.iter().map(|(m, _, _)| *m).collect()
}

pub fn info(kind: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    MECHANISMS
        .iter()
        .find(|(m, _, _)| *m == kind)
        .map(|(_, (min, max), flags)| CK_MECHANISM_INFO {
            ulMinKeySize: *min,
            ulMaxKeySize: *max,
            flags: *flags,
        })
        .ok_or(Error::MechanismInvalid)
}

/// Checks that the mechanism is offered for `flag` (`CKF_SIGN`, `CKF_ENCRYPT`...).
pub fn require(kind: CK_MECHANISM_TYPE, flag: CK_FLAGS) -> Result<()> {
    if info(kind)?.flags & flag == 0 {
        return Err(Error::MechanismInvalid);
    }
    Ok(())
}

/// The hash function a digest mechanism (or a PSS/OAEP `hashAlg`) names.
pub fn hash_of(kind: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    match kind {
        CKM_SHA_1 => Some(HashAlg::Sha1),
        CKM_SHA224 => Some(HashAlg::Sha224),
        CKM_SHA256 => Some(HashAlg::Sha256),
        CKM_SHA384 => Some(HashAlg::Sha384),
        CKM_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The MGF1 function that goes with a hash.
pub fn mgf_of(hash: HashAlg) -> CK_RSA_PKCS_MGF_TYPE {
    match hash {
        HashAlg::Sha1 => CKG_MGF1_SHA1,
        HashAlg::Sha224 => CKG_MGF1_SHA224,
        HashAlg::Sha256 => CKG_MGF1_SHA256,
        HashAlg::Sha384 => CKG_MGF1_SHA384,
        HashAlg::Sha512 => CKG_MGF1_SHA512,
    }
}

/// The hash an MGF1 identifier names.
pub fn mgf_hash(mgf: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ]
    .into_iter()
    .find(|h| mgf_of(*h) == mgf)
}

/// The name of a mechanism the module offers, for audit records and messages.
pub fn name(kind: CK_MECHANISM_TYPE) -> Option<&'static str> {
    let name = match kind {
        CKM_RSA_PKCS_KEY_PAIR_GEN => "CKM_RSA_PKCS_KEY_PAIR_GEN",
        CKM_RSA_PKCS => "CKM_RSA_PKCS",
        CKM_SHA1_RSA_PKCS => "CKM_SHA1_RSA_PKCS",
        CKM_SHA224_RSA_PKCS => "CKM_SHA224_RSA_PKCS",
        CKM_SHA256_RSA_PKCS => "CKM_SHA256_RSA_PKCS",
        CKM_SHA384_RSA_PKCS => "CKM_SHA384_RSA_PKCS",
        CKM_SHA512_RSA_PKCS => "CKM_SHA512_RSA_PKCS",
        CKM_RSA_PKCS_PSS => "CKM_RSA_PKCS_PSS",
        CKM_SHA224_RSA_PKCS_PSS => "CKM_SHA224_RSA_PKCS_PSS",
        CKM_SHA256_RSA_PKCS_PSS => "CKM_SHA256_RSA_PKCS_PSS",
        CKM_SHA384_RSA_PKCS_PSS => "CKM_SHA384_RSA_PKCS_PSS",
        CKM_SHA512_RSA_PKCS_PSS => "CKM_SHA512_RSA_PKCS_PSS",
        CKM_RSA_PKCS_OAEP => "CKM_RSA_PKCS_OAEP",
        CKM_EC_KEY_PAIR_GEN => "CKM_EC_KEY_PAIR_GEN",
        CKM_ECDSA => "CKM_ECDSA",
        CKM_ECDSA_SHA1 => "CKM_ECDSA_SHA1",
        CKM_ECDSA_SHA224 => "CKM_ECDSA_SHA224",
        CKM_ECDSA_SHA256 => "CKM_ECDSA_SHA256",
        CKM_ECDSA_SHA384 => "CKM_ECDSA_SHA384",
        CKM_ECDSA_SHA512 => "CKM_ECDSA_SHA512",
        CKM_ECDH1_DERIVE => "CKM_ECDH1_DERIVE",
        CKM_EC_EDWARDS_KEY_PAIR_GEN => "CKM_EC_EDWARDS_KEY_PAIR_GEN",
        CKM_EDDSA => "CKM_EDDSA",
        CKM_SHA_1 => "CKM_SHA_1",
        CKM_SHA224 => "CKM_SHA224",
        CKM_SHA256 => "CKM_SHA256",
        CKM_SHA384 => "CKM_SHA384",
        CKM_SHA512 => "CKM_SHA512",
        CKM_AES_KEY_GEN => "CKM_AES_KEY_GEN",
        CKM_AES_GCM => "CKM_AES_GCM",
        CKM_AES_CBC_PAD => "CKM_AES_CBC_PAD",
        CKM_AES_KEY_WRAP => "CKM_AES_KEY_WRAP",
        CKM_AES_KEY_WRAP_PAD => "CKM_AES_KEY_WRAP_PAD",
        CKM_GENERIC_SECRET_KEY_GEN => "CKM_GENERIC_SECRET_KEY_GEN",
        CKM_SHA256_HMAC => "CKM_SHA256_HMAC",
        CKM_SHA384_HMAC => "CKM_SHA384_HMAC",
        CKM_SHA512_HMAC => "CKM_SHA512_HMAC",
        _ => return None,
    };
    Some(name)
}
