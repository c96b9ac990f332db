//! Cryptera PKCS#11: a PKCS#11 module whose tokens live in a local encrypted store or in the Cryptera
//! signing service. `abi` is the C surface (the only `unsafe` code); everything else is the safe core.
#![deny(unsafe_code)]

pub mod attr;
pub mod crypto;
pub mod error;
pub mod object;

pub use error::{Error, Result};
