//! Module configuration. Zero configuration is the default: tokens live under the per-user data
//! directory. `CRYPTERA_PKCS11_CONFIG` names a TOML file that can move the store, name tokens and tune
//! PIN rules; every setting is documented in README.md.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory holding one `<slot>.token` SQLite file per token.
    #[serde(default)]
    pub store_dir: Option<PathBuf>,
    #[serde(default = "default_min_pin")]
    pub min_pin_len: usize,
    #[serde(default = "default_max_pin")]
    pub max_pin_len: usize,
    /// Wrong PINs in a row before the PIN locks.
    #[serde(default = "default_max_attempts")]
    pub max_pin_attempts: u32,
    /// Argon2id memory cost in KiB for new PIN records.
    #[serde(default = "default_kdf_memory")]
    pub kdf_memory_kib: u32,
    #[serde(default = "default_kdf_iterations")]
    pub kdf_iterations: u32,
    /// Tokens with fixed slot numbers and labels; their files are created by `C_InitToken`.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Tokens whose keys live in the Cryptera service (see docs/remote-protocol.md).
    #[serde(default, rename = "remote")]
    pub remotes: Vec<RemoteConfig>,
}

/// One remote token: a slot backed by the Cryptera service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    pub slot: u64,
    /// The service's base URL (`https://...`; `http://` only for loopback).
    pub url: String,
    /// Label shown before login (after login: `<organisation>/<environment>`).
    #[serde(default)]
    pub label: Option<String>,
    /// Extra trust anchors, PEM.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Environment variable holding the access token, for clients that cannot type a PIN.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the access token (mode 0600 or stricter), for the same clients.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_remote_timeout")]
    pub timeout_ms: u64,
    /// How long a signature may wait for approvals.
    #[serde(default = "default_approval_wait")]
    pub approval_wait_s: u64,
    /// No "waiting for approval" line on stderr.
    #[serde(default)]
    pub quiet: bool,
}

fn default_remote_timeout() -> u64 {
    10_000
}

fn default_approval_wait() -> u64 {
    900
}

/// What the module records of the keys' use on this machine (see docs/audit-format.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record events at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The JSON-lines file; default `audit.jsonl` in the store directory.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Also send each record to syslog (journald picks it up).
    #[serde(default)]
    pub syslog: bool,
    /// The syslog socket (a Unix datagram socket).
    #[serde(default = "default_syslog_socket")]
    pub syslog_socket: PathBuf,
    /// A record that cannot be written fails the operation it records (`CKR_DEVICE_ERROR`); records
    /// are then written before the operation returns.
    #[serde(default)]
    pub mandatory: bool,
    /// A command asked before each signing operation, the event as JSON on its standard input; exit
    /// status 0 allows, anything else (or no answer in time) rejects with `CKR_FUNCTION_REJECTED`.
    #[serde(default)]
    pub policy_command: Option<Vec<String>>,
    #[serde(default = "default_policy_timeout")]
    pub policy_timeout_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_syslog_socket() -> PathBuf {
    PathBuf::from("/dev/log")
}

fn default_policy_timeout() -> u64 {
    2000
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            file: None,
            syslog: false,
            syslog_socket: default_syslog_socket(),
            mandatory: false,
            policy_command: None,
            policy_timeout_ms: default_policy_timeout(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub slot: u64,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub path: Option<PathBuf>,
}

fn default_min_pin() -> usize {
    4
}
fn default_max_pin() -> usize {
    256
}
fn default_max_attempts() -> u32 {
    10
}
fn default_kdf_memory() -> u32 {
    19 * 1024
}
fn default_kdf_iterations() -> u32 {
    2
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store_dir: None,
            min_pin_len: default_min_pin(),
            max_pin_len: default_max_pin(),
            max_pin_attempts: default_max_attempts(),
            kdf_memory_kib: default_kdf_memory(),
            kdf_iterations: default_kdf_iterations(),
            tokens: Vec::new(),
            audit: AuditConfig::default(),
            remotes: Vec::new(),
        }
    }
}

impl Config {
    /// Reads the configuration named by `CRYPTERA_PKCS11_CONFIG`, or the defaults.
    pub fn load() -> Result<Config> {
        let Some(path) = std::env::var_os("CRYPTERA_PKCS11_CONFIG") else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::General(format!(
                "cannot read {}: {e}",
                PathBuf::from(&path).display()
            ))
        })?;
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config> {
        let config: Config =
            toml::from_str(text).map_err(|e| Error::General(format!("configuration: {e}")))?;
        if config.min_pin_len == 0
            || config.min_pin_len > config.max_pin_len
            || config.max_pin_attempts == 0
        {
            return Err(Error::General(
                "configuration: inconsistent PIN limits".into(),
            ));
        }
        if config
            .audit
            .policy_command
            .as_ref()
            .is_some_and(|c| c.is_empty())
        {
            return Err(Error::General(
                "configuration: audit.policy_command is empty".into(),
            ));
        }
        if config.kdf_memory_kib < 8 || config.kdf_iterations == 0 {
            return Err(Error::General("configuration: KDF costs too low".into()));
        }
        // PIN records asking for more are refused as damaged (see MAX_KDF_COST_KIB).
        if u64::from(config.kdf_memory_kib) * u64::from(config.kdf_iterations)
            > crate::local::crypt::MAX_KDF_COST_KIB
        {
            return Err(Error::General(
                "configuration: KDF costs too high (kdf_memory_kib × kdf_iterations > 2 GiB)"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// The store directory: configured, else `$XDG_DATA_HOME/cryptera-pkcs11`, else
    /// `~/.local/share/cryptera-pkcs11`.
    pub fn store_dir(&self) -> PathBuf {
        if let Some(dir) = &self.store_dir {
            return dir.clone();
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(data).join("cryptera-pkcs11");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/cryptera-pkcs11")
    }
}
