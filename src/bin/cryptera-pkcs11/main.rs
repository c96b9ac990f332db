//! `cryptera-pkcs11`: the module's command-line companion.
//!
//! ```text
//! cryptera-pkcs11 audit verify FILE    check an audit file's chain; print what was signed
//! cryptera-pkcs11 doctor               check the configuration, the local tokens and each remote
//!                                      token: reachability, TLS, access token, scopes, keys
//! cryptera-pkcs11 enroll OPTIONS       a device certificate for a token key from the Cryptera
//!                                      service, written to the token with its chain
//! cryptera-pkcs11 renew OPTIONS        the same when the key's certificate expires soon
//! ```

mod csr;
mod doctor;
mod enroll;
mod service;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cryptera-pkcs11 audit verify FILE\n       cryptera-pkcs11 doctor\n       \
         cryptera-pkcs11 enroll --device-id ID (--key-label L | --key-id HEX) --service URL ...\n       \
         cryptera-pkcs11 renew --device-id ID (--key-label L | --key-id HEX) --service URL ... [--days N] [--force]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["audit", "verify", file] => audit_verify(PathBuf::from(file)),
        ["doctor"] => doctor::run(),
        ["enroll", ..] => enroll::run(&args[1..], false),
        ["renew", ..] => enroll::run(&args[1..], true),
        _ => usage(),
    }
}

fn audit_verify(path: PathBuf) -> ExitCode {
    let report = match cryptera_pkcs11::audit::verify::verify(&path) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("{}: {err}", path.display());
            return ExitCode::from(2);
        }
    };
    println!("{} records checked in {}", report.records, path.display());
    if !report.signatures_per_key.is_empty() {
        println!("signatures per key:");
        for (key, count) in &report.signatures_per_key {
            println!("  {count:>8}  {key}");
        }
        println!("signatures per program:");
        for (program, count) in &report.signatures_per_program {
            println!("  {count:>8}  {program}");
        }
    }
    if report.failures > 0 {
        println!("failed or rejected signing attempts: {}", report.failures);
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    match report.first_error {
        Some((line, why)) => {
            println!("BAD record at line {line}: {why}");
            ExitCode::from(1)
        }
        None => {
            println!("chain intact");
            ExitCode::SUCCESS
        }
    }
}
