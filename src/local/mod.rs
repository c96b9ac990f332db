//! The local soft-token backend: an encrypted SQLite database per token.

pub mod codec;
pub mod crypt;
pub mod store;
