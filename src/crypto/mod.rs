//! The one internal crypto interface. Everything cryptographic in the module goes through here, and
//! everything here is `aws-lc-rs`; the rest of the core never names the engine.

pub mod asym;
pub mod der;
pub mod symmetric;

use crate::error::{Error, Result};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

/// Hash functions of the PKCS#11 mechanisms the module offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha224 => &digest::SHA224,
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }

    pub fn output_len(self) -> usize {
        self.algorithm().output_len()
    }

    pub fn from_len(len: usize) -> Option<HashAlg> {
        [
            HashAlg::Sha1,
            HashAlg::Sha224,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ]
        .into_iter()
        .find(|h| h.output_len() == len)
    }

    pub fn hasher(self) -> Hasher {
        Hasher {
            alg: self,
            ctx: digest::Context::new(self.algorithm()),
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), data).as_ref().to_vec()
    }
}

/// A running hash (multi-part digest, sign and verify).
#[derive(Clone)]
pub struct Hasher {
    alg: HashAlg,
    ctx: digest::Context,
}

impl Hasher {
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    pub fn finish(self) -> Vec<u8> {
        self.ctx.finish().as_ref().to_vec()
    }
}

/// Fills `out` with random bytes from the engine's DRBG.
pub fn random(out: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(out).map_err(|_| Error::General("random generator failed".into()))
}

pub fn random_vec(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    random(&mut out)?;
    Ok(out)
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
