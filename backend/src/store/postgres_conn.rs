//! Synchronous statements and transactions on PostgreSQL for the [`Store`](super::Store) methods
//! (called on tokio's blocking pool, from the CLI or from tests), over the connections of
//! `postgres_pool.rs`.
//!
//! Statements travel with owned parameters ([`Value`]) and `'static` SQL, so the closures the trait
//! takes (`update`, `finish`: neither `Send` nor `'static`) keep running on the caller's thread between
//! statements while the transaction stays open. [`Pg::write`] runs a transaction body, commits, and
//! retries the whole body (never a part of it) after a deadlock, a serialization failure or a lost
//! uniqueness race, a bounded number of times: a failed attempt was rolled back, so nothing is applied
//! twice.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::Postgres;

use super::postgres_pool::{Lease, Pool};

use crate::error::{Result, ServiceError};

/// Attempts of one write transaction before giving up.
const MAX_ATTEMPTS: u32 = 8;

/// Advisory lock classes (the first key of `pg_advisory_xact_lock(int, int)`).
pub(super) const LOCK_AUDIT_HEAD: i32 = 0x4372_0001;
pub(super) const LOCK_IDEMPOTENCY: i32 = 0x4372_0002;
pub(super) const LOCK_MIGRATIONS: i32 = 0x4372_0003;

/// An owned statement parameter. Deliberately not `Debug`: values include sealed keys and hashes.
#[derive(Clone)]
pub(super) enum Value {
    Int(Option<i64>),
    Float(f64),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Texts(Vec<String>),
    Floats(Vec<f64>),
}

macro_rules! value_from {
    ($($ty:ty => |$v:ident| $make:expr;)*) => {
        $(impl From<$ty> for Value {
            fn from($v: $ty) -> Self {
                $make
            }
        })*
    };
}

value_from! {
    i64 => |v| Value::Int(Some(v));
    Option<i64> => |v| Value::Int(v);
    &Option<i64> => |v| Value::Int(*v);
    u32 => |v| Value::Int(Some(i64::from(v)));
    bool => |v| Value::Int(Some(i64::from(v)));
    f64 => |v| Value::Float(v);
    &str => |v| Value::Text(Some(v.to_owned()));
    String => |v| Value::Text(Some(v));
    &String => |v| Value::Text(Some(v.clone()));
    Option<String> => |v| Value::Text(v);
    &Option<String> => |v| Value::Text(v.clone());
    &[u8] => |v| Value::Bytes(Some(v.to_vec()));
    &Vec<u8> => |v| Value::Bytes(Some(v.clone()));
    Vec<u8> => |v| Value::Bytes(Some(v));
    &Option<Vec<u8>> => |v| Value::Bytes(v.clone());
    Vec<String> => |v| Value::Texts(v);
    Vec<f64> => |v| Value::Floats(v);
}

/// `args![a, b, ...]`: the parameters `$1, $2, ...` of a statement.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::store::postgres_conn::Value::from($value)),*]
    };
}
pub(super) use args;

fn bind(query: Query<'_, Postgres, PgArguments>, value: Value) -> Query<'_, Postgres, PgArguments> {
    match value {
        Value::Int(v) => query.bind(v),
        Value::Float(v) => query.bind(v),
        Value::Text(v) => query.bind(v),
        Value::Bytes(v) => query.bind(v),
        Value::Texts(v) => query.bind(v),
        Value::Floats(v) => query.bind(v),
    }
}

/// SQL text: usually a literal, built only from catalog names (quoted) where a table is a parameter.
pub(super) type Sql = Cow<'static, str>;

fn statement(sql: &str, args: Vec<Value>) -> Query<'_, Postgres, PgArguments> {
    args.into_iter().fold(sqlx::query(sql), bind)
}

/// Why a transaction body stopped: try the whole transaction again, or fail with this error.
pub(super) enum Failure {
    Retry(String),
    Fail(ServiceError),
}

impl From<ServiceError> for Failure {
    fn from(err: ServiceError) -> Self {
        Self::Fail(err)
    }
}

/// SQLSTATEs after which the transaction was rolled back and running it again is safe.
fn retryable(err: &sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|db| db.code());
    matches!(code.as_deref(), Some("40001" | "40P01"))
}

/// The database is out of reach rather than refusing the statement: the connection failed below SQL
/// (refused, reset, closed) or the server said it is shutting down, starting up or out of connections
/// (SQLSTATE class 08, 57P01–57P03, 53300). Nothing uncommitted survives it, and the request may
/// succeed in a moment: `503`, not `500`.
pub(super) fn out_of_reach(err: &sqlx::Error) -> bool {
    match err.as_database_error() {
        None => !matches!(
            err,
            sqlx::Error::RowNotFound
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::TypeNotFound { .. }
                | sqlx::Error::Configuration(_)
        ),
        Some(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
    }
}

/// A storage error as the client should see it: [`ServiceError::Unavailable`] (logged here, with
/// its cause) when the database is out of reach, an internal error otherwise.
pub(super) fn storage_error(err: sqlx::Error) -> ServiceError {
    if out_of_reach(&err) {
        tracing::warn!(error = %err, "the database is unreachable; answering 503");
        ServiceError::Unavailable
    } else {
        ServiceError::storage(err)
    }
}

/// For statements before COMMIT: besides conflicts, a connection that died (e.g. the database
/// restarted) is worth another attempt on a fresh one, since nothing uncommitted survives it.
impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        if retryable(&err) || out_of_reach(&err) {
            Self::Retry(err.to_string())
        } else {
            Self::Fail(ServiceError::storage(err))
        }
    }
}

/// For COMMIT: a conflict rolled the transaction back (retry), but a connection lost during COMMIT
/// leaves its outcome unknown, so that fails the request (`500`, not `503`: it may have been applied)
/// rather than risking a second application.
fn commit_failure(err: sqlx::Error) -> Failure {
    if retryable(&err) {
        Failure::Retry(err.to_string())
    } else {
        Failure::Fail(ServiceError::storage(err))
    }
}

/// Maps a uniqueness violation to `AlreadyExists(what)`, anything else as usual.
pub(super) fn unique(what: &'static str) -> impl Fn(sqlx::Error) -> Failure {
    move |err| match err.as_database_error() {
        Some(db) if db.is_unique_violation() => Failure::Fail(ServiceError::AlreadyExists(what)),
        _ => Failure::from(err),
    }
}

/// Maps a uniqueness violation to a retry: a concurrent transaction inserted the same row first, and
/// the next attempt will see it.
pub(super) fn race(err: sqlx::Error) -> Failure {
    match err.as_database_error() {
        Some(db) if db.is_unique_violation() => Failure::Retry(err.to_string()),
        _ => Failure::from(err),
    }
}

/// Where the pool is, for messages: host, port and database, never the user or password.
pub(super) fn describe(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

pub(super) struct Pg {
    pool: Pool,
    pub(super) location: String,
}

impl Pg {
    /// Parses `url` and connects (one connection is made at once, so a wrong URL fails here).
    pub(super) fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(|_| {
            ServiceError::InvalidRequest(
                "the database URL is not a valid postgres://user:password@host:port/database URL"
                    .into(),
            )
        })?;
        let options = options
            .application_name("cryptera-backend")
            // A process that dies mid-transaction must not hold row locks until TCP notices.
            .options([
                ("idle_in_transaction_session_timeout", "60s"),
                // Notices such as "already exists, skipping" are not worth a log line each.
                ("client_min_messages", "warning"),
            ]);
        let location = describe(&options);
        let pool = Pool::connect(options).map_err(|err| match err {
            ServiceError::Storage(cause) => {
                ServiceError::Storage(format!("connecting to {location}: {cause}"))
            }
            // At start, "unavailable" would say less than the cause logged just before.
            ServiceError::Unavailable => {
                ServiceError::Storage(format!("connecting to {location}: unreachable"))
            }
            other => other,
        })?;
        Ok(Self { pool, location })
    }

    /// One statement outside any transaction (a read); its rows. A connection found dead (e.g. after
    /// a database restart) is dropped and the read tried once more on another: it changed nothing.
    pub(super) fn rows(&self, sql: impl Into<Sql>, args: Vec<Value>) -> Result<Vec<PgRow>> {
        let sql = sql.into();
        let mut last = None;
        for _ in 0..2 {
            let (sql, args) = (sql.clone(), args.clone());
            let result = self.pool.acquire()?.step(|mut conn| async move {
                let result = statement(&sql, args).fetch_all(&mut conn).await;
                (conn, result)
            });
            match result {
                Err(err) if out_of_reach(&err) => last = Some(err),
                other => return other.map_err(ServiceError::storage),
            }
        }
        Err(storage_error(last.unwrap_or(sqlx::Error::PoolClosed)))
    }

    /// One statement outside any transaction; its first row, if any.
    pub(super) fn row(&self, sql: impl Into<Sql>, args: Vec<Value>) -> Result<Option<PgRow>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// Starts a transaction with `statement`; a dead connection is replaced (nothing ran on it yet).
    fn begin(&self, statement: &'static str) -> Result<Tx<'_>> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut tx = Tx {
                conn: self.pool.acquire()?,
                open: false,
                failed: false,
            };
            match tx.execute(statement, Vec::new()) {
                Ok(_) => {
                    tx.open = true;
                    return Ok(tx);
                }
                Err(err) if out_of_reach(&err) && attempts < 3 => continue,
                Err(err) => return Err(storage_error(err)),
            }
        }
    }

    /// Runs `body` in a transaction and commits; see the module comment for retries. `body` returning
    /// an error rolls back.
    pub(super) fn write<T>(
        &self,
        mut body: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        let mut last = String::new();
        let mut lost_database = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut tx = self.begin("BEGIN")?;
            match body(&mut tx) {
                Ok(value) => match tx.commit() {
                    Ok(()) => return Ok(value),
                    Err(Failure::Retry(reason)) => last = reason,
                    Err(Failure::Fail(err)) => return Err(err),
                },
                Err(Failure::Retry(reason)) => {
                    // A connection lost inside the body marks it; the next attempt gets a new one.
                    lost_database = tx.conn.is_broken();
                    tx.rollback();
                    last = reason;
                }
                Err(Failure::Fail(err)) => {
                    tx.rollback();
                    return Err(err);
                }
            }
            tracing::debug!(attempt, reason = %last, "retrying a database transaction");
            // Spread racing writers apart a little more each time.
            std::thread::sleep(Duration::from_millis(u64::from(attempt) * 3));
        }
        if lost_database {
            tracing::warn!(reason = %last, "the database stayed unreachable; answering 503");
            return Err(ServiceError::Unavailable);
        }
        Err(ServiceError::Storage(format!(
            "transaction still conflicting after {MAX_ATTEMPTS} attempts: {last}"
        )))
    }

    /// Runs `body` in one `REPEATABLE READ, READ ONLY` transaction: every statement sees the same
    /// snapshot, while other processes keep writing.
    pub(super) fn snapshot<T>(
        &self,
        body: impl FnOnce(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        let mut tx = self.begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let outcome = body(&mut tx);
        tx.rollback();
        outcome.map_err(|failure| match failure {
            Failure::Retry(reason) => ServiceError::Storage(reason),
            Failure::Fail(err) => err,
        })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.pool.close_idle();
    }
}

/// An open transaction on a leased connection, used synchronously. Dropped without commit (only after
/// a panic in a body), the connection is closed, which rolls it back.
pub(super) struct Tx<'a> {
    conn: Lease<'a>,
    /// Between a successful BEGIN and COMMIT/ROLLBACK.
    open: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and COMMIT would quietly roll back.
    failed: bool,
}

impl Tx<'_> {
    fn step<T, F, Fut>(&mut self, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: FnOnce(PgConnection) -> Fut,
        Fut: Future<Output = (PgConnection, Result<T, sqlx::Error>)> + Send + 'static,
    {
        let result = self.conn.step(work);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    pub(super) fn rows(
        &mut self,
        sql: impl Into<Sql>,
        args: Vec<Value>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let sql = sql.into();
        self.step(|mut conn| async move {
            let result = statement(&sql, args).fetch_all(&mut conn).await;
            (conn, result)
        })
    }

    pub(super) fn row(
        &mut self,
        sql: impl Into<Sql>,
        args: Vec<Value>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        let sql = sql.into();
        self.step(|mut conn| async move {
            let result = statement(&sql, args).fetch_optional(&mut conn).await;
            (conn, result)
        })
    }

    /// Runs one statement; the number of rows it changed.
    pub(super) fn execute(
        &mut self,
        sql: impl Into<Sql>,
        args: Vec<Value>,
    ) -> Result<u64, sqlx::Error> {
        let sql = sql.into();
        self.step(|mut conn| async move {
            let result = statement(&sql, args).execute(&mut conn).await;
            (conn, result.map(|done| done.rows_affected()))
        })
    }

    /// Runs several statements without parameters (schema migrations).
    pub(super) fn batch(&mut self, sql: impl Into<Sql>) -> Result<(), sqlx::Error> {
        let sql = sql.into();
        self.step(|mut conn| async move {
            // A query without arguments goes by the simple protocol, which takes several statements.
            let result = sqlx::Executor::execute(&mut conn, sql.as_ref()).await;
            (conn, result.map(drop))
        })
    }

    /// Takes a transaction-scoped advisory lock `(class, hash of key)`, waiting for its holder.
    pub(super) fn lock(&mut self, class: i32, key: &str) -> Result<(), sqlx::Error> {
        let key = key.to_owned();
        self.step(move |mut conn| async move {
            let result = sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(class)
                .bind(key)
                .execute(&mut conn)
                .await;
            (conn, result.map(drop))
        })
    }

    fn commit(mut self) -> Result<(), Failure> {
        if self.failed {
            self.rollback();
            return Err(Failure::Fail(ServiceError::Storage(
                "a statement failed inside the transaction".into(),
            )));
        }
        let committed = self.execute("COMMIT", Vec::new());
        self.open = false;
        committed.map(drop).map_err(commit_failure)
    }

    fn rollback(mut self) {
        if self.execute("ROLLBACK", Vec::new()).is_err() {
            self.conn.mark_broken();
        }
        self.open = false;
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.mark_broken();
        }
    }
}
