//! The Cryptera signing service: a self-hostable remote signing backend for the PKCS#11 module's remote
//! token. Organisations own keys (sealed under a KEK), users, scoped access tokens and a hash-chained
//! audit log; the REST API is described in `docs/service-api.md` and typed by `cryptera-proto`.
//!
//! Layers: `api/` (HTTP handlers) → `auth`, `signing`, `kek`, `audit` → `store/` (persistence).

#![deny(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod ca;
pub mod checkpoint;
pub mod error;
pub mod kek;
pub mod kek_pkcs11;
pub mod limits;
pub mod metrics;
pub mod password;
pub mod server;
pub mod signing;
pub mod store;
pub mod tls;
pub mod totp;
pub mod util;

pub use error::{Result, ServiceError};
pub use server::{AppState, ServiceConfig};
