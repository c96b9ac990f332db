//! The `cryptera-backend` command line: `init`, `serve`, and administration commands that work directly
//! on a data directory (`org create`, `user add`, `token create`, `key create`, `audit verify`).
//!
//! Secrets are never taken from arguments (they would land in shell history and `ps`): passwords come
//! from standard input, and a created token is printed once on standard output.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cryptera_backend::api::Decision;
use cryptera_backend::audit::AuditEvent;
use cryptera_backend::auth::authenticate;
use cryptera_backend::checkpoint;
use cryptera_backend::kek_pkcs11::{Pkcs11KekConfig, PIN_VARIABLE};
use cryptera_backend::store::postgres::PgStore;
use cryptera_backend::store::Database;
use cryptera_backend::{api, server, AppState, ServiceConfig, ServiceError};
use cryptera_proto::auth::{
    CreateTokenRequest, CreateUserRequest, KeyScope, LoginRequest, Operation, Role,
};
use cryptera_proto::keys::{CreateKeyRequest, KeyAlgorithm, KeyPolicy};
use cryptera_proto::Environment;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "cryptera-backend",
    version,
    about = "The Cryptera signing service"
)]
struct Cli {
    /// The data directory (database and master-key file).
    #[arg(
        long,
        global = true,
        env = "CRYPTERA_DATA_DIR",
        default_value = "cryptera-data"
    )]
    data_dir: PathBuf,
    /// PostgreSQL database shared by every service process (`postgres://user:password@host:port/db`,
    /// `?sslmode=verify-full` etc. allowed). Without it the database is the data directory's SQLite file.
    /// The same URL is needed by `init`, `serve` and every other command.
    #[arg(
        long,
        global = true,
        env = "CRYPTERA_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Log one JSON object per line (for log collectors) instead of text.
    #[arg(long, global = true, env = "CRYPTERA_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory, database and master-key file (mode 0600), or with `--kek-module`
    /// a KEK inside a PKCS#11 token (user PIN from CRYPTERA_KEK_PIN).
    Init {
        /// PKCS#11 module holding the KEK (e.g. an HSM's library, SoftHSM2 or libcryptera_pkcs11.so).
        #[arg(long, requires = "kek_token")]
        kek_module: Option<PathBuf>,
        /// Label of the initialised token that holds (or will hold) the KEK.
        #[arg(long, requires = "kek_module")]
        kek_token: Option<String>,
        /// Label of the KEK object in the token.
        #[arg(long, default_value = "cryptera-kek")]
        kek_label: String,
    },
    /// Serve the API.
    Serve {
        /// Without TLS, only a loopback address is allowed.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PEM certificate chain (leaf first) for TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for TLS.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Allow production keys although the KEK is only a master-key file.
        #[arg(long)]
        allow_production_keys_with_file_kek: bool,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Device certificate authorities (issue 10).
    #[command(subcommand)]
    Ca(CaCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Approve (or deny) a signing request as a user: password and TOTP code are read from the first two
    /// lines of standard input.
    Approve {
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
        /// The signing request id (`req_...`).
        #[arg(long)]
        request: String,
        #[arg(long, value_parser = parse_environment, default_value = "development")]
        environment: Environment,
        /// Deny instead of approving, with this reason.
        #[arg(long)]
        deny: Option<String>,
    },
    /// Write a consistent copy of the database (safe while the service runs) to a new SQLite file; on
    /// PostgreSQL, of one snapshot. The master-key file is not included: back it up separately and keep
    /// it apart from database backups.
    Backup {
        #[arg(long)]
        output: PathBuf,
    },
    /// Copy a backup (a SQLite file written by `backup`) into the empty PostgreSQL database named by
    /// --database-url. The data directory must hold the master key (or kek.json) the backup was made
    /// under.
    Restore {
        #[arg(long)]
        input: PathBuf,
    },
}

/// Service limits and periods (defaults as documented in docs/service-api.md).
#[derive(clap::Args)]
struct Tuning {
    /// Pause before answering a failed login, in milliseconds.
    #[arg(long, default_value_t = 500)]
    login_failure_delay_ms: u64,
    /// Days a deleted key stays restorable before it is destroyed.
    #[arg(long, default_value_t = 30)]
    deletion_retention_days: u32,
    /// Seconds between signed audit checkpoints.
    #[arg(long, default_value_t = 3600)]
    checkpoint_interval_secs: u64,
    /// Requests per minute for one access token or session.
    #[arg(long, default_value_t = 600)]
    credential_requests_per_minute: u32,
    /// Requests per minute for one organisation.
    #[arg(long, default_value_t = 3000)]
    organisation_requests_per_minute: u32,
    /// Requests per minute for one trial organisation.
    #[arg(long, default_value_t = 60)]
    trial_requests_per_minute: u32,
}

impl Tuning {
    fn config(&self, allow_production_with_file_kek: bool) -> ServiceConfig {
        ServiceConfig {
            allow_production_with_file_kek,
            login_failure_delay: Duration::from_millis(self.login_failure_delay_ms),
            deletion_retention_secs: i64::from(self.deletion_retention_days) * 86_400,
            checkpoint_interval: Duration::from_secs(self.checkpoint_interval_secs.max(1)),
            credential_requests_per_minute: self.credential_requests_per_minute,
            organisation_requests_per_minute: self.organisation_requests_per_minute,
            trial_requests_per_minute: self.trial_requests_per_minute,
            ..ServiceConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum OrgCommand {
    Create {
        #[arg(long)]
        name: String,
        /// Make it a trial organisation that expires after this many days.
        #[arg(long)]
        trial_days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
        /// admin, signer, approver or auditor; repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// Erase a person (GDPR): keeps only the pseudonymous id, so the audit chain stays valid.
    Erase {
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an access token and print it once on standard output.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// sign, keygen, read, approve, audit or admin; repeat for several.
        #[arg(long = "operation", required = true, value_parser = parse_operation)]
        operations: Vec<Operation>,
        /// Key ids the token may use; repeat for several.
        #[arg(long = "key-id")]
        key_ids: Vec<String>,
        /// Key label patterns (`*` wildcard) the token may use; repeat for several.
        #[arg(long = "key-pattern")]
        key_patterns: Vec<String>,
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
        #[arg(long, default_value_t = 90)]
        expires_in_days: u64,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a key and print its description (public key only) as JSON.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        label: String,
        #[arg(long, value_parser = parse_algorithm)]
        algorithm: KeyAlgorithm,
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
        /// Approvals required before each signature (M of N).
        #[arg(long, default_value_t = 0)]
        approvals_required: u32,
        #[arg(long)]
        allow_production_keys_with_file_kek: bool,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create an environment's root and issuing CA and print them as JSON.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
        /// The service's public base URL, named as the CRL distribution point of issued certificates.
        #[arg(long)]
        public_url: String,
        #[arg(long)]
        allow_production_keys_with_file_kek: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every organisation's hash chain; fails on any edited, removed or reordered record.
    Verify,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("unknown role {text:?}"))
}

fn parse_operation(text: &str) -> Result<Operation, String> {
    Operation::parse(text).ok_or_else(|| format!("unknown operation {text:?}"))
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    Environment::parse(text).ok_or_else(|| format!("unknown environment {text:?}"))
}

fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(text).ok_or_else(|| format!("unknown algorithm {text:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn org(state: &AppState, name: &str) -> Result<cryptera_backend::store::OrgRecord, ServiceError> {
    state
        .store()
        .org_by_name(name)?
        .ok_or(ServiceError::NotFound("organisation"))
}

fn run(cli: Cli) -> Result<ExitCode, ServiceError> {
    let data_dir = cli.data_dir;
    let database = Database::from_url(cli.database_url.as_deref())?;
    let open = |config: ServiceConfig| AppState::open(&data_dir, &database, config);
    match cli.command {
        Command::Init {
            kek_module,
            kek_token,
            kek_label,
        } => match (kek_module, kek_token) {
            (Some(module), Some(token_label)) => {
                let pin = std::env::var(PIN_VARIABLE)
                    .map(Zeroizing::new)
                    .map_err(|_| {
                        ServiceError::InvalidRequest(format!(
                            "set {PIN_VARIABLE} to the token's user PIN"
                        ))
                    })?;
                let config = Pkcs11KekConfig {
                    module,
                    token_label,
                    key_label: kek_label,
                };
                server::init_pkcs11(&data_dir, &database, &config, &pin)?;
                println!(
                    "initialised {} (KEK in PKCS#11 token {:?})",
                    data_dir.display(),
                    config.token_label
                );
            }
            _ => {
                let key = server::init(&data_dir, &database)?;
                println!(
                    "initialised {} (master key {})",
                    data_dir.display(),
                    key.display()
                );
            }
        },
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            allow_production_keys_with_file_kek,
            tuning,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(cryptera_backend::tls::load_config(cert, key)?),
                _ => None,
            };
            if tls.is_none() && !listen.ip().is_loopback() {
                return Err(ServiceError::InvalidRequest(format!(
                    "refusing plain HTTP on {listen}: only loopback addresses are allowed without TLS"
                )));
            }
            let state = open(tuning.config(allow_production_keys_with_file_kek))?;
            serve(listen, tls, state)?;
        }
        Command::Org(OrgCommand::Create { name, trial_days }) => {
            let state = open(ServiceConfig::default())?;
            let org = api::create_organisation(&state, &name, trial_days)?;
            println!("{}", org.id);
        }
        Command::User(UserCommand::Add {
            org: org_name,
            username,
            roles,
        }) => {
            let state = open(ServiceConfig::default())?;
            let org = org(&state, &org_name)?;
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|err| ServiceError::Io(format!("reading the password: {err}")))?;
            let request = CreateUserRequest {
                username,
                password: line.trim_end_matches(['\r', '\n']).to_owned(),
                roles,
            };
            let audit = AuditEvent::new(&org.id, "svc", "user.create", "");
            let user = api::create_user(&state, audit, &request)?;
            println!("{}", user.id);
        }
        Command::User(UserCommand::Erase {
            org: org_name,
            username,
        }) => {
            let state = open(ServiceConfig::default())?;
            let org = org(&state, &org_name)?;
            let user = state
                .store()
                .user_by_name(&org.id, &username)?
                .ok_or(ServiceError::NotFound("user"))?;
            let audit = AuditEvent::new(&org.id, "svc", "user.erase", &user.id);
            api::erase_user(&state, audit, &user.id)?;
            println!("erased {}", user.id);
        }
        Command::Token(TokenCommand::Create {
            org: org_name,
            name,
            operations,
            key_ids,
            key_patterns,
            environment,
            expires_in_days,
        }) => {
            let state = open(ServiceConfig::default())?;
            let org = org(&state, &org_name)?;
            let request = CreateTokenRequest {
                name,
                operations,
                keys: KeyScope {
                    ids: key_ids,
                    label_patterns: key_patterns,
                },
                expires_in_seconds: expires_in_days.saturating_mul(86_400),
            };
            let audit = AuditEvent::new(&org.id, "svc", "token.create", "");
            let created = api::create_token(&state, &org, audit, environment, &request)?;
            eprintln!("token {} created; it is shown only now:", created.info.id);
            println!("{}", created.token);
        }
        Command::Key(KeyCommand::Create {
            org: org_name,
            label,
            algorithm,
            environment,
            approvals_required,
            allow_production_keys_with_file_kek,
        }) => {
            let config = ServiceConfig {
                allow_production_with_file_kek: allow_production_keys_with_file_kek,
                ..ServiceConfig::default()
            };
            let state = open(config)?;
            let org = org(&state, &org_name)?;
            let request = CreateKeyRequest {
                label,
                algorithm,
                policy: KeyPolicy {
                    approvals_required,
                    ..KeyPolicy::default()
                },
            };
            let audit = AuditEvent::new(&org.id, "svc", "key.create", "");
            let key = api::create_key(&state, &org, audit, environment, &request)?;
            let info = api::key_info(&key);
            println!(
                "{}",
                serde_json::to_string_pretty(&info).unwrap_or_default()
            );
        }
        Command::Ca(CaCommand::Create {
            org: org_name,
            environment,
            public_url,
            allow_production_keys_with_file_kek,
        }) => {
            use cryptera_backend::ca::issue;
            let config = ServiceConfig {
                allow_production_with_file_kek: allow_production_keys_with_file_kek,
                ..ServiceConfig::default()
            };
            let state = open(config)?;
            let org = org(&state, &org_name)?;
            let audit = AuditEvent::new(&org.id, "svc", "ca.create", "");
            let (root, issuing) = issue::create_cas(&state, &org, environment, &public_url, audit)?;
            let list = cryptera_proto::devices::CaList {
                cas: vec![issue::ca_info(&root), issue::ca_info(&issuing)],
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        Command::Audit(AuditCommand::Verify) => {
            return audit_verify(&open(ServiceConfig::default())?)
        }
        Command::Approve {
            org,
            username,
            request,
            environment,
            deny,
        } => {
            let state = open(ServiceConfig::default())?;
            let mut lines = std::io::stdin().lock().lines();
            let mut next_line = || -> Result<Zeroizing<String>, ServiceError> {
                let line = lines
                    .next()
                    .transpose()
                    .map_err(|err| ServiceError::Io(format!("reading standard input: {err}")))?
                    .unwrap_or_default();
                Ok(Zeroizing::new(line))
            };
            let password = next_line()?;
            let totp_code = next_line()?;
            let login = LoginRequest {
                organisation: org,
                username,
                password: password.trim_end().to_owned(),
                totp_code: Some(totp_code.trim().to_owned()),
                environment,
            };
            let session = Zeroizing::new(api::login_session(&state, &login, "cli")?.session_token);
            let caller = authenticate(&state, &session, "cli".to_owned())?;
            let decision = match deny {
                Some(reason) => Decision::Deny(Some(reason)),
                None => Decision::Approve,
            };
            let info = api::decide_blocking(&state, &caller, &request, &decision)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&info).unwrap_or_default()
            );
        }
        Command::Backup { output } => {
            let state = open(ServiceConfig::default())?;
            state.store().backup_to(&output)?;
            println!("wrote {}", output.display());
        }
        Command::Restore { input } => {
            let Database::Postgres(url) = &database else {
                return Err(ServiceError::InvalidRequest(
                    "restore copies into PostgreSQL: give --database-url (a SQLite backup is \
                     restored by copying it to the data directory's cryptera.db)"
                        .into(),
                ));
            };
            let store = PgStore::open(url)?;
            for (table, rows) in store.restore_from_sqlite(&input)? {
                println!("{table}: {rows} rows");
            }
            // The restored database must open under this data directory's KEK.
            open(ServiceConfig::default())?;
            println!("restored {} into {}", input.display(), store.location());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(state: &AppState) -> Result<ExitCode, ServiceError> {
    let mut failed = false;
    for org_id in state.store().organisation_ids()? {
        match checkpoint::verify_organisation(state, &org_id)? {
            Ok((seq, hash)) => println!("{org_id}: ok, {seq} records, head {hash}"),
            Err(reason) => {
                failed = true;
                println!("{org_id}: TAMPERED: {reason}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn serve(
    listen: SocketAddr,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    state: AppState,
) -> Result<(), ServiceError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| ServiceError::Io(format!("starting the runtime: {err}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| ServiceError::Io(format!("binding {listen}: {err}")))?;
        let bound = listener
            .local_addr()
            .map_err(|err| ServiceError::Io(err.to_string()))?;
        // Ctrl-C or SIGTERM (container stop): finish in-flight requests, then exit. The handlers are
        // in place before the address is announced, so a signal right after it is not fatal.
        let install = |kind: tokio::signal::unix::SignalKind| {
            tokio::signal::unix::signal(kind)
                .map_err(|err| ServiceError::Io(format!("installing a signal handler: {err}")))
        };
        let mut terminate = install(tokio::signal::unix::SignalKind::terminate())?;
        let mut interrupt = install(tokio::signal::unix::SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        tracing::info!(address = %bound, "serving");
        println!("listening on {bound}");
        let served = match tls {
            Some(tls) => server::serve_tls(listener, tls, state, shutdown).await,
            None => server::serve(listener, state, shutdown).await,
        };
        served.map_err(|err| ServiceError::Io(format!("server: {err}")))
    })
}
