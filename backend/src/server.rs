//! The service's shared state, its data directory (`init` and open), and the HTTP server loop.
//!
//! The data directory holds `cryptera.db` (SQLite, unless the database is PostgreSQL) and `master.key`
//! (the file KEK, mode 0600). `init` creates both plus the audit checkpoint key (Ed25519, sealed under
//! the KEK, kept in the database); `open` refuses to start without them, so a service never silently
//! runs with a fresh, empty key hierarchy.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::error::{Result, ServiceError};
use crate::kek::{Aad, Kek};
use crate::kek_pkcs11::{Pkcs11Kek, Pkcs11KekConfig, PIN_VARIABLE};
use crate::metrics::Metrics;
use crate::store::{Database, Store};
use zeroize::Zeroizing;

pub const DATABASE_FILE: &str = "cryptera.db";
pub const MASTER_KEY_FILE: &str = "master.key";
/// Present instead of `master.key` when the KEK is in a PKCS#11 token.
pub const PKCS11_KEK_FILE: &str = "kek.json";
pub const CHECKPOINT_KEY_NAME: &str = "audit-checkpoint-key";

/// Settings of a running service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Allows production keys while the KEK is only a master-key file.
    pub allow_production_with_file_kek: bool,
    /// Pause before answering a failed login, to slow down guessing.
    pub login_failure_delay: Duration,
    pub session_lifetime_secs: i64,
    /// What `Retry-After` suggests while a signing request waits for approvals.
    pub approval_retry_after_secs: u64,
    /// How long a deleted key stays restorable before it is destroyed.
    pub deletion_retention_secs: i64,
    /// Requests per minute for one access token or session.
    pub credential_requests_per_minute: u32,
    /// Requests per minute for a whole organisation (all its credentials together).
    pub organisation_requests_per_minute: u32,
    /// The same for trial organisations (their small quota).
    pub trial_requests_per_minute: u32,
    /// Login attempts per minute for one username, successful or not.
    pub login_attempts_per_minute: u32,
    /// How often the service signs and keeps a checkpoint of every audit chain that moved.
    pub checkpoint_interval: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            allow_production_with_file_kek: false,
            login_failure_delay: Duration::from_millis(500),
            session_lifetime_secs: 12 * 3600,
            approval_retry_after_secs: 5,
            deletion_retention_secs: 30 * 86_400,
            credential_requests_per_minute: 600,
            organisation_requests_per_minute: 3000,
            trial_requests_per_minute: 60,
            login_attempts_per_minute: 10,
            checkpoint_interval: Duration::from_secs(3600),
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    kek: Kek,
    config: ServiceConfig,
    metrics: Metrics,
}

/// Cheap to clone; shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, kek: Kek, config: ServiceConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                kek,
                config,
                metrics: Metrics::default(),
            }),
        }
    }

    /// Opens an initialised data directory and its database; a PKCS#11 KEK's PIN is read from
    /// `CRYPTERA_KEK_PIN`.
    pub fn open(data_dir: &Path, database: &Database, config: ServiceConfig) -> Result<Self> {
        let pin = std::env::var(PIN_VARIABLE).ok().map(Zeroizing::new);
        Self::open_with_pin(
            data_dir,
            database,
            config,
            pin.as_deref().map(String::as_str),
        )
    }

    /// Opens an initialised data directory and its database, with the PIN of a PKCS#11 KEK if it has one.
    pub fn open_with_pin(
        data_dir: &Path,
        database: &Database,
        config: ServiceConfig,
        pin: Option<&str>,
    ) -> Result<Self> {
        let db = data_dir.join(DATABASE_FILE);
        if matches!(database, Database::DataDir) && !db.exists() {
            return Err(ServiceError::Io(format!(
                "{} does not exist; run `cryptera-backend init` first (or give --database-url if \
                 this service's database is PostgreSQL)",
                db.display()
            )));
        }
        let pkcs11_config = data_dir.join(PKCS11_KEK_FILE);
        let kek = if pkcs11_config.exists() {
            let pin = pin.ok_or_else(|| {
                ServiceError::Io(format!("the KEK is in a PKCS#11 token: set {PIN_VARIABLE}"))
            })?;
            Kek::pkcs11(Pkcs11Kek::connect(
                &Pkcs11KekConfig::read(&pkcs11_config)?,
                pin,
                false,
            )?)
        } else {
            Kek::load_file(&data_dir.join(MASTER_KEY_FILE))?
        };
        let store = database.open(&db)?;
        if store.service_secret(CHECKPOINT_KEY_NAME)?.is_none() {
            return Err(ServiceError::Io(
                "the database has not been initialised: run `cryptera-backend init` with the same \
                 --database-url first"
                    .into(),
            ));
        }
        let state = Self::new(store, kek, config);
        // A wrong master key would otherwise only show when the first key is used.
        state.check_kek().map_err(|_| {
            ServiceError::Io(format!(
                "{} does not open this database's keys (wrong master key?)",
                data_dir.join(MASTER_KEY_FILE).display()
            ))
        })?;
        Ok(state)
    }

    /// Proves the KEK opens this database's secrets (the sealed checkpoint key).
    pub fn check_kek(&self) -> Result<()> {
        let sealed = self
            .store()
            .service_secret(CHECKPOINT_KEY_NAME)?
            .ok_or(ServiceError::Unavailable)?;
        self.kek().open(&checkpoint_key_aad(), &sealed).map(drop)
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn kek(&self) -> &Kek {
        &self.inner.kek
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Runs blocking storage work off the async executor.
    pub async fn db<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || crate::store::blocking_section(|| work(store.as_ref())))
            .await
            .map_err(|err| ServiceError::Storage(format!("storage task failed: {err}")))?
    }

    /// Runs blocking work that needs the whole state (storage and KEK) off the async executor.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || crate::store::blocking_section(|| work(&state)))
            .await
            .map_err(|err| ServiceError::Storage(format!("blocking task failed: {err}")))?
    }
}

/// The AAD binding the sealed checkpoint key to its purpose.
pub fn checkpoint_key_aad() -> Aad {
    Aad::new("cryptera-service-secret-v1", &[CHECKPOINT_KEY_NAME])
}

/// Creates a data directory: the directory (0700), the master-key file (0600), the database (unless it
/// is PostgreSQL, which must exist) and the audit checkpoint key. Fails if a KEK already exists or the
/// database was already initialised (by another data directory: copy that one's master key instead).
pub fn init(data_dir: &Path, database: &Database) -> Result<PathBuf> {
    create_data_dir(data_dir)?;
    if data_dir.join(PKCS11_KEK_FILE).exists() {
        return Err(ServiceError::Io(format!(
            "{} already uses a PKCS#11 KEK",
            data_dir.display()
        )));
    }
    let key_path = data_dir.join(MASTER_KEY_FILE);
    if key_path.exists() {
        return Err(ServiceError::Io(format!(
            "{} already exists",
            key_path.display()
        )));
    }
    let store = uninitialised_store(data_dir, database)?;
    Kek::create_file(&key_path)?;
    let kek = Kek::load_file(&key_path)?;
    finish_init(store.as_ref(), &kek)?;
    Ok(key_path)
}

/// Creates a data directory whose KEK is an AES-256 key in a PKCS#11 token (generated there if the
/// token has none with that label). No master-key file is written; `kek.json` records where the KEK is.
pub fn init_pkcs11(
    data_dir: &Path,
    database: &Database,
    config: &Pkcs11KekConfig,
    pin: &str,
) -> Result<()> {
    create_data_dir(data_dir)?;
    let config_path = data_dir.join(PKCS11_KEK_FILE);
    if config_path.exists() || data_dir.join(MASTER_KEY_FILE).exists() {
        return Err(ServiceError::Io(format!(
            "{} already has a KEK",
            data_dir.display()
        )));
    }
    let store = uninitialised_store(data_dir, database)?;
    let kek = Kek::pkcs11(Pkcs11Kek::connect(config, pin, true)?);
    config.write(&config_path)?;
    finish_init(store.as_ref(), &kek)
}

fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|err| ServiceError::Io(format!("creating {}: {err}", data_dir.display())))
}

/// Opens (creating) the database and checks no data directory initialised it before.
fn uninitialised_store(data_dir: &Path, database: &Database) -> Result<Arc<dyn Store>> {
    let store = database.open(&data_dir.join(DATABASE_FILE))?;
    if store.service_secret(CHECKPOINT_KEY_NAME)?.is_some() {
        return Err(ServiceError::Io(
            "the database is already initialised: a further service process needs a copy of the \
             first one's master key (or kek.json), not a new init"
                .into(),
        ));
    }
    Ok(store)
}

fn finish_init(store: &dyn Store, kek: &Kek) -> Result<()> {
    let checkpoint = crate::signing::generate(cryptera_proto::keys::KeyAlgorithm::Ed25519)?;
    let sealed = kek.seal(&checkpoint_key_aad(), &checkpoint.pkcs8)?;
    store.put_service_secret(CHECKPOINT_KEY_NAME, &sealed)
}

/// Destroys keys whose scheduled deletion is due, once a minute, for as long as the server runs.
async fn purge_loop(state: AppState) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        let now = crate::util::now();
        match state.db(move |store| store.purge_due_keys(now)).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(count = ids.len(), "destroyed keys due for deletion")
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "purging keys failed"),
        }
    }
}

/// Signs and keeps checkpoints of every audit chain that moved, at the configured interval.
async fn checkpoint_loop(state: AppState) {
    let mut ticker = tokio::time::interval(state.config().checkpoint_interval);
    loop {
        ticker.tick().await;
        let now = crate::util::now();
        match state
            .blocking(move |state| crate::checkpoint::checkpoint_all(state, now))
            .await
        {
            Ok(made) if made > 0 => tracing::info!(count = made, "signed audit checkpoints"),
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "audit checkpoints failed"),
        }
    }
}

/// Serves the API over plain HTTP on `listener` until `shutdown` completes (loopback only; the CLI
/// refuses other addresses).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tasks = start_background(&state);
    let app = crate::api::router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
    result
}

/// Serves the API over TLS until `shutdown` completes.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tasks = start_background(&state);
    // Each connection's peer address and client certificate chain reach handlers as request
    // extensions (see `tls::connection_extensions`).
    let app = crate::api::router(state)
        .layer(axum::middleware::from_fn(crate::tls::connection_extensions));
    let listener = crate::tls::TlsListener::new(listener, tls)?;
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<crate::tls::TlsConnectInfo>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
    result
}

fn start_background(state: &AppState) -> [tokio::task::JoinHandle<()>; 2] {
    [
        tokio::spawn(purge_loop(state.clone())),
        tokio::spawn(checkpoint_loop(state.clone())),
    ]
}
