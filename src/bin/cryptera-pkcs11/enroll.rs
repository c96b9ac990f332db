//! `cryptera-pkcs11 enroll` and `cryptera-pkcs11 renew`: a device certificate for a key held in a
//! PKCS#11 token. The request is built and signed through the token (`C_Sign`), sent to the
//! Cryptera service (`POST /v1/devices/{id}/enroll`), and the certificate and its chain are written
//! back to the token: the leaf with the key's `CKA_ID` and label, each CA certificate with its own.
//! `renew` replaces the key's certificate when it expires within `--days` (or with `--force`): the
//! new one is written before the old one is removed.

use crate::csr;
use crate::service::Service;
use crate::token::{hex, Key, KeyChoice, Token, TokenChoice};
use cryptera_pkcs11::crypto::der::certificate_fields;
use cryptera_proto::devices::{CertificateProfile, EnrollResponse};
use der::{Decode, Encode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;
use zeroize::Zeroizing;

const USAGE: &str =
    "usage: cryptera-pkcs11 enroll|renew --device-id ID (--key-label L | --key-id HEX)
         [--token-label T | --slot N] [--module PATH] --service URL [--cacert PEM]
         [--access-token-file F] [--pin-file F] [--profile NAME (device, code_signing, ...)]
         renew only: [--days N] [--force]
  the access token may come from CRYPTERA_ACCESS_TOKEN, the PIN from CRYPTERA_PIN; a token with a
  protected authentication path needs no PIN";

/// Environment variable with the service access token.
const TOKEN_VARIABLE: &str = "CRYPTERA_ACCESS_TOKEN";
/// Environment variable with the token's user PIN.
const PIN_VARIABLE: &str = "CRYPTERA_PIN";
/// The module's file name, looked for beside this program and in the usual library folders.
const MODULE_FILE: &str = "libcryptera_pkcs11.so";
/// Where the Debian package installs the module.
const INSTALLED_MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libcryptera_pkcs11.so";

/// Why the command failed, and its exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn general(message: String) -> Failure {
        Failure { code: 1, message }
    }
    pub fn usage(message: String) -> Failure {
        Failure { code: 2, message }
    }
    /// Login refused: wrong or locked PIN, expired access token.
    pub fn login(message: String) -> Failure {
        Failure { code: 3, message }
    }
    /// No such token or key, or no certificate to renew.
    pub fn key(message: String) -> Failure {
        Failure { code: 4, message }
    }
    /// The service answered and refused (4xx), with its message.
    pub fn refused(message: String) -> Failure {
        Failure { code: 5, message }
    }
    /// The service could not be reached, or failed (5xx).
    pub fn network(message: String) -> Failure {
        Failure { code: 6, message }
    }
    pub fn tls(message: String) -> Failure {
        Failure { code: 7, message }
    }
    /// Any other PKCS#11 failure.
    pub fn token(message: String) -> Failure {
        Failure { code: 8, message }
    }
}

struct Options {
    device_id: String,
    key: KeyChoice,
    token: TokenChoice,
    module: Option<PathBuf>,
    service: String,
    cacert: Option<PathBuf>,
    access_token_file: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    /// A profile name `CertificateProfile::parse` accepts.
    profile: String,
    days: u64,
    force: bool,
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_start_matches("0x");
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse(args: &[String], renew: bool) -> Result<Options, Failure> {
    let mut device_id = None;
    let mut key = None;
    let mut token = TokenChoice::Only;
    let mut module = None;
    let mut service = None;
    let mut cacert = None;
    let mut access_token_file = None;
    let mut pin_file = None;
    let mut profile = String::from("device");
    let mut days = 30;
    let mut force = false;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--help" || flag == "-h" {
            return Err(Failure {
                code: 0,
                message: USAGE.into(),
            });
        }
        if renew && flag == "--force" {
            force = true;
            continue;
        }
        let value = rest
            .next()
            .ok_or_else(|| Failure::usage(format!("{flag} needs a value\n{USAGE}")))?
            .clone();
        match flag.as_str() {
            "--device-id" => device_id = Some(value),
            "--key-label" => key = Some(KeyChoice::Label(value)),
            "--key-id" => {
                let id = parse_hex(&value).ok_or_else(|| {
                    Failure::usage(format!("--key-id {value:?}: not hexadecimal"))
                })?;
                key = Some(KeyChoice::Id(id));
            }
            "--token-label" => token = TokenChoice::Label(value),
            "--slot" => {
                let slot = value
                    .parse()
                    .map_err(|_| Failure::usage(format!("--slot {value:?}: not a number")))?;
                token = TokenChoice::Slot(slot);
            }
            "--module" => module = Some(PathBuf::from(value)),
            "--service" => service = Some(value),
            "--cacert" => cacert = Some(PathBuf::from(value)),
            "--access-token-file" => access_token_file = Some(PathBuf::from(value)),
            "--pin-file" => pin_file = Some(PathBuf::from(value)),
            "--profile" => {
                if CertificateProfile::parse(&value).is_none() {
                    return Err(Failure::usage(format!(
                        "--profile {value:?}: not a profile name (device, code_signing, or one of \
                         the organisation's)"
                    )));
                }
                profile = value;
            }
            "--days" if renew => {
                days = value
                    .parse()
                    .map_err(|_| Failure::usage(format!("--days {value:?}: not a number")))?
            }
            _ => return Err(Failure::usage(format!("unknown option {flag}\n{USAGE}"))),
        }
    }
    let missing = |what: &str| Failure::usage(format!("{what} is required\n{USAGE}"));
    Ok(Options {
        device_id: device_id.ok_or_else(|| missing("--device-id"))?,
        key: key.ok_or_else(|| missing("--key-label or --key-id"))?,
        token,
        module,
        service: service.ok_or_else(|| missing("--service"))?,
        cacert,
        access_token_file,
        pin_file,
        profile,
        days,
        force,
    })
}

/// A secret from a file (trailing newline dropped) or an environment variable.
fn secret(file: Option<&Path>, variable: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    if let Some(path) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        );
        return Ok(Some(Zeroizing::new(
            text.trim_end_matches(['\r', '\n']).to_string(),
        )));
    }
    Ok(std::env::var(variable)
        .ok()
        .map(Zeroizing::new)
        .filter(|value| !value.is_empty()))
}

/// Our own module: beside this program, in `../lib`, or where the Debian package puts it.
fn default_module() -> Result<PathBuf, Failure> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(MODULE_FILE));
        candidates.push(dir.join("../lib").join(MODULE_FILE));
        candidates.push(dir.join("../lib/x86_64-linux-gnu/pkcs11").join(MODULE_FILE));
    }
    candidates.push(PathBuf::from(INSTALLED_MODULE));
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            Failure::usage(format!(
                "{MODULE_FILE} not found beside this program, in ../lib or at {INSTALLED_MODULE}: \
                 give --module PATH"
            ))
        })
}

fn date(unix: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn run(args: &[String], renew: bool) -> ExitCode {
    let command = if renew { "renew" } else { "enroll" };
    match parse(args, renew).and_then(|options| execute(&options, renew)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("cryptera-pkcs11 {command}: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn execute(options: &Options, renew: bool) -> Result<(), Failure> {
    let access_token =
        secret(options.access_token_file.as_deref(), TOKEN_VARIABLE)?.ok_or_else(|| {
            Failure::usage(format!(
                "no access token: give --access-token-file FILE or set {TOKEN_VARIABLE}"
            ))
        })?;
    let service = Service::new(&options.service, options.cacert.as_deref(), access_token)?;
    let module = match &options.module {
        Some(path) => path.clone(),
        None => default_module()?,
    };
    let pin = secret(options.pin_file.as_deref(), PIN_VARIABLE)?;
    let token = Token::open(&module, &options.token, pin)?;
    let key = token.key(&options.key)?;
    let public = csr::public_key(&key.attributes).map_err(Failure::key)?;
    let spki = public
        .spki
        .to_der()
        .map_err(|e| Failure::general(format!("the key's public key: {e}")))?;
    let old = if renew {
        match due_certificate(&token, &key, &spki, options)? {
            Some(old) => Some(old),
            None => return Ok(()),
        }
    } else {
        None
    };
    let (info, to_be_signed) =
        csr::request_info(&options.device_id, &public).map_err(Failure::general)?;
    let raw_signature = token.sign(&key, public.scheme, &to_be_signed)?;
    let request = csr::assemble(info, public.scheme, &raw_signature).map_err(Failure::general)?;
    let response = service.enroll(&options.device_id, request, &options.profile, renew)?;
    store(&token, &key, &spki, &response, old.as_deref())
}

/// The key's current certificate on the token when it is due for renewal (expires within
/// `--days`, or `--force`); `None` after saying when it expires otherwise.
fn due_certificate(
    token: &Token,
    key: &Key,
    spki: &[u8],
    options: &Options,
) -> Result<Option<Vec<u8>>, Failure> {
    let mut current: Option<(u64, Vec<u8>, String)> = None;
    for object in token.certificates(&key.id)? {
        let Ok(certificate) = Certificate::from_der(&object.der) else {
            continue;
        };
        let tbs = &certificate.tbs_certificate;
        if tbs.subject_public_key_info.to_der().ok().as_deref() != Some(spki) {
            continue;
        }
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
        if current
            .as_ref()
            .is_none_or(|(newest, _, _)| not_after > *newest)
        {
            current = Some((
                not_after,
                object.der.clone(),
                hex(tbs.serial_number.as_bytes()),
            ));
        }
    }
    let Some((not_after, der, serial)) = current else {
        return Err(Failure::key(format!(
            "no certificate for key {:?} (CKA_ID {}) on token {:?}: run `cryptera-pkcs11 enroll` first",
            key.label,
            hex(&key.id),
            token.label
        )));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let left_days = not_after.saturating_sub(now) / 86_400;
    if !options.force && not_after > now + options.days * 86_400 {
        println!(
            "certificate {serial} of key {:?} expires {} (in {left_days} days): not renewed \
             (renewal within {} days of expiry, or --force)",
            key.label,
            date(not_after),
            options.days
        );
        return Ok(None);
    }
    Ok(Some(der))
}

/// The subject's common name, for a CA certificate's label.
fn common_name(certificate: &Certificate) -> String {
    use const_oid::db::rfc4519::CN;
    let subject = &certificate.tbs_certificate.subject;
    subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            der::asn1::Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    der::asn1::PrintableStringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .ok()
        })
        .unwrap_or_else(|| subject.to_string())
}

/// A CA certificate's subject key identifier: the `CKA_ID` its object gets.
fn subject_key_id(certificate: &Certificate) -> Vec<u8> {
    use const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
        .and_then(|ext| SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok())
        .map(|ski| ski.0.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Writes the leaf and each chain certificate the token does not hold yet; after a renewal, removes
/// the key's old certificate object (only once the new one is written). Prints the summary.
fn store(
    token: &Token,
    key: &Key,
    spki: &[u8],
    response: &EnrollResponse,
    old: Option<&[u8]>,
) -> Result<(), Failure> {
    let leaf_der = response.certificate.certificate.0.as_slice();
    let leaf = Certificate::from_der(leaf_der)
        .map_err(|e| Failure::general(format!("the service's certificate does not parse: {e}")))?;
    if leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .ok()
        .as_deref()
        != Some(spki)
    {
        return Err(Failure::general(
            "the service's certificate does not certify this key".into(),
        ));
    }
    let label = if key.label.is_empty() {
        response.device_id.clone()
    } else {
        key.label.clone()
    };
    let mut written = Vec::new();
    let mut present = 0;
    let fields = |der: &[u8]| {
        certificate_fields(der)
            .map_err(|e| Failure::general(format!("the service's certificate: {e}")))
    };
    if token.holding(leaf_der)?.is_empty() {
        token
            .write_certificate(leaf_der, &key.id, &label, &fields(leaf_der)?)
            .map_err(|failure| Failure {
                code: failure.code,
                message: format!(
                    "the service issued certificate {} for device {}, but the token did not take \
                     it ({}); enrolling again returns the same certificate",
                    response.certificate.serial, response.device_id, failure.message
                ),
            })?;
        written.push(format!("{label:?} (CKA_ID {})", hex(&key.id)));
    } else {
        present += 1;
    }
    for ca in &response.chain {
        let der = ca.0.as_slice();
        let certificate = Certificate::from_der(der)
            .map_err(|e| Failure::general(format!("a chain certificate does not parse: {e}")))?;
        if token.holding(der)?.is_empty() {
            let ca_label = common_name(&certificate);
            token.write_certificate(
                der,
                &subject_key_id(&certificate),
                &ca_label,
                &fields(der)?,
            )?;
            written.push(format!("{ca_label:?}"));
        } else {
            present += 1;
        }
    }
    let mut removed = 0;
    if let Some(old) = old.filter(|old| *old != leaf_der) {
        for object in token.certificates(&key.id)? {
            if object.der == old {
                token.destroy(object.handle)?;
                removed += 1;
            }
        }
    }
    let issued = &response.certificate;
    let what = if response.existing {
        "the device's existing certificate"
    } else {
        "new certificate"
    };
    println!(
        "device {}: {what}, serial {}, profile {}, valid until {}",
        response.device_id,
        issued.serial,
        issued.profile.as_str(),
        date(issued.not_after.max(0).unsigned_abs())
    );
    if written.is_empty() {
        println!(
            "token {:?}: nothing written, its {present} certificate(s) were already there",
            token.label
        );
    } else {
        println!(
            "token {:?}: wrote {} certificate object(s): {}{}",
            token.label,
            written.len(),
            written.join(", "),
            match present {
                0 => String::new(),
                n => format!("; {n} already there"),
            }
        );
    }
    if removed == 0
        && old.is_some_and(|old| old != leaf_der && token.holding(old).is_ok_and(|h| h.is_empty()))
    {
        println!(
            "token {:?}: the new certificate replaced the old one of {label:?}",
            token.label
        );
    }
    if removed > 0 {
        println!(
            "token {:?}: removed the old certificate object of {label:?}",
            token.label
        );
    }
    Ok(())
}
