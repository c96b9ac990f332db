//! The PostgreSQL connections of one service process, used from synchronous code.
//!
//! Each connection is paired with a current-thread runtime of its own, and whichever thread holds the
//! connection drives that runtime while it waits: it writes the statement and polls the socket itself,
//! so an answer costs no hand-over between threads (on a busy 2-core machine that hand-over was most of
//! a statement's latency). The pool is a plain mutex-and-condvar list of idle connections with a cap;
//! no background tasks, no health pings: a connection that fails below SQL (I/O, protocol) is dropped
//! instead of returned, with the idle ones (after a server restart they are all dead), and the next
//! request opens a new one.

use std::future::Future;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Result, ServiceError};

/// Connections per service process (two processes and the CLI fit PostgreSQL's default of 100 easily).
const MAX_CONNECTIONS: usize = 16;
/// How long a statement waits for a free connection before the request fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

thread_local! {
    /// Set while a thread runs store work it was given to block on (see [`blocking_section`]).
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` (store calls) noting that this thread may block: a blocking-pool or plain thread, not an
/// async worker. Without the note, a thread inside a tokio runtime hands each statement to a short-lived
/// helper thread, since it must not drive another runtime itself.
pub fn blocking_section<T>(work: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            MAY_BLOCK.set(self.0);
        }
    }
    let _restore = Restore(MAY_BLOCK.replace(true));
    work()
}

/// Runs `work` to completion on `runtime`, driven by this thread when it may block.
fn drive<T, F>(runtime: &tokio::runtime::Runtime, work: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    if MAY_BLOCK.get() || tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(work));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(work))
            .join()
            .map_err(|_| ServiceError::Storage("a database task panicked".into()))
    })
}

/// One connection and the runtime its socket belongs to.
pub(super) struct Conn {
    runtime: tokio::runtime::Runtime,
    inner: Option<PgConnection>,
    /// Set when the connection can no longer be trusted (failed below SQL, or a lost transaction).
    broken: bool,
}

impl Conn {
    fn open(options: &PgConnectOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| ServiceError::Io(format!("starting a database runtime: {err}")))?;
        let options = options.clone();
        let inner = drive(&runtime, async move {
            tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await
        })?
        .map_err(|_| {
            tracing::warn!("connecting to the database timed out; answering 503");
            ServiceError::Unavailable
        })?
        .map_err(super::postgres_conn::storage_error)?;
        Ok(Self {
            runtime,
            inner: Some(inner),
            broken: false,
        })
    }

    /// Runs one step with the connection and takes it back. Errors below SQL mark it broken.
    pub(super) fn step<T, F, Fut>(&mut self, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: FnOnce(PgConnection) -> Fut,
        Fut: Future<Output = (PgConnection, Result<T, sqlx::Error>)> + Send + 'static,
    {
        let Some(conn) = self.inner.take() else {
            self.broken = true;
            return Err(sqlx::Error::Protocol("the connection was lost".into()));
        };
        let (conn, result) = drive(&self.runtime, work(conn)).map_err(|err| {
            self.broken = true;
            sqlx::Error::Protocol(err.to_string())
        })?;
        self.inner = Some(conn);
        if let Err(err) = &result {
            if super::postgres_conn::out_of_reach(err) {
                self.broken = true;
            }
        }
        result
    }

    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    pub(super) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Closes the connection politely when this thread may block, else just drops it (the server
    /// notices the closed socket and rolls back anything open).
    fn close(mut self) {
        if let Some(conn) = self.inner.take() {
            if MAY_BLOCK.get() || tokio::runtime::Handle::try_current().is_err() {
                let _ = self.runtime.block_on(async move {
                    tokio::time::timeout(Duration::from_secs(2), conn.close()).await
                });
            } else {
                drop(conn);
            }
        }
        self.runtime.shutdown_background();
    }
}

struct State {
    idle: Vec<Conn>,
    open: usize,
}

pub(super) struct Pool {
    options: PgConnectOptions,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    /// A pool for `options`, with one connection opened at once so a wrong URL fails here.
    pub(super) fn connect(options: PgConnectOptions) -> Result<Self> {
        let first = Conn::open(&options)?;
        Ok(Self {
            options,
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
            }),
            freed: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is two plain fields, consistent after any panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection, a new one while under the cap, or the first one freed.
    pub(super) fn acquire(&self) -> Result<Lease<'_>> {
        let deadline = Instant::now() + ACQUIRE_TIMEOUT;
        let mut state = self.state();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return match Conn::open(&self.options) {
                    Ok(conn) => Ok(Lease {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(err) => {
                        self.state().open -= 1;
                        self.freed.notify_one();
                        Err(err)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ServiceError::Storage(format!(
                    "no free database connection within {} s",
                    ACQUIRE_TIMEOUT.as_secs()
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn release(&self, conn: Conn) {
        if conn.broken || conn.inner.is_none() {
            // One dead connection usually means a restarted or failed-over server: the idle ones are
            // dead too, so they go now instead of failing one request each.
            let idle = {
                let mut state = self.state();
                let idle = std::mem::take(&mut state.idle);
                state.open -= 1 + idle.len();
                idle
            };
            self.freed.notify_all();
            conn.close();
            idle.into_iter().for_each(Conn::close);
        } else {
            self.state().idle.push(conn);
            self.freed.notify_one();
        }
    }

    /// Closes every idle connection (at shutdown).
    pub(super) fn close_idle(&self) {
        let idle = std::mem::take(&mut self.state().idle);
        for conn in idle {
            conn.close();
        }
    }
}

/// A connection taken from the pool; back in it when dropped (or closed, if broken).
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.release(conn);
        }
    }
}
