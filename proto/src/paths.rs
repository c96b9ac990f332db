//! Endpoint paths, shared so the router and the remote token use the same strings.
//!
//! The constants are the router's templates (`{id}` placeholders); the functions fill them in.

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const OPENAPI: &str = "/v1/openapi.json";
pub const LOGIN: &str = "/v1/login";
pub const WHOAMI: &str = "/v1/whoami";
pub const USERS: &str = "/v1/users";
pub const USER: &str = "/v1/users/{id}";
pub const TOTP_ENROL: &str = "/v1/users/me/totp";
pub const TOTP_CONFIRM: &str = "/v1/users/me/totp/confirm";
pub const TOKENS: &str = "/v1/tokens";
pub const TOKEN: &str = "/v1/tokens/{id}";
pub const KEYS: &str = "/v1/keys";
pub const KEY: &str = "/v1/keys/{id}";
pub const KEY_SIGN: &str = "/v1/keys/{id}/sign";
pub const KEY_POLICY: &str = "/v1/keys/{id}/policy";
pub const KEY_CERTIFICATES: &str = "/v1/keys/{id}/certificates";
pub const KEY_LOCK: &str = "/v1/keys/{id}/lock";
pub const KEY_RESTORE: &str = "/v1/keys/{id}/restore";
pub const SIGNING_REQUESTS: &str = "/v1/signing-requests";
pub const SIGNING_REQUEST: &str = "/v1/signing-requests/{id}";
pub const SIGNING_REQUEST_APPROVE: &str = "/v1/signing-requests/{id}/approve";
pub const SIGNING_REQUEST_DENY: &str = "/v1/signing-requests/{id}/deny";
pub const AUDIT_RECORDS: &str = "/v1/audit/records";
pub const AUDIT_CHECKPOINT: &str = "/v1/audit/checkpoint";
pub const AUDIT_CHECKPOINTS: &str = "/v1/audit/checkpoints";
pub const CAS: &str = "/v1/cas";
pub const CA_CRL: &str = "/v1/cas/{id}/crl";
pub const CA_SIGNING_RECORDS: &str = "/v1/cas/signing-records";
pub const PROFILES: &str = "/v1/profiles";
pub const PROFILE: &str = "/v1/profiles/{name}";
pub const DEVICES: &str = "/v1/devices";
pub const DEVICES_EXPORT: &str = "/v1/devices/export";
pub const DEVICE: &str = "/v1/devices/{id}";
pub const DEVICE_ENROLL: &str = "/v1/devices/{id}/enroll";
pub const DEVICE_REVOKE: &str = "/v1/devices/{id}/revoke";
pub const EST_CACERTS: &str = "/.well-known/est/cacerts";
pub const EST_SIMPLEENROLL: &str = "/.well-known/est/simpleenroll";
pub const EST_SIMPLEREENROLL: &str = "/.well-known/est/simplereenroll";

/// Every endpoint template, for checks that the router, this list and the OpenAPI document agree.
pub const ALL: [&str; 39] = [
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI,
    LOGIN,
    WHOAMI,
    USERS,
    USER,
    TOTP_ENROL,
    TOTP_CONFIRM,
    TOKENS,
    TOKEN,
    KEYS,
    KEY,
    KEY_SIGN,
    KEY_POLICY,
    KEY_CERTIFICATES,
    KEY_LOCK,
    KEY_RESTORE,
    SIGNING_REQUESTS,
    SIGNING_REQUEST,
    SIGNING_REQUEST_APPROVE,
    SIGNING_REQUEST_DENY,
    AUDIT_RECORDS,
    AUDIT_CHECKPOINT,
    AUDIT_CHECKPOINTS,
    CAS,
    CA_CRL,
    CA_SIGNING_RECORDS,
    PROFILES,
    PROFILE,
    DEVICES,
    DEVICES_EXPORT,
    DEVICE,
    DEVICE_ENROLL,
    DEVICE_REVOKE,
    EST_CACERTS,
    EST_SIMPLEENROLL,
    EST_SIMPLEREENROLL,
];

/// Fills the `{id}` of a template. Ids are opaque but never contain `/`, `?` or `#`.
pub fn with_id(template: &str, id: &str) -> String {
    template.replacen("{id}", id, 1)
}

pub fn key(id: &str) -> String {
    with_id(KEY, id)
}

pub fn key_sign(id: &str) -> String {
    with_id(KEY_SIGN, id)
}

pub fn device_enroll(device_id: &str) -> String {
    with_id(DEVICE_ENROLL, device_id)
}

pub fn ca_crl(ca_id: &str) -> String {
    with_id(CA_CRL, ca_id)
}

pub fn profile(name: &str) -> String {
    PROFILE.replacen("{name}", name, 1)
}

pub fn signing_request(id: &str) -> String {
    with_id(SIGNING_REQUEST, id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_fill_in() {
        assert_eq!(super::key_sign("key_1"), "/v1/keys/key_1/sign");
        assert_eq!(
            super::signing_request("req_2"),
            "/v1/signing-requests/req_2"
        );
    }
}
