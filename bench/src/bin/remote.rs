//! `cryptera-bench-remote`: remote signing through the module (slot 10, keys in the Cryptera service)
//! against calling the service's REST API directly with the same HTTP stack, at 1 and 8 threads.
//! The difference is what the module adds (hashing, object lookup, PKCS#11 calls, audit record).
//!
//! ```text
//! cryptera-bench-remote --module M.so --url URL --token TOKEN [--seconds S] [--rounds N] LABEL...
//! ```
//! Each label names a service key (its algorithm decides the mechanism). The module must be configured
//! (`CRYPTERA_PKCS11_CONFIG`) with slot 10 on the same service. Prints a Markdown table.

use cryptera_proto::keys::{KeyAlgorithm, KeyInfo, KeyList, Mechanism as ServiceMechanism};
use cryptera_proto::sign::{SignRequest, SignResponse};
use cryptera_proto::Base64Bytes;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Makes every idempotency key of the process unique across runs.
static RUN: AtomicU64 = AtomicU64::new(0);

struct Options {
    module: String,
    url: String,
    token: String,
    seconds: f64,
    rounds: usize,
    labels: Vec<String>,
}

fn options() -> Options {
    let mut options = Options {
        module: String::new(),
        url: String::new(),
        token: String::new(),
        seconds: 2.0,
        rounds: 2,
        labels: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match arg.as_str() {
            "--module" => options.module = value(),
            "--url" => options.url = value(),
            "--token" => options.token = value(),
            "--seconds" => options.seconds = value().parse().expect("--seconds S"),
            "--rounds" => options.rounds = value().parse().expect("--rounds N"),
            _ => options.labels.push(arg),
        }
    }
    assert!(
        !options.module.is_empty() && !options.url.is_empty() && !options.token.is_empty(),
        "usage: cryptera-bench-remote --module M.so --url URL --token TOKEN LABEL..."
    );
    options
}

/// Latencies of one run: operations per second, p50 and p99 in milliseconds.
struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

/// Runs `op` on `threads` threads for `seconds`; each thread gets its own state from `setup`.
fn run<S, F>(threads: usize, seconds: f64, setup: &(dyn Fn() -> S + Sync), op: F) -> Figures
where
    F: Fn(&mut S, u64) + Sync,
{
    let counter = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = setup();
                    let mut own = Vec::new();
                    while Instant::now() < deadline {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let start = Instant::now();
                        op(&mut state, n);
                        own.push(start.elapsed());
                    }
                    own
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bench thread"))
            .collect()
    });
    figures(latencies, started.elapsed())
}

fn service_keys(options: &Options) -> Vec<KeyInfo> {
    let client = reqwest::blocking::Client::new();
    let list: KeyList = client
        .get(format!("{}/v1/keys", options.url))
        .bearer_auth(&options.token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("list the service's keys");
    list.keys
}

/// The PKCS#11 mechanism and the service request that sign the same thing with a key.
fn mechanisms(algorithm: KeyAlgorithm) -> (Mechanism<'static>, ServiceMechanism, bool) {
    match algorithm {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (
            Mechanism::Sha256RsaPkcs,
            ServiceMechanism::RsaPkcs1Sha256,
            false,
        ),
        KeyAlgorithm::EcdsaP256 => (Mechanism::EcdsaSha256, ServiceMechanism::EcdsaSha256, false),
        KeyAlgorithm::EcdsaP384 => (Mechanism::EcdsaSha384, ServiceMechanism::EcdsaSha384, false),
        KeyAlgorithm::Ed25519 => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            ServiceMechanism::Ed25519,
            true,
        ),
    }
}

fn main() {
    let options = options();
    let keys = service_keys(&options);
    assert!(
        std::env::var_os("CRYPTERA_PKCS11_CONFIG").is_some(),
        "CRYPTERA_PKCS11_CONFIG must name a config with slot 10 on the service"
    );
    let pkcs11 = Pkcs11::new(&options.module).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = pkcs11
        .get_all_slots()
        .expect("slots")
        .into_iter()
        .find(|s| s.id() == 10)
        .expect("slot 10 (the remote token) in the module's config");
    let login = pkcs11.open_ro_session(slot).expect("session");
    login
        .login(
            UserType::User,
            Some(&AuthPin::new(options.token.clone().into())),
        )
        .expect("login with the access token");
    let data = b"release artifact digest input".to_vec();
    println!("| key | threads | module sig/s | p50 / p99 ms | REST API sig/s | p50 / p99 ms | module adds (p50) |");
    println!("|---|---|---|---|---|---|---|");
    for label in &options.labels {
        let info = keys
            .iter()
            .find(|k| &k.label == label)
            .unwrap_or_else(|| panic!("no service key {label}"));
        let algorithm = info.algorithm;
        let (_, service_mechanism, sends_data) = mechanisms(algorithm);
        for threads in [1, 8] {
            let mut best_module: Option<Figures> = None;
            let mut best_rest: Option<Figures> = None;
            for _ in 0..options.rounds {
                let module = run(
                    threads,
                    options.seconds,
                    &|| {
                        let session = pkcs11.open_ro_session(slot).expect("session");
                        let key = session
                            .find_objects(&[
                                Attribute::Class(ObjectClass::PRIVATE_KEY),
                                Attribute::Label(label.as_bytes().to_vec()),
                            ])
                            .expect("find")[0];
                        (session, key)
                    },
                    |(session, key), _| {
                        let (mechanism, _, _) = mechanisms(algorithm);
                        session.sign(&mechanism, *key, &data).expect("module sign");
                    },
                );
                let url = format!("{}/v1/keys/{}/sign", options.url, info.id);
                let rest = run(
                    threads,
                    options.seconds,
                    &|| reqwest::blocking::Client::new(),
                    |client, n| {
                        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
                        let (digest, body) = if sends_data {
                            (None, Some(Base64Bytes::from(data.clone())))
                        } else {
                            let digest = match service_mechanism {
                                ServiceMechanism::EcdsaSha384 => {
                                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, &data)
                                        .as_ref()
                                        .to_vec()
                                }
                                _ => digest.as_ref().to_vec(),
                            };
                            (Some(Base64Bytes::from(digest)), None)
                        };
                        let request = SignRequest {
                            mechanism: service_mechanism,
                            digest,
                            data: body,
                            artifact: Default::default(),
                            idempotency_key: format!(
                                "bench-{}-{}-{n}",
                                std::process::id(),
                                RUN.fetch_add(1, Ordering::Relaxed)
                            ),
                        };
                        let answer: SignResponse = client
                            .post(&url)
                            .bearer_auth(&options.token)
                            .json(&request)
                            .send()
                            .and_then(|r| r.error_for_status())
                            .and_then(|r| r.json())
                            .expect("REST sign");
                        assert!(!answer.signature.as_slice().is_empty());
                    },
                );
                if best_module
                    .as_ref()
                    .is_none_or(|b| module.per_second > b.per_second)
                {
                    best_module = Some(module);
                }
                if best_rest
                    .as_ref()
                    .is_none_or(|b| rest.per_second > b.per_second)
                {
                    best_rest = Some(rest);
                }
            }
            let (m, r) = (best_module.expect("a round"), best_rest.expect("a round"));
            println!(
                "| {label} ({}) | {threads} | {:.0} | {:.2} / {:.2} | {:.0} | {:.2} / {:.2} | {:+.0} µs |",
                info.algorithm.as_str(),
                m.per_second,
                m.p50_ms,
                m.p99_ms,
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                (m.p50_ms - r.p50_ms) * 1000.0
            );
        }
    }
}
