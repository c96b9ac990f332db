//! The same migrations give both stores the same tables and columns, and a SQLite file written before
//! versioned migrations (`PRAGMA user_version = 1`) opens without loss and ends like a new one.

#![allow(clippy::unwrap_used)]

mod common;

use cryptera_backend::store::postgres::PgStore;
use cryptera_backend::store::sqlite::SqliteStore;
use cryptera_backend::store::Store;

#[test]
fn a_legacy_sqlite_file_is_migrated_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    {
        let conn = rusqlite::Connection::open(&legacy).unwrap();
        conn.execute_batch(include_str!("../src/store/migrations/legacy.sqlite.sql"))
            .unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO organisations (id, name, trial_expires_at, created_at) VALUES ('org_1', 'acme', NULL, 5);
             INSERT INTO audit_records VALUES ('org_1', 1, 5, 'svc', 'org.create', 'org_1', 'ok', '{}', 'p', 'h');",
        )
        .unwrap();
    }
    let migrated = SqliteStore::open(&legacy).unwrap();
    let fresh = SqliteStore::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(migrated.schema().unwrap(), fresh.schema().unwrap());
    assert_eq!(migrated.org_by_name("acme").unwrap().unwrap().id, "org_1");
    assert_eq!(
        migrated.audit_head("org_1").unwrap(),
        Some((1, "h".to_owned()))
    );
    drop(migrated);
    // Opening again is a no-op.
    let again = SqliteStore::open(&legacy).unwrap();
    assert_eq!(again.organisation_ids().unwrap(), ["org_1"]);
}

#[test]
fn postgres_and_sqlite_have_the_same_tables_and_columns() {
    let Some(server) = common::postgres_server() else {
        eprintln!(
            "skipped: set {} to compare with PostgreSQL",
            common::POSTGRES_VARIABLE
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cryptera.db")).unwrap();
    let url = common::fresh_postgres_database(&server);
    let postgres = PgStore::open(&url).unwrap();
    let expected = sqlite.schema().unwrap();
    assert!(expected.contains_key("schema_migrations"));
    assert_eq!(postgres.schema().unwrap(), expected);
    drop(postgres);
    // A second open (another process starting) finds nothing to migrate.
    let again = PgStore::open(&url).unwrap();
    assert_eq!(again.schema().unwrap(), expected);
    assert!(again.ping().is_ok());
}
