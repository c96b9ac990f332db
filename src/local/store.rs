//! The SQLite database of one local token: token metadata, wrapped token keys, PIN failure counters
//! and object records. Every change is one transaction (WAL, synchronous=FULL), so a process killed at
//! any instant leaves the old or the new state; other processes see changes through `data_version`.

use crate::error::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const FORMAT_VERSION: i64 = 1;

/// One stored object row.
#[derive(Clone, Debug)]
pub struct Row {
    pub uid: i64,
    pub public: Vec<u8>,
    pub sealed: Option<Vec<u8>>,
    pub private: bool,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    uid INTEGER PRIMARY KEY,
    private INTEGER NOT NULL,
    public BLOB NOT NULL,
    sealed BLOB
);
";

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Creates a new, empty token database at `path`; fails if the file exists.
    pub fn create(path: &Path, meta: &[(&str, Vec<u8>)]) -> Result<Store> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        set_private_mode(&mut options);
        options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::SessionExists,
            _ => Error::Device(format!("cannot create {}: {e}", path.display())),
        })?;
        let mut store = Store::open(path)?;
        store.conn.execute_batch(SCHEMA)?;
        let tx = store
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO meta VALUES ('format', ?1)",
            params![FORMAT_VERSION.to_le_bytes().to_vec()],
        )?;
        for (name, value) in meta {
            tx.execute(
                "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
                params![name, value],
            )?;
        }
        tx.commit()?;
        Ok(store)
    }

    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::TokenNotRecognized(format!("{}: {e}", path.display())))?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes whenever another connection commits: the cheap check behind the object cache.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn meta_u32(&self, name: &str) -> Result<u32> {
        Ok(self
            .meta(name)?
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0))
    }

    /// Writes metadata entries (`None` deletes) in one transaction.
    pub fn set_meta(&mut self, entries: &[(&str, Option<Vec<u8>>)]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_meta(&tx, entries)?;
        tx.commit()?;
        Ok(())
    }

    /// Adds `delta` to a counter and returns the new value, atomically across processes.
    pub fn bump_counter(&mut self, name: &str, reset: bool) -> Result<u32> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: u32 = tx
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        let next = if reset { 0 } else { current.saturating_add(1) };
        tx.execute(
            "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
            params![name, next.to_le_bytes().to_vec()],
        )?;
        tx.commit()?;
        Ok(next)
    }

    pub fn rows(&self) -> Result<Vec<Row>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT uid, private, public, sealed FROM objects")?;
        let rows = stmt.query_map([], |r| {
            Ok(Row {
                uid: r.get(0)?,
                private: r.get::<_, i64>(1)? != 0,
                public: r.get(2)?,
                sealed: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn put(&mut self, row: &Row) -> Result<()> {
        insert_row(&self.conn, row)
    }

    /// Replaces several rows in one transaction (re-sealing after a token key change, key pairs).
    pub fn put_all(&mut self, rows: &[Row]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for row in rows {
            insert_row(&tx, row)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete(&mut self, uid: i64) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM objects WHERE uid = ?1", params![uid])?
            > 0)
    }

    /// Removes every object and replaces the metadata: `C_InitToken` on an existing token.
    pub fn reset(&mut self, meta: &[(&str, Option<Vec<u8>>)]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM objects", [])?;
        write_meta(&tx, meta)?;
        tx.commit()?;
        Ok(())
    }
}

fn write_meta(conn: &Connection, entries: &[(&str, Option<Vec<u8>>)]) -> Result<()> {
    for (name, value) in entries {
        match value {
            Some(value) => conn.execute(
                "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
                params![name, value],
            )?,
            None => conn.execute("DELETE FROM meta WHERE name = ?1", params![name])?,
        };
    }
    Ok(())
}

fn insert_row(conn: &Connection, row: &Row) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO objects (uid, private, public, sealed) VALUES (?1, ?2, ?3, ?4)",
        params![row.uid, row.private as i64, row.public, row.sealed],
    )?;
    Ok(())
}

/// Creates the store directory readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::Device(format!("cannot create {}: {e}", dir.display())))
}

fn set_private_mode(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
}
