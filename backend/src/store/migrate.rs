//! Versioned schema migrations: one ordered list that both databases run, recorded the same way in a
//! `schema_migrations` table (version, name, time applied), and the runner for each database.
//!
//! Each migration is portable SQL (`migrations/NNNN_name.sql`, with `{blob}` standing for the dialect's
//! byte-string type) plus, only where syntax must differ, a per-dialect part (`.sqlite.sql`,
//! `.postgres.sql`: the append-only triggers). A migration and its `schema_migrations` row commit in one
//! transaction, so a crash leaves a database at one version or the next, never between. A database
//! recording a version this build does not know is refused rather than written to.
//!
//! SQLite files written before migrations existed (`PRAGMA user_version = 1`, no `schema_migrations`)
//! get their old idempotent schema re-applied, are recorded as being at migration 1 (which is that
//! schema) and then move forward like any other database.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::postgres_conn::{args, Pg, LOCK_MIGRATIONS};
use crate::error::{Result, ServiceError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    portable: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    /// The statements of this migration for `dialect`.
    pub fn sql(&self, dialect: Dialect) -> String {
        let (blob, own) = match dialect {
            Dialect::Sqlite => ("BLOB", self.sqlite),
            Dialect::Postgres => ("BYTEA", self.postgres),
        };
        format!("{}\n{own}", self.portable.replace("{blob}", blob))
    }
}

/// Every migration, in order. Append only: a released migration is never edited.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        portable: include_str!("migrations/0001_initial.sql"),
        sqlite: include_str!("migrations/0001_initial.sqlite.sql"),
        postgres: include_str!("migrations/0001_initial.postgres.sql"),
    },
    Migration {
        version: 2,
        name: "window_index",
        portable: include_str!("migrations/0002_window_index.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 3,
        name: "devices",
        portable: include_str!("migrations/0003_devices.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 4,
        name: "profiles_ca_records",
        portable: include_str!("migrations/0004_profiles_ca_records.sql"),
        sqlite: "",
        postgres: "",
    },
];

/// The bookkeeping table, identical on both databases.
pub const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// The schema SQLite databases had before migrations; see the module comment.
const LEGACY_SQLITE_SCHEMA: &str = include_str!("migrations/legacy.sqlite.sql");

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations still to apply to a database that recorded `applied` (ascending). Refuses a database
/// whose record is not a prefix of [`MIGRATIONS`]: newer than this build, or with a gap.
pub fn pending(applied: &[i64]) -> Result<&'static [Migration]> {
    if let Some(newest) = applied.last().filter(|v| **v > latest_version()) {
        return Err(ServiceError::Storage(format!(
            "the database is at schema version {newest}, newer than this build knows ({}); \
             run a newer cryptera-backend",
            latest_version()
        )));
    }
    let known: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
    if !known.starts_with(applied) {
        return Err(ServiceError::Storage(format!(
            "the database records schema versions {applied:?}, which is not a prefix of {known:?}"
        )));
    }
    Ok(&MIGRATIONS[applied.len()..])
}

/// Brings a SQLite database up to [`latest_version`] in one `IMMEDIATE` transaction (so two processes
/// opening one new file at once migrate it once).
pub fn migrate_sqlite(conn: &mut Connection, now: i64) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(ServiceError::storage)?;
    let bookkept = table_exists(&tx, "schema_migrations")?;
    if !bookkept {
        let user_version: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(ServiceError::storage)?;
        let legacy = user_version == 1 || table_exists(&tx, "organisations")?;
        tx.execute_batch(CREATE_SCHEMA_MIGRATIONS)
            .map_err(ServiceError::storage)?;
        if legacy {
            tx.execute_batch(LEGACY_SQLITE_SCHEMA)
                .map_err(ServiceError::storage)?;
            record_sqlite(&tx, &MIGRATIONS[0], now)?;
        }
    }
    let applied: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .map_err(ServiceError::storage)?;
        let versions = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(ServiceError::storage)?;
        versions
    };
    for migration in pending(&applied)? {
        tx.execute_batch(&migration.sql(Dialect::Sqlite))
            .map_err(|err| {
                ServiceError::Storage(format!("migration {}: {err}", migration.version))
            })?;
        record_sqlite(&tx, migration, now)?;
    }
    // Kept for tools that look at it; `schema_migrations` is what the service reads.
    tx.execute_batch(&format!("PRAGMA user_version = {}", latest_version()))
        .map_err(ServiceError::storage)?;
    tx.commit().map_err(ServiceError::storage)
}

/// Brings a PostgreSQL database up to [`latest_version`] in one transaction, under an advisory lock so
/// processes starting together migrate once.
pub(super) fn migrate_postgres(pg: &Pg, now: i64) -> Result<()> {
    pg.write(|tx| {
        tx.lock(LOCK_MIGRATIONS, "schema")?;
        tx.batch(CREATE_SCHEMA_MIGRATIONS)?;
        let applied = tx
            .rows(
                "SELECT version FROM schema_migrations ORDER BY version",
                Vec::new(),
            )?
            .iter()
            .map(|row| sqlx::Row::try_get::<i64, _>(row, "version"))
            .collect::<Result<Vec<_>, _>>()?;
        for migration in pending(&applied)? {
            tx.batch(migration.sql(Dialect::Postgres)).map_err(|err| {
                ServiceError::Storage(format!("migration {}: {err}", migration.version))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                args![migration.version, migration.name, now],
            )?;
        }
        Ok(())
    })
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(ServiceError::storage)
}

fn record_sqlite(conn: &Connection, migration: &Migration, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![migration.version, migration.name, now],
    )
    .map(drop)
    .map_err(ServiceError::storage)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn versions_ascend_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1);
        }
    }

    #[test]
    fn pending_refuses_newer_or_gapped_databases() {
        assert_eq!(pending(&[]).unwrap().len(), MIGRATIONS.len());
        assert!(pending(&[1]).unwrap().iter().all(|m| m.version > 1));
        assert!(pending(&[latest_version() + 1]).is_err());
        assert!(pending(&[2]).is_err());
    }

    #[test]
    fn placeholders_are_replaced_for_both_dialects() {
        for migration in MIGRATIONS {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                assert!(!migration.sql(dialect).contains("{blob}"));
            }
        }
    }

    #[test]
    fn a_legacy_database_keeps_its_rows_and_moves_forward() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(LEGACY_SQLITE_SCHEMA).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO organisations (id, name, trial_expires_at, created_at) VALUES ('org_1', 'acme', NULL, 5);",
        )
        .unwrap();
        migrate_sqlite(&mut conn, 10).unwrap();
        migrate_sqlite(&mut conn, 11).unwrap();
        let name: String = conn
            .query_row(
                "SELECT name FROM organisations WHERE id = 'org_1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(name, "acme");
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
        let index: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'signing_requests_window_of'",
                [],
                |row| row.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(index, Some(1), "migration 2 ran on the legacy file");
        assert!(table_exists(&conn, "rate_buckets").unwrap());
    }
}
