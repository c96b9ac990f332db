-- Migration 4 (issue 10): certificate profiles an organisation defines per environment (they replace the
-- built-in `device` and `code_signing` of the same name), and the CA signing records: every certificate
-- an issuing CA signed (digest of the TBSCertificate and the signature) and every revocation, written in
-- the same transaction as the certificate change and its audit record.
CREATE TABLE certificate_profiles (
    org_id TEXT NOT NULL REFERENCES organisations(id),
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON ProfileDefinition (cryptera_proto::devices), validated before it is stored.
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, environment, name)
);

CREATE TABLE ca_signing_records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    environment TEXT NOT NULL,
    ca_id TEXT NOT NULL REFERENCES certificate_authorities(id),
    kind TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    actor TEXT NOT NULL,
    auth TEXT NOT NULL,
    mechanism TEXT,
    digest {blob},
    signature {blob},
    reason TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX ca_signing_records_scope ON ca_signing_records (org_id, environment, at);
CREATE INDEX ca_signing_records_serial ON ca_signing_records (serial);
