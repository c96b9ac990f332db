//! Whole-database copies between the two stores, table by table, column by column, as the schema
//! catalogues describe them: the PostgreSQL backup (one `REPEATABLE READ` snapshot written to a new
//! SQLite file) and its restore into an empty PostgreSQL database. Also the schema descriptions the
//! tests compare to prove both databases have the same tables and columns.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqliteValue;
use rusqlite::{Connection, OpenFlags};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::migrate::{latest_version, migrate_sqlite};
use super::postgres_conn::{Failure, Pg, Tx, Value};
use crate::error::{Result, ServiceError};

/// What a column holds, whatever each dialect calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Real,
    Text,
    Bytes,
}

/// A table's columns in declaration order.
pub type Columns = Vec<(String, ColumnKind)>;

/// Tables and their columns.
pub type Schema = BTreeMap<String, Columns>;

/// Every data table, parents before children (foreign keys hold at each step of a restore).
/// `schema_migrations` is not copied: each side records its own migrations.
pub const TABLES: &[&str] = &[
    "organisations",
    "users",
    "credentials",
    "keys",
    "signing_requests",
    "audit_records",
    "audit_checkpoints",
    "service_secrets",
    "rate_buckets",
    "certificate_authorities",
    "device_certificates",
    "certificate_profiles",
    "ca_signing_records",
];

/// Rows per `FETCH` from the backup cursor and per multi-row `INSERT` of a restore.
const BATCH: usize = 500;

fn kind_of(declared: &str) -> Result<ColumnKind> {
    match declared.to_ascii_lowercase().as_str() {
        "bigint" | "integer" => Ok(ColumnKind::Integer),
        "double precision" | "real" => Ok(ColumnKind::Real),
        "text" => Ok(ColumnKind::Text),
        "bytea" | "blob" => Ok(ColumnKind::Bytes),
        other => Err(ServiceError::Storage(format!(
            "unexpected column type {other}"
        ))),
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn sqlite_schema(conn: &Connection) -> Result<Schema> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(ServiceError::storage)?;
    let mut schema = Schema::new();
    for table in tables {
        let columns: Vec<(String, String)> = conn
            .prepare(&format!("PRAGMA table_info({})", quoted(&table)))
            .and_then(|mut stmt| {
                stmt.query_map([], |row| Ok((row.get("name")?, row.get("type")?)))?
                    .collect()
            })
            .map_err(ServiceError::storage)?;
        let columns = columns
            .into_iter()
            .map(|(name, declared)| Ok((name, kind_of(&declared)?)))
            .collect::<Result<_>>()?;
        schema.insert(table, columns);
    }
    Ok(schema)
}

fn pg_schema_rows(rows: Vec<PgRow>) -> Result<Schema> {
    let mut schema = Schema::new();
    for row in rows {
        let get =
            |column: &str| -> Result<String> { row.try_get(column).map_err(ServiceError::storage) };
        schema
            .entry(get("table_name")?)
            .or_default()
            .push((get("column_name")?, kind_of(&get("data_type")?)?));
    }
    Ok(schema)
}

const PG_COLUMNS: &str =
    "SELECT c.table_name::TEXT AS table_name, c.column_name::TEXT AS column_name,
        c.data_type::TEXT AS data_type
    FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name, c.ordinal_position";

pub(super) fn pg_schema(pg: &Pg) -> Result<Schema> {
    pg_schema_rows(pg.rows(PG_COLUMNS, Vec::new())?)
}

/// The columns of every table in [`TABLES`]; fails if the database has a table the copy would miss.
fn copy_plan(schema: &Schema) -> Result<Vec<(&'static str, Columns)>> {
    if let Some(extra) = schema
        .keys()
        .find(|t| *t != "schema_migrations" && !TABLES.contains(&t.as_str()))
    {
        return Err(ServiceError::Storage(format!(
            "table {extra} is not known to backup and restore"
        )));
    }
    TABLES
        .iter()
        .map(|table| {
            let columns = schema
                .get(*table)
                .cloned()
                .ok_or_else(|| ServiceError::Storage(format!("table {table} is missing")))?;
            Ok((*table, columns))
        })
        .collect()
}

fn sqlite_versions(conn: &Connection) -> Result<Vec<i64>> {
    conn.prepare("SELECT version FROM schema_migrations ORDER BY version")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(ServiceError::storage)
}

fn pg_versions(tx: &mut Tx<'_>) -> Result<Vec<i64>, Failure> {
    let rows = tx.rows(
        "SELECT version FROM schema_migrations ORDER BY version",
        Vec::new(),
    )?;
    Ok(rows
        .iter()
        .map(|row| row.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?)
}

fn pg_to_sqlite(row: &PgRow, column: &str, kind: ColumnKind) -> Result<SqliteValue, sqlx::Error> {
    Ok(match kind {
        ColumnKind::Integer => row
            .try_get::<Option<i64>, _>(column)?
            .map(SqliteValue::Integer),
        ColumnKind::Real => row
            .try_get::<Option<f64>, _>(column)?
            .map(SqliteValue::Real),
        ColumnKind::Text => row
            .try_get::<Option<String>, _>(column)?
            .map(SqliteValue::Text),
        ColumnKind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(column)?
            .map(SqliteValue::Blob),
    }
    .unwrap_or(SqliteValue::Null))
}

fn sqlite_to_pg(value: SqliteValue, kind: ColumnKind) -> Result<Value> {
    let mismatch = || ServiceError::Storage(format!("a value does not fit a {kind:?} column"));
    Ok(match (kind, value) {
        (ColumnKind::Integer, SqliteValue::Null) => Value::Int(None),
        (ColumnKind::Integer, SqliteValue::Integer(v)) => Value::Int(Some(v)),
        (ColumnKind::Real, SqliteValue::Real(v)) => Value::Float(v),
        (ColumnKind::Real, SqliteValue::Integer(v)) => Value::Float(v as f64),
        (ColumnKind::Text, SqliteValue::Null) => Value::Text(None),
        (ColumnKind::Text, SqliteValue::Text(v)) => Value::Text(Some(v)),
        (ColumnKind::Bytes, SqliteValue::Null) => Value::Bytes(None),
        (ColumnKind::Bytes, SqliteValue::Blob(v)) => Value::Bytes(Some(v)),
        _ => return Err(mismatch()),
    })
}

/// A file created with mode 0600 that does not exist yet.
fn create_private(path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|err| ServiceError::Io(format!("creating {}: {err}", path.display())))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Writes the whole PostgreSQL database, as one snapshot, to a new SQLite file at `path` (mode 0600).
/// The file appears only when complete; `path` is never overwritten.
pub(super) fn snapshot_to_sqlite(pg: &Pg, path: &Path) -> Result<()> {
    if path.exists() {
        return Err(ServiceError::Io(format!(
            "{} already exists",
            path.display()
        )));
    }
    let partial = partial_path(path);
    create_private(&partial)?;
    let written = write_snapshot(pg, &partial).and_then(|()| {
        // A hard link never replaces an existing file, unlike rename.
        std::fs::hard_link(&partial, path)
            .map_err(|err| ServiceError::Io(format!("creating {}: {err}", path.display())))
    });
    let _ = std::fs::remove_file(&partial);
    written
}

fn write_snapshot(pg: &Pg, file: &Path) -> Result<()> {
    let mut conn = Connection::open(file).map_err(ServiceError::storage)?;
    migrate_sqlite(&mut conn, crate::util::now())?;
    let plan = copy_plan(&pg_schema(pg)?)?;
    let target_versions = sqlite_versions(&conn)?;
    let sqlite = conn.transaction().map_err(ServiceError::storage)?;
    pg.snapshot(|tx| {
        if pg_versions(tx)? != target_versions {
            return Err(ServiceError::Storage(
                "the database's schema version differs from this build's".into(),
            )
            .into());
        }
        for (table, columns) in &plan {
            copy_out(tx, &sqlite, table, columns)?;
        }
        Ok(())
    })?;
    sqlite.commit().map_err(ServiceError::storage)?;
    conn.close().map_err(|(_, err)| ServiceError::storage(err))
}

fn copy_out(
    tx: &mut Tx<'_>,
    sqlite: &Connection,
    table: &str,
    columns: &[(String, ColumnKind)],
) -> Result<(), Failure> {
    let names: Vec<String> = columns.iter().map(|(name, _)| quoted(name)).collect();
    let names = names.join(", ");
    // One cursor name per table: sqlx caches a statement's row description by its text, so a `FETCH`
    // text shared by two tables would decode the second with the first one's columns.
    let cursor = quoted(&format!("cryptera_backup_{table}"));
    tx.execute(
        format!(
            "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {names} FROM {}",
            quoted(table)
        ),
        Vec::new(),
    )?;
    let placeholders = vec!["?"; columns.len()].join(", ");
    let mut insert = sqlite
        .prepare(&format!(
            "INSERT INTO {} ({names}) VALUES ({placeholders})",
            quoted(table)
        ))
        .map_err(ServiceError::storage)?;
    loop {
        let rows = tx.rows(format!("FETCH {BATCH} FROM {cursor}"), Vec::new())?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let values = columns
                .iter()
                .map(|(name, kind)| pg_to_sqlite(row, name, *kind))
                .collect::<Result<Vec<_>, _>>()?;
            insert
                .execute(rusqlite::params_from_iter(values))
                .map_err(ServiceError::storage)?;
        }
    }
    tx.execute(format!("CLOSE {cursor}"), Vec::new())?;
    Ok(())
}

/// Copies a SQLite database (a backup written by [`snapshot_to_sqlite`], or a service's own file) into
/// an empty PostgreSQL database, in one transaction. Returns the rows copied per table.
pub(super) fn restore_from_sqlite(pg: &Pg, file: &Path) -> Result<Vec<(&'static str, usize)>> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|err| ServiceError::Io(format!("opening {}: {err}", file.display())))?;
    let versions = sqlite_versions(&conn)?;
    if versions.last() != Some(&latest_version()) {
        return Err(ServiceError::InvalidRequest(format!(
            "{} is at schema version {:?}, this build at {}: open it once with `cryptera-backend` \
             (a copy, in a data directory) to migrate it first",
            file.display(),
            versions.last(),
            latest_version()
        )));
    }
    let plan = copy_plan(&sqlite_schema(&conn)?)?;
    if copy_plan(&pg_schema(pg)?)? != plan {
        return Err(ServiceError::Storage(
            "the two databases' tables differ".into(),
        ));
    }
    pg.write(|tx| {
        for table in TABLES {
            let used = tx.row(
                format!("SELECT 1 AS used FROM {} LIMIT 1", quoted(table)),
                Vec::new(),
            )?;
            if used.is_some() {
                return Err(ServiceError::InvalidRequest(format!(
                    "restore needs an empty database, but {table} has rows"
                ))
                .into());
            }
        }
        let mut copied = Vec::with_capacity(plan.len());
        for (table, columns) in &plan {
            copied.push((*table, copy_in(tx, &conn, table, columns)?));
        }
        Ok(copied)
    })
}

fn copy_in(
    tx: &mut Tx<'_>,
    sqlite: &Connection,
    table: &str,
    columns: &[(String, ColumnKind)],
) -> Result<usize, Failure> {
    let names: Vec<String> = columns.iter().map(|(name, _)| quoted(name)).collect();
    let names = names.join(", ");
    let mut select = sqlite
        .prepare(&format!("SELECT {names} FROM {}", quoted(table)))
        .map_err(ServiceError::storage)?;
    let mut rows = select.query([]).map_err(ServiceError::storage)?;
    let mut batch: Vec<Value> = Vec::new();
    let mut count = 0;
    loop {
        let row = rows.next().map_err(ServiceError::storage)?;
        if let Some(row) = row {
            for (index, (_, kind)) in columns.iter().enumerate() {
                let value: SqliteValue = row.get(index).map_err(ServiceError::storage)?;
                batch.push(sqlite_to_pg(value, *kind)?);
            }
            count += 1;
        }
        let full = batch.len() >= BATCH * columns.len();
        if (row.is_none() || full) && !batch.is_empty() {
            let rows_in_batch = batch.len() / columns.len();
            let tuples: Vec<String> = (0..rows_in_batch)
                .map(|r| {
                    let params: Vec<String> = (1..=columns.len())
                        .map(|c| format!("${}", r * columns.len() + c))
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            tx.execute(
                format!(
                    "INSERT INTO {} ({names}) VALUES {}",
                    quoted(table),
                    tuples.join(", ")
                ),
                std::mem::take(&mut batch),
            )?;
        }
        if row.is_none() {
            return Ok(count);
        }
    }
}
