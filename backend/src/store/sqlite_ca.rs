//! The SQLite side of [`DeviceStore`]: certificate authorities and device certificates.

use cryptera_proto::devices::{
    AuthMethod, CaKind, CaSigningKind, CaSigningRecord, CertificateProfile, CertificateStatus,
    RevocationReason,
};
use cryptera_proto::keys::{KeyAlgorithm, Mechanism};
use cryptera_proto::{Base64Bytes, Environment};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::devices::{
    CaRecord, CaRecordFilter, DeviceCertRecord, DeviceStore, DeviceUpdate, ProfileRecord,
};
use super::sqlite::{unique, SqliteStore};
use super::sqlite_rows::{bad_value, environment, from_json, json};
use super::sqlite_tx::append;
use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};

fn ca_row(row: &Row<'_>) -> rusqlite::Result<CaRecord> {
    let kind: String = row.get("kind")?;
    let algorithm: String = row.get("algorithm")?;
    Ok(CaRecord {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        environment: environment(&row.get::<_, String>("environment")?)?,
        kind: CaKind::parse(&kind).ok_or_else(|| bad_value("CA kind", &kind))?,
        name: row.get("name")?,
        algorithm: KeyAlgorithm::parse(&algorithm)
            .ok_or_else(|| bad_value("algorithm", &algorithm))?,
        sealed_private_key: row.get("sealed_private_key")?,
        certificate: row.get("certificate")?,
        crl_url: row.get("crl_url")?,
        created_at: row.get("created_at")?,
    })
}

fn cert_row(row: &Row<'_>) -> rusqlite::Result<DeviceCertRecord> {
    let profile: String = row.get("profile")?;
    let status: String = row.get("status")?;
    let reason: Option<String> = row.get("revocation_reason")?;
    Ok(DeviceCertRecord {
        serial: row.get("serial")?,
        org_id: row.get("org_id")?,
        environment: environment(&row.get::<_, String>("environment")?)?,
        device_id: row.get("device_id")?,
        ca_id: row.get("ca_id")?,
        profile: CertificateProfile::parse(&profile)
            .ok_or_else(|| bad_value("profile", &profile))?,
        public_key: row.get("public_key")?,
        certificate: row.get("certificate")?,
        status: CertificateStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        not_before: row.get("not_before")?,
        not_after: row.get("not_after")?,
        issued_at: row.get("issued_at")?,
        revoked_at: row.get("revoked_at")?,
        revocation_reason: reason
            .map(|reason| {
                RevocationReason::parse(&reason).ok_or_else(|| bad_value("reason", &reason))
            })
            .transpose()?,
    })
}

fn profile_row(row: &Row<'_>) -> rusqlite::Result<ProfileRecord> {
    let name: String = row.get("name")?;
    Ok(ProfileRecord {
        org_id: row.get("org_id")?,
        environment: environment(&row.get::<_, String>("environment")?)?,
        name: CertificateProfile::parse(&name).ok_or_else(|| bad_value("profile", &name))?,
        definition: from_json(&row.get::<_, String>("definition")?)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn parsed<T>(row: &Row<'_>, column: &str, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| bad_value(column, &text))
}

fn record_row(row: &Row<'_>) -> rusqlite::Result<CaSigningRecord> {
    let mechanism: Option<String> = row.get("mechanism")?;
    let reason: Option<String> = row.get("reason")?;
    Ok(CaSigningRecord {
        id: row.get("id")?,
        kind: parsed(row, "kind", CaSigningKind::parse)?,
        ca_id: row.get("ca_id")?,
        environment: parsed(row, "environment", Environment::parse)?,
        device_id: row.get("device_id")?,
        serial: row.get("serial")?,
        profile: parsed(row, "profile", CertificateProfile::parse)?,
        actor: row.get("actor")?,
        auth: parsed(row, "auth", AuthMethod::parse)?,
        mechanism: mechanism
            .map(|name| Mechanism::parse(&name).ok_or_else(|| bad_value("mechanism", &name)))
            .transpose()?,
        digest: row.get::<_, Option<Vec<u8>>>("digest")?.map(Base64Bytes),
        signature: row.get::<_, Option<Vec<u8>>>("signature")?.map(Base64Bytes),
        reason: reason
            .map(|name| RevocationReason::parse(&name).ok_or_else(|| bad_value("reason", &name)))
            .transpose()?,
        at: row.get("at")?,
    })
}

fn insert_record(tx: &Transaction<'_>, org_id: &str, record: &CaSigningRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO ca_signing_records (id, org_id, environment, ca_id, kind, serial, device_id, \
         profile, actor, auth, mechanism, digest, signature, reason, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            record.id,
            org_id,
            record.environment.as_str(),
            record.ca_id,
            record.kind.as_str(),
            record.serial,
            record.device_id,
            record.profile.as_str(),
            record.actor,
            record.auth.as_str(),
            record.mechanism.map(Mechanism::as_str),
            record.digest.as_ref().map(|digest| digest.0.as_slice()),
            record
                .signature
                .as_ref()
                .map(|signature| signature.0.as_slice()),
            record.reason.map(RevocationReason::as_str),
            record.at
        ],
    )
    .map_err(unique("CA signing record"))
    .map(drop)
}

fn insert_ca(tx: &Transaction<'_>, ca: &CaRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO certificate_authorities (id, org_id, environment, kind, name, algorithm, \
         sealed_private_key, certificate, crl_url, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            ca.id,
            ca.org_id,
            ca.environment.as_str(),
            ca.kind.as_str(),
            ca.name,
            ca.algorithm.as_str(),
            ca.sealed_private_key,
            ca.certificate,
            ca.crl_url,
            ca.created_at
        ],
    )
    .map_err(unique("certificate authority"))
    .map(drop)
}

fn insert_cert(tx: &Transaction<'_>, cert: &DeviceCertRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO device_certificates (serial, org_id, environment, device_id, ca_id, profile, \
         public_key, certificate, status, not_before, not_after, issued_at, revoked_at, \
         revocation_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            cert.serial,
            cert.org_id,
            cert.environment.as_str(),
            cert.device_id,
            cert.ca_id,
            cert.profile.as_str(),
            cert.public_key,
            cert.certificate,
            cert.status.as_str(),
            cert.not_before,
            cert.not_after,
            cert.issued_at,
            cert.revoked_at,
            cert.revocation_reason.map(RevocationReason::as_str)
        ],
    )
    .map_err(unique("certificate serial"))
    .map(drop)
}

fn update_cert(tx: &Transaction<'_>, cert: &DeviceCertRecord) -> Result<()> {
    tx.execute(
        "UPDATE device_certificates SET status = ?2, revoked_at = ?3, revocation_reason = ?4 \
         WHERE serial = ?1",
        params![
            cert.serial,
            cert.status.as_str(),
            cert.revoked_at,
            cert.revocation_reason.map(RevocationReason::as_str)
        ],
    )
    .map_err(ServiceError::storage)
    .map(drop)
}

const DEVICE_CERTS: &str = "SELECT * FROM device_certificates \
     WHERE org_id = ?1 AND environment = ?2 AND device_id = ?3 ORDER BY issued_at DESC, rowid DESC";

fn device_certs(
    conn: &rusqlite::Connection,
    org_id: &str,
    environment: Environment,
    device_id: &str,
) -> Result<Vec<DeviceCertRecord>> {
    let mut statement = conn.prepare(DEVICE_CERTS).map_err(ServiceError::storage)?;
    let rows = statement
        .query_map(params![org_id, environment.as_str(), device_id], cert_row)
        .map_err(ServiceError::storage)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(ServiceError::storage)
}

impl DeviceStore for SqliteStore {
    fn create_cas(&self, root: &CaRecord, issuing: &CaRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            insert_ca(tx, root)?;
            insert_ca(tx, issuing)?;
            append(tx, audit).map(drop)
        })
    }

    fn cas(&self, org_id: &str, environment: Environment) -> Result<Vec<CaRecord>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(
                "SELECT * FROM certificate_authorities WHERE org_id = ?1 AND environment = ?2 \
                 ORDER BY CASE kind WHEN 'root' THEN 0 ELSE 1 END",
            )
            .map_err(ServiceError::storage)?;
        let rows = statement
            .query_map(params![org_id, environment.as_str()], ca_row)
            .map_err(ServiceError::storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::storage)
    }

    fn ca_by_id(&self, id: &str) -> Result<Option<CaRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM certificate_authorities WHERE id = ?1",
                [id],
                ca_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn update_device(
        &self,
        org_id: &str,
        environment: Environment,
        device_id: &str,
        update: &mut DeviceUpdate<'_>,
    ) -> Result<()> {
        self.write(|tx| {
            let current = device_certs(tx, org_id, environment, device_id)?;
            let change = update(&current)?;
            for cert in &change.updates {
                update_cert(tx, cert)?;
            }
            if let Some(cert) = &change.insert {
                insert_cert(tx, cert)?;
            }
            for record in &change.records {
                insert_record(tx, org_id, record)?;
            }
            for event in &change.audit {
                append(tx, event)?;
            }
            Ok(())
        })
    }

    fn device_certificates(
        &self,
        org_id: &str,
        environment: Environment,
        device_id: &str,
    ) -> Result<Vec<DeviceCertRecord>> {
        device_certs(&self.lock(), org_id, environment, device_id)
    }

    fn search_devices(
        &self,
        org_id: &str,
        environment: Environment,
        query: &str,
        limit: u32,
    ) -> Result<Vec<DeviceCertRecord>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(
                "SELECT * FROM device_certificates WHERE org_id = ?1 AND environment = ?2 \
                 AND device_id IN (SELECT DISTINCT device_id FROM device_certificates \
                   WHERE org_id = ?1 AND environment = ?2 AND instr(device_id, ?3) > 0 \
                   ORDER BY device_id LIMIT ?4) \
                 ORDER BY device_id, issued_at DESC, rowid DESC",
            )
            .map_err(ServiceError::storage)?;
        let rows = statement
            .query_map(
                params![org_id, environment.as_str(), query, limit],
                cert_row,
            )
            .map_err(ServiceError::storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::storage)
    }

    fn revoked_certificates(&self, ca_id: &str) -> Result<Vec<DeviceCertRecord>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(
                "SELECT * FROM device_certificates WHERE ca_id = ?1 AND status = 'revoked' \
                 ORDER BY revoked_at, serial",
            )
            .map_err(ServiceError::storage)?;
        let rows = statement
            .query_map([ca_id], cert_row)
            .map_err(ServiceError::storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::storage)
    }

    fn certificate(&self, serial: &str) -> Result<Option<DeviceCertRecord>> {
        self.lock()
            .query_row(
                "SELECT * FROM device_certificates WHERE serial = ?1",
                [serial],
                cert_row,
            )
            .optional()
            .map_err(ServiceError::storage)
    }

    fn profiles(&self, org_id: &str, environment: Environment) -> Result<Vec<ProfileRecord>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(
                "SELECT * FROM certificate_profiles WHERE org_id = ?1 AND environment = ?2 \
                 ORDER BY name",
            )
            .map_err(ServiceError::storage)?;
        let rows = statement
            .query_map(params![org_id, environment.as_str()], profile_row)
            .map_err(ServiceError::storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::storage)
    }

    fn put_profile(&self, profile: &ProfileRecord, audit: &AuditEvent) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO certificate_profiles (org_id, environment, name, definition, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (org_id, environment, name) \
                 DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
                params![
                    profile.org_id,
                    profile.environment.as_str(),
                    profile.name.as_str(),
                    json(&profile.definition),
                    profile.created_at,
                    profile.updated_at
                ],
            )
            .map_err(ServiceError::storage)?;
            append(tx, audit).map(drop)
        })
    }

    fn delete_profile(
        &self,
        org_id: &str,
        environment: Environment,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM certificate_profiles \
                     WHERE org_id = ?1 AND environment = ?2 AND name = ?3",
                    params![org_id, environment.as_str(), name],
                )
                .map_err(ServiceError::storage)?;
            if deleted == 0 {
                return Err(ServiceError::NotFound("profile of this organisation"));
            }
            append(tx, audit).map(drop)
        })
    }

    fn ca_signing_records(
        &self,
        org_id: &str,
        environment: Environment,
        filter: &CaRecordFilter,
    ) -> Result<Vec<CaSigningRecord>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(
                "SELECT * FROM ca_signing_records WHERE org_id = ?1 AND environment = ?2 \
                 AND (?3 IS NULL OR device_id = ?3) AND (?4 IS NULL OR serial = ?4) \
                 ORDER BY at DESC, kind DESC, id DESC LIMIT ?5",
            )
            .map_err(ServiceError::storage)?;
        let rows = statement
            .query_map(
                params![
                    org_id,
                    environment.as_str(),
                    filter.device_id,
                    filter.serial,
                    filter.limit
                ],
                record_row,
            )
            .map_err(ServiceError::storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(ServiceError::storage)
    }
}
