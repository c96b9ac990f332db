//! The PostgreSQL side of [`DeviceStore`]: the same tables and encodings as [`super::sqlite_ca`].
//! A device's transaction holds an advisory lock on (organisation, environment, device id), so two
//! enrolments of a device that has no row yet still run one after the other.

use cryptera_proto::devices::{
    AuthMethod, CaKind, CaSigningKind, CaSigningRecord, CertificateProfile, CertificateStatus,
    RevocationReason,
};
use cryptera_proto::keys::{KeyAlgorithm, Mechanism};
use cryptera_proto::{Base64Bytes, Environment};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::devices::{
    CaRecord, CaRecordFilter, DeviceCertRecord, DeviceStore, DeviceUpdate, ProfileRecord,
};
use super::postgres::PgStore;
use super::postgres_conn::{args, unique, Failure, Tx};
use super::postgres_tx::append;
use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};

/// Advisory lock class of device transactions (beside the store's own classes 0x4372_000x).
const LOCK_DEVICE: i32 = 0x4372_0010;

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|err| ServiceError::Storage(format!("column {column}: {err}")))
}

fn parsed<T>(row: &PgRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let text: String = get(row, column)?;
    parse(&text).ok_or_else(|| ServiceError::Storage(format!("unknown {column} {text:?}")))
}

fn ca_row(row: &PgRow) -> Result<CaRecord> {
    Ok(CaRecord {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        environment: parsed(row, "environment", Environment::parse)?,
        kind: parsed(row, "kind", CaKind::parse)?,
        name: get(row, "name")?,
        algorithm: parsed(row, "algorithm", KeyAlgorithm::parse)?,
        sealed_private_key: get(row, "sealed_private_key")?,
        certificate: get(row, "certificate")?,
        crl_url: get(row, "crl_url")?,
        created_at: get(row, "created_at")?,
    })
}

fn cert_row(row: &PgRow) -> Result<DeviceCertRecord> {
    let reason: Option<String> = get(row, "revocation_reason")?;
    Ok(DeviceCertRecord {
        serial: get(row, "serial")?,
        org_id: get(row, "org_id")?,
        environment: parsed(row, "environment", Environment::parse)?,
        device_id: get(row, "device_id")?,
        ca_id: get(row, "ca_id")?,
        profile: parsed(row, "profile", CertificateProfile::parse)?,
        public_key: get(row, "public_key")?,
        certificate: get(row, "certificate")?,
        status: parsed(row, "status", CertificateStatus::parse)?,
        not_before: get(row, "not_before")?,
        not_after: get(row, "not_after")?,
        issued_at: get(row, "issued_at")?,
        revoked_at: get(row, "revoked_at")?,
        revocation_reason: reason
            .map(|reason| {
                RevocationReason::parse(&reason)
                    .ok_or_else(|| ServiceError::Storage(format!("unknown reason {reason:?}")))
            })
            .transpose()?,
    })
}

fn optional<T>(row: &PgRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    let text: Option<String> = get(row, column)?;
    text.map(|text| {
        parse(&text).ok_or_else(|| ServiceError::Storage(format!("unknown {column} {text:?}")))
    })
    .transpose()
}

fn profile_row(row: &PgRow) -> Result<ProfileRecord> {
    let definition: String = get(row, "definition")?;
    Ok(ProfileRecord {
        org_id: get(row, "org_id")?,
        environment: parsed(row, "environment", Environment::parse)?,
        name: parsed(row, "name", CertificateProfile::parse)?,
        definition: serde_json::from_str(&definition)
            .map_err(|err| ServiceError::Storage(format!("profile definition: {err}")))?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn record_row(row: &PgRow) -> Result<CaSigningRecord> {
    Ok(CaSigningRecord {
        id: get(row, "id")?,
        kind: parsed(row, "kind", CaSigningKind::parse)?,
        ca_id: get(row, "ca_id")?,
        environment: parsed(row, "environment", Environment::parse)?,
        device_id: get(row, "device_id")?,
        serial: get(row, "serial")?,
        profile: parsed(row, "profile", CertificateProfile::parse)?,
        actor: get(row, "actor")?,
        auth: parsed(row, "auth", AuthMethod::parse)?,
        mechanism: optional(row, "mechanism", Mechanism::parse)?,
        digest: get::<Option<Vec<u8>>>(row, "digest")?.map(Base64Bytes),
        signature: get::<Option<Vec<u8>>>(row, "signature")?.map(Base64Bytes),
        reason: optional(row, "reason", RevocationReason::parse)?,
        at: get(row, "at")?,
    })
}

fn insert_record(tx: &mut Tx<'_>, org_id: &str, record: &CaSigningRecord) -> Result<(), Failure> {
    tx.execute(
        "INSERT INTO ca_signing_records (id, org_id, environment, ca_id, kind, serial, device_id, \
         profile, actor, auth, mechanism, digest, signature, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        args![
            &record.id,
            org_id,
            record.environment.as_str(),
            &record.ca_id,
            record.kind.as_str(),
            &record.serial,
            &record.device_id,
            record.profile.as_str(),
            &record.actor,
            record.auth.as_str(),
            record.mechanism.map(|m| m.as_str().to_owned()),
            &record.digest.as_ref().map(|digest| digest.0.clone()),
            &record
                .signature
                .as_ref()
                .map(|signature| signature.0.clone()),
            record.reason.map(|r| r.as_str().to_owned()),
            record.at
        ],
    )
    .map_err(unique("CA signing record"))
    .map(drop)
}

fn all<T>(rows: Vec<PgRow>, map: fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}

fn insert_ca(tx: &mut Tx<'_>, ca: &CaRecord) -> Result<(), Failure> {
    tx.execute(
        "INSERT INTO certificate_authorities (id, org_id, environment, kind, name, algorithm, \
         sealed_private_key, certificate, crl_url, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        args![
            &ca.id,
            &ca.org_id,
            ca.environment.as_str(),
            ca.kind.as_str(),
            &ca.name,
            ca.algorithm.as_str(),
            &ca.sealed_private_key,
            &ca.certificate,
            &ca.crl_url,
            ca.created_at
        ],
    )
    .map_err(unique("certificate authority"))
    .map(drop)
}

const DEVICE_CERTS: &str = "SELECT * FROM device_certificates \
     WHERE org_id = $1 AND environment = $2 AND device_id = $3 ORDER BY issued_at DESC, serial";

impl DeviceStore for PgStore {
    fn create_cas(&self, root: &CaRecord, issuing: &CaRecord, audit: &AuditEvent) -> Result<()> {
        self.pg.write(|tx| {
            insert_ca(tx, root)?;
            insert_ca(tx, issuing)?;
            append(tx, audit).map(drop)
        })
    }

    fn cas(&self, org_id: &str, environment: Environment) -> Result<Vec<CaRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM certificate_authorities WHERE org_id = $1 AND environment = $2 \
                 ORDER BY CASE kind WHEN 'root' THEN 0 ELSE 1 END",
                args![org_id, environment.as_str()],
            )?,
            ca_row,
        )
    }

    fn ca_by_id(&self, id: &str) -> Result<Option<CaRecord>> {
        self.pg
            .row(
                "SELECT * FROM certificate_authorities WHERE id = $1",
                args![id],
            )?
            .as_ref()
            .map(ca_row)
            .transpose()
    }

    fn update_device(
        &self,
        org_id: &str,
        environment: Environment,
        device_id: &str,
        update: &mut DeviceUpdate<'_>,
    ) -> Result<()> {
        let lock_key = format!("{org_id}/{}/{device_id}", environment.as_str());
        self.pg.write(|tx| {
            tx.lock(LOCK_DEVICE, &lock_key)?;
            let rows = tx.rows(DEVICE_CERTS, args![org_id, environment.as_str(), device_id])?;
            let current = all(rows, cert_row)?;
            let change = update(&current)?;
            for cert in &change.updates {
                tx.execute(
                    "UPDATE device_certificates SET status = $2, revoked_at = $3, \
                     revocation_reason = $4 WHERE serial = $1",
                    args![
                        &cert.serial,
                        cert.status.as_str(),
                        &cert.revoked_at,
                        cert.revocation_reason.map(|r| r.as_str().to_owned())
                    ],
                )?;
            }
            if let Some(cert) = &change.insert {
                tx.execute(
                    "INSERT INTO device_certificates (serial, org_id, environment, device_id, \
                     ca_id, profile, public_key, certificate, status, not_before, not_after, \
                     issued_at, revoked_at, revocation_reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    args![
                        &cert.serial,
                        &cert.org_id,
                        cert.environment.as_str(),
                        &cert.device_id,
                        &cert.ca_id,
                        cert.profile.as_str(),
                        &cert.public_key,
                        &cert.certificate,
                        cert.status.as_str(),
                        cert.not_before,
                        cert.not_after,
                        cert.issued_at,
                        &cert.revoked_at,
                        cert.revocation_reason.map(|r| r.as_str().to_owned())
                    ],
                )
                .map_err(unique("certificate serial"))?;
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
        all(
            self.pg
                .rows(DEVICE_CERTS, args![org_id, environment.as_str(), device_id])?,
            cert_row,
        )
    }

    fn search_devices(
        &self,
        org_id: &str,
        environment: Environment,
        query: &str,
        limit: u32,
    ) -> Result<Vec<DeviceCertRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM device_certificates WHERE org_id = $1 AND environment = $2 \
                 AND device_id IN (SELECT DISTINCT device_id FROM device_certificates \
                   WHERE org_id = $1 AND environment = $2 AND strpos(device_id, $3) > 0 \
                   ORDER BY device_id LIMIT $4) \
                 ORDER BY device_id, issued_at DESC, serial",
                args![org_id, environment.as_str(), query, limit],
            )?,
            cert_row,
        )
    }

    fn revoked_certificates(&self, ca_id: &str) -> Result<Vec<DeviceCertRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM device_certificates WHERE ca_id = $1 AND status = 'revoked' \
                 ORDER BY revoked_at, serial",
                args![ca_id],
            )?,
            cert_row,
        )
    }

    fn certificate(&self, serial: &str) -> Result<Option<DeviceCertRecord>> {
        self.pg
            .row(
                "SELECT * FROM device_certificates WHERE serial = $1",
                args![serial],
            )?
            .as_ref()
            .map(cert_row)
            .transpose()
    }

    fn profiles(&self, org_id: &str, environment: Environment) -> Result<Vec<ProfileRecord>> {
        all(
            self.pg.rows(
                "SELECT * FROM certificate_profiles WHERE org_id = $1 AND environment = $2 \
                 ORDER BY name",
                args![org_id, environment.as_str()],
            )?,
            profile_row,
        )
    }

    fn put_profile(&self, profile: &ProfileRecord, audit: &AuditEvent) -> Result<()> {
        let definition = serde_json::to_string(&profile.definition)
            .map_err(|err| ServiceError::Storage(format!("profile definition: {err}")))?;
        self.pg.write(|tx| {
            tx.execute(
                "INSERT INTO certificate_profiles (org_id, environment, name, definition, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (org_id, environment, name) \
                 DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
                args![
                    &profile.org_id,
                    profile.environment.as_str(),
                    profile.name.as_str(),
                    &definition,
                    profile.created_at,
                    profile.updated_at
                ],
            )?;
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
        self.pg.write(|tx| {
            let deleted = tx.execute(
                "DELETE FROM certificate_profiles \
                 WHERE org_id = $1 AND environment = $2 AND name = $3",
                args![org_id, environment.as_str(), name],
            )?;
            if deleted == 0 {
                return Err(ServiceError::NotFound("profile of this organisation").into());
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
        all(
            self.pg.rows(
                "SELECT * FROM ca_signing_records WHERE org_id = $1 AND environment = $2 \
                 AND ($3::TEXT IS NULL OR device_id = $3) AND ($4::TEXT IS NULL OR serial = $4) \
                 ORDER BY at DESC, kind DESC, id DESC LIMIT $5",
                args![
                    org_id,
                    environment.as_str(),
                    &filter.device_id,
                    &filter.serial,
                    i64::from(filter.limit)
                ],
            )?,
            record_row,
        )
    }
}
