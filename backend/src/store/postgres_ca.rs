//! The PostgreSQL side of [`DeviceStore`]: the same tables and encodings as [`super::sqlite_ca`].
//! A device's transaction holds an advisory lock on (organisation, environment, device id), so two
//! enrolments of a device that has no row yet still run one after the other.

use cryptera_proto::devices::{CaKind, CertificateProfile, CertificateStatus, RevocationReason};
use cryptera_proto::keys::KeyAlgorithm;
use cryptera_proto::Environment;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::devices::{CaRecord, DeviceCertRecord, DeviceStore, DeviceUpdate};
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
}
