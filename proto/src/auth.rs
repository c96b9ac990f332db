//! Organisations, users, logins, TOTP enrolment and scoped access tokens.

use serde::{Deserialize, Serialize};

use crate::Environment;

/// What a credential may do. Users get operations from their roles; access tokens carry them explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Sign,
    Keygen,
    Read,
    Approve,
    Audit,
    Admin,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Self::Sign,
        Self::Keygen,
        Self::Read,
        Self::Approve,
        Self::Audit,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Keygen => "keygen",
            Self::Read => "read",
            Self::Approve => "approve",
            Self::Audit => "audit",
            Self::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// A human user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Signer,
    Approver,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Admin, Self::Signer, Self::Approver, Self::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Signer => "signer",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// The operations a role grants.
    pub fn operations(self) -> &'static [Operation] {
        match self {
            Self::Admin => &[Operation::Admin, Operation::Keygen, Operation::Read],
            Self::Signer => &[Operation::Sign, Operation::Read],
            Self::Approver => &[Operation::Approve, Operation::Read],
            Self::Auditor => &[Operation::Audit, Operation::Read],
        }
    }
}

/// `POST /v1/login`: a user's password (and TOTP code once enrolled) for a session in one environment.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub organisation: String,
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    pub environment: Environment,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("organisation", &self.organisation)
            .field("username", &self.username)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// The session token is shown once; send it as `Authorization: Bearer <session_token>`.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub session_token: String,
    pub expires_at: i64,
    /// True when the login was verified with a TOTP code; admin and approval actions require it.
    pub mfa_verified: bool,
    pub user: UserInfo,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("expires_at", &self.expires_at)
            .field("mfa_verified", &self.mfa_verified)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/users` (admin): add a user to the caller's organisation.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub password: String,
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub roles: Vec<Role>,
    pub totp_enrolled: bool,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// `POST /v1/users/me/totp`: a fresh TOTP secret, shown once, active after confirmation.
#[derive(Clone, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// Base32 (RFC 4648, no padding) secret for authenticator apps.
    pub secret_base32: String,
    /// `otpauth://totp/...` URI (SHA1, 6 digits, 30 s period).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// `POST /v1/users/me/totp/confirm`: proves the authenticator works; from then on logins need a code.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    pub code: String,
}

/// Which keys a token may use: any key whose id is listed, or whose label matches a pattern
/// (`*` matches any run of characters, e.g. `release-*`). Both empty means no key at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyScope {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub label_patterns: Vec<String>,
}

/// `POST /v1/tokens` (admin): a scoped machine credential in the caller's environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub keys: KeyScope,
    /// Lifetime in seconds; the service caps it (one year).
    pub expires_in_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub operations: Vec<Operation>,
    pub keys: KeyScope,
    pub environment: Environment,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// The only time the secret is visible: it is stored as a hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `GET /v1/whoami`: what the presented credential is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub organisation_id: String,
    pub organisation: String,
    pub environment: Environment,
    /// `token` or `user`.
    pub kind: String,
    pub id: String,
    pub operations: Vec<Operation>,
    pub mfa_verified: bool,
}
