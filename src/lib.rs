//! Cryptera PKCS#11: a PKCS#11 module whose tokens live in a local encrypted store or in the Cryptera
//! signing service. `abi` is the C surface (the one module allowed raw pointers); everything else is the safe core.
#![deny(unsafe_code)]

pub mod abi;
pub mod attr;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod error;
pub mod local;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod remote;
pub mod session;
pub mod token;

pub use error::{Error, Result};
