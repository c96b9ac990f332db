-- Migration 3 (issue 10): device certificate provisioning. Each organisation's environment has one
-- root and one issuing CA (private keys sealed under the KEK like service keys); every certificate
-- issued to a device is kept, with its status, so the registry holds the device's history and the
-- issuing CA's CRL lists its revoked serials.
CREATE TABLE certificate_authorities (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    environment TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    sealed_private_key {blob} NOT NULL,
    certificate {blob} NOT NULL,
    crl_url TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX certificate_authorities_scope ON certificate_authorities (org_id, environment, kind);

CREATE TABLE device_certificates (
    serial TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    environment TEXT NOT NULL,
    device_id TEXT NOT NULL,
    ca_id TEXT NOT NULL REFERENCES certificate_authorities(id),
    profile TEXT NOT NULL,
    public_key {blob} NOT NULL,
    certificate {blob} NOT NULL,
    status TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revocation_reason TEXT
);
CREATE INDEX device_certificates_device ON device_certificates (org_id, environment, device_id);
CREATE INDEX device_certificates_ca ON device_certificates (ca_id, status);
