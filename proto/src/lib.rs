//! Wire types of the Cryptera service API, shared by the module's remote token and `backend/` so that
//! client and server cannot drift.
//!
//! Every request and response body of `/v1` is a struct here; binary values travel as standard base64
//! ([`Base64Bytes`]) and times as Unix seconds. `docs/service-api.md` describes the endpoints that use
//! them. Types only: no I/O, no crypto.

#![deny(unsafe_code)]

pub mod audit;
pub mod auth;
mod bytes;
pub mod devices;
pub mod error;
pub mod keys;
pub mod paths;
pub mod sign;

pub use bytes::Base64Bytes;

/// The path prefix of every versioned endpoint.
pub const API_PREFIX: &str = "/v1";

/// The HTTP header that carries an idempotency key (the body field `idempotency_key` is equivalent).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Every key and every credential lives in exactly one environment; they never mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Trial,
    Development,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Self::Trial, Self::Development, Self::Production];

    /// The stable lower-case name used on the wire, in the database and in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Development => "development",
            Self::Production => "production",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|env| env.as_str() == name)
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    pub status: String,
}
