//! `cryptera-pkcs11 doctor`: what the module would see, checked step by step, with a plain-words reason
//! for each failure — the configuration, the local token files, the audit file, and for each remote
//! token the URL, reachability and TLS, the access token, its scopes, and the keys it can use.

use cryptera_pkcs11::config::{Config, RemoteConfig};
use cryptera_pkcs11::local::store::Store;
use cryptera_pkcs11::remote::Remote;
use cryptera_pkcs11::Error;
use cryptera_proto::auth::Operation;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Environment variable with an access token for the doctor to check when the configuration names
/// none (`token_env`, `token_file`).
const TOKEN_VARIABLE: &str = "CRYPTERA_ACCESS_TOKEN";

struct Report {
    failures: usize,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("ok    {what}");
    }
    fn fail(&mut self, what: &str, why: &str) {
        self.failures += 1;
        println!("FAIL  {what}: {why}");
    }
    fn note(&self, what: &str) {
        println!("      {what}");
    }
}

/// A PKCS#11 error from the remote client in words.
fn reason(err: &Error) -> String {
    match err {
        Error::PinIncorrect | Error::UserNotLoggedIn => {
            "the service refused the access token (unknown or revoked)".into()
        }
        Error::PinExpired => "the access token has expired; ask for a new one".into(),
        Error::KeyFunctionNotPermitted => {
            "the access token may not do this (scope, key pattern or environment)".into()
        }
        Error::Device(message) | Error::General(message) => message.clone(),
        other => other.to_string(),
    }
}

pub fn run() -> ExitCode {
    let mut report = Report { failures: 0 };
    let source = std::env::var("CRYPTERA_PKCS11_CONFIG")
        .map(|p| format!("configuration {p}"))
        .unwrap_or_else(|_| "no CRYPTERA_PKCS11_CONFIG: defaults".into());
    let config = match Config::load() {
        Ok(config) => {
            report.ok(&source);
            config
        }
        Err(err) => {
            report.fail(&source, &reason(&err));
            return ExitCode::from(1);
        }
    };
    local_tokens(&config, &mut report);
    for remote in &config.remotes {
        remote_token(remote, &mut report);
    }
    if report.failures == 0 {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("{} check(s) failed", report.failures);
        ExitCode::from(1)
    }
}

fn local_tokens(config: &Config, report: &mut Report) {
    use std::os::unix::fs::PermissionsExt;
    let dir = config.store_dir();
    let what = format!("local store {}", dir.display());
    let Ok(metadata) = std::fs::metadata(&dir) else {
        report.ok(&format!(
            "{what}: not created yet (the first C_InitToken makes it)"
        ));
        return;
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        report.fail(
            &what,
            "readable by other users: chmod 700 it (token files hold encrypted keys)",
        );
    } else {
        report.ok(&what);
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "token"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        match Store::open(&path).and_then(|store| store.meta("label")) {
            Ok(label) => report.ok(&format!(
                "token file {name}: label {:?}",
                String::from_utf8_lossy(&label.unwrap_or_default()).trim_end()
            )),
            Err(err) => report.fail(&format!("token file {name}"), &reason(&err)),
        }
    }
    if config.audit.enabled {
        let file = config
            .audit
            .file
            .clone()
            .unwrap_or_else(|| dir.join("audit.jsonl"));
        match std::fs::OpenOptions::new().append(true).open(&file) {
            Ok(_) => report.ok(&format!("audit file {} is writable", file.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                report.ok(&format!("audit file {}: not written yet", file.display()))
            }
            Err(err) => report.fail(&format!("audit file {}", file.display()), &err.to_string()),
        }
    }
}

fn remote_token(config: &RemoteConfig, report: &mut Report) {
    let mut config = config.clone();
    // The doctor says why things fail itself.
    config.quiet = true;
    let what = format!("remote slot {} ({})", config.slot, config.url);
    let remote = match Remote::new(config) {
        Ok(remote) => remote,
        Err(err) => return report.fail(&what, &reason(&err)),
    };
    if let Err(err) = remote.client.health() {
        return report.fail(&format!("{what}: reachable"), &reason(&err));
    }
    report.ok(&format!("{what}: reachable (TLS and health check)"));
    let token = match remote.configured_credential() {
        Ok(Some(token)) => token,
        Ok(None) => match std::env::var(TOKEN_VARIABLE) {
            Ok(token) if !token.trim().is_empty() => Zeroizing::new(token.trim().to_string()),
            _ => {
                report.note(&format!(
                    "no access token to check: the config names none (token_env, token_file) and \
                     {TOKEN_VARIABLE} is not set"
                ));
                return;
            }
        },
        Err(err) => return report.fail(&format!("{what}: access token"), &reason(&err)),
    };
    let who = match remote.client.whoami(&token) {
        Ok(who) => who,
        Err(err) => return report.fail(&format!("{what}: access token"), &reason(&err)),
    };
    let operations: Vec<&str> = who.operations.iter().map(|o| o.as_str()).collect();
    report.ok(&format!(
        "{what}: access token of {} {} in {}/{}; may {}",
        who.kind,
        who.id,
        who.organisation,
        who.environment,
        operations.join(", ")
    ));
    if !who.operations.contains(&Operation::Sign) {
        report.fail(
            &format!("{what}: scopes"),
            "the access token may not sign: ask for a token with the sign operation",
        );
    }
    match remote.client.keys_if_changed(&token, None) {
        Ok(Some((keys, _))) if keys.is_empty() => report.fail(
            &format!("{what}: keys"),
            "the access token sees no key (check its key pattern and environment)",
        ),
        Ok(Some((keys, _))) => {
            report.ok(&format!("{what}: {} key(s)", keys.len()));
            for key in keys {
                report.note(&format!(
                    "{:<24} {:<12} {:<11} {} certificate(s){}",
                    key.label,
                    key.algorithm.as_str(),
                    key.environment.as_str(),
                    key.certificates.len(),
                    match key.policy.approvals_required {
                        0 => String::new(),
                        n => format!(", {n} approval(s) per signature"),
                    }
                ));
            }
        }
        Ok(None) => report.ok(&format!("{what}: keys unchanged")),
        Err(err) => report.fail(&format!("{what}: keys"), &reason(&err)),
    }
}
