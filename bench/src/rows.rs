//! The benchmark's rows: what each measures on a module, and the raw-engine counterpart.

use crate::raw::{self, rate};
use crate::setup::{Module, PIN};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
pub const OBJECTS: usize = 1000;

/// What a row keeps between its preparation and its measurements.
#[derive(Default)]
pub struct Prepared {
    private: Option<ObjectHandle>,
    public: Option<ObjectHandle>,
    signature: Vec<u8>,
}

/// One measurement of a prepared row on a module for a period: the row's figure.
pub type Measure = Box<dyn Fn(&Module, &mut Prepared, Duration) -> f64>;

pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub prepare: Box<dyn Fn(&Module) -> Prepared>,
    pub measure: Measure,
    pub raw: Option<Box<dyn Fn(Duration) -> f64>>,
}

#[derive(Clone, Copy)]
enum KeyKind {
    Rsa(u64),
    Ec(&'static [u8]),
    Ed25519,
}

fn generate(session: &Session, kind: KeyKind) -> (ObjectHandle, ObjectHandle) {
    let (mechanism, mut public) = match kind {
        KeyKind::Rsa(bits) => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(bits.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
        ),
        KeyKind::Ec(curve) => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(curve.to_vec())],
        ),
        KeyKind::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![Attribute::EcParams(ED25519.to_vec())],
        ),
    };
    public.extend([Attribute::Token(true), Attribute::Verify(true)]);
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
    ];
    session
        .generate_key_pair(&mechanism, &public, &private)
        .expect("C_GenerateKeyPair")
}

fn pss() -> Mechanism<'static> {
    Mechanism::RsaPkcsPss(PkcsPssParams {
        hash_alg: cryptoki::mechanism::MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    })
}

fn eddsa() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
}

/// Signing throughput with `threads` threads, each on its own session.
fn sign_rate(
    module: &Module,
    key: ObjectHandle,
    mechanism: fn() -> Mechanism<'static>,
    data: &[u8],
    threads: usize,
    period: Duration,
) -> f64 {
    let signatures = AtomicU64::new(0);
    let signer_ns = AtomicU64::new(0);
    let writer_start = raw::named_threads_cpu_ns(AUDIT_THREAD);
    let total = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (signatures, signer_ns) = (&signatures, &signer_ns);
                scope.spawn(move || {
                    let session = module.session();
                    let mechanism = mechanism();
                    // A module that lacks the mechanism gets no figure, not a failed run.
                    if session.sign(&mechanism, key, data).is_err() {
                        return f64::NAN;
                    }
                    let cpu_start = raw::thread_cpu_ns();
                    let mut count = 0;
                    let ops = rate(period, || {
                        session.sign(&mechanism, key, data).expect("C_Sign");
                        count += 1;
                    });
                    signatures.fetch_add(count, Ordering::Relaxed);
                    if let (Some(a), Some(b)) = (cpu_start, raw::thread_cpu_ns()) {
                        signer_ns.fetch_add(b.saturating_sub(a), Ordering::Relaxed);
                    }
                    ops
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .sum::<f64>()
    });
    let writer_ns = raw::named_threads_cpu_ns(AUDIT_THREAD).saturating_sub(writer_start);
    let signatures = signatures.into_inner();
    if writer_ns > 0 && signatures > 0 && std::env::var_os("CRYPTERA_BENCH_AUDIT_CPU").is_some() {
        // CPU time per signature of the signing threads and of the module's audit writer thread:
        // on two cores, two signing threads can reach at most 2·s / (s + w) times one thread.
        let s = signer_ns.into_inner() as f64 / signatures as f64;
        let w = writer_ns as f64 / signatures as f64;
        eprintln!(
            "    {threads} thread(s): signer {s:.0} ns/op, audit writer {w:.0} ns/op ({:.0}%), \
             2-thread bound on 2 cores {:.2}x",
            100.0 * w / s,
            2.0 * s / (s + w)
        );
    }
    total
}

/// The module's audit writer thread (see src/audit/mod.rs).
const AUDIT_THREAD: &str = "cryptera-audit";

fn digest_info_sha256() -> Vec<u8> {
    let mut info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    info.extend_from_slice(&[0x42; 32]);
    info
}

fn sign_row(
    name: &str,
    kind: KeyKind,
    mechanism: fn() -> Mechanism<'static>,
    data: Vec<u8>,
    threads: usize,
    raw: Option<Box<dyn Fn(Duration) -> f64>>,
) -> Row {
    Row {
        name: format!(
            "sign {name}, {threads} thread{}",
            if threads > 1 { "s" } else { "" }
        ),
        unit: "ops/s",
        higher_is_better: true,
        prepare: Box::new(move |module| {
            let (public, private) = generate(&module.session(), kind);
            Prepared {
                private: Some(private),
                public: Some(public),
                ..Default::default()
            }
        }),
        measure: Box::new(move |module, prepared, period| {
            sign_rate(
                module,
                prepared.private.expect("key"),
                mechanism,
                &data,
                threads,
                period,
            )
        }),
        raw: if threads == 1 { raw } else { None },
    }
}

pub fn all() -> Vec<Row> {
    let message = vec![0x37u8; 64];
    let mut rows = Vec::new();
    for threads in [1, 2] {
        rows.push(sign_row(
            "RSA-2048 CKM_RSA_PKCS",
            KeyKind::Rsa(2048),
            || Mechanism::RsaPkcs,
            digest_info_sha256(),
            threads,
            Some(Box::new(raw::rsa_sign(2048, false))),
        ));
        rows.push(sign_row(
            "RSA-2048 CKM_SHA256_RSA_PKCS",
            KeyKind::Rsa(2048),
            || Mechanism::Sha256RsaPkcs,
            message.clone(),
            threads,
            Some(Box::new(raw::rsa_sign(2048, true))),
        ));
        rows.push(sign_row(
            "RSA-2048 CKM_RSA_PKCS_PSS",
            KeyKind::Rsa(2048),
            pss,
            vec![0x42; 32],
            threads,
            None,
        ));
        rows.push(sign_row(
            "RSA-3072 CKM_SHA256_RSA_PKCS",
            KeyKind::Rsa(3072),
            || Mechanism::Sha256RsaPkcs,
            message.clone(),
            threads,
            Some(Box::new(raw::rsa_sign(3072, true))),
        ));
        rows.push(sign_row(
            "P-256 CKM_ECDSA",
            KeyKind::Ec(P256),
            || Mechanism::Ecdsa,
            vec![0x42; 32],
            threads,
            Some(Box::new(raw::ecdsa_sign(false))),
        ));
        rows.push(sign_row(
            "P-256 CKM_ECDSA_SHA256",
            KeyKind::Ec(P256),
            || Mechanism::EcdsaSha256,
            message.clone(),
            threads,
            None,
        ));
        rows.push(sign_row(
            "P-384 CKM_ECDSA",
            KeyKind::Ec(P384),
            || Mechanism::Ecdsa,
            vec![0x42; 48],
            threads,
            Some(Box::new(raw::ecdsa_sign(true))),
        ));
        rows.push(sign_row(
            "P-384 CKM_ECDSA_SHA384",
            KeyKind::Ec(P384),
            || Mechanism::EcdsaSha384,
            message.clone(),
            threads,
            None,
        ));
        rows.push(sign_row(
            "Ed25519 CKM_EDDSA",
            KeyKind::Ed25519,
            eddsa,
            message.clone(),
            threads,
            Some(Box::new(raw::ed25519_sign)),
        ));
    }
    rows.push(Row {
        name: "verify P-256 CKM_ECDSA".into(),
        unit: "ops/s",
        higher_is_better: true,
        prepare: Box::new(|module| {
            let session = module.session();
            let (public, private) = generate(&session, KeyKind::Ec(P256));
            let signature = session
                .sign(&Mechanism::Ecdsa, private, &[0x42; 32])
                .expect("sign");
            Prepared {
                private: Some(private),
                public: Some(public),
                signature,
            }
        }),
        measure: Box::new(|module, prepared, period| {
            let session = module.session();
            let key = prepared.public.expect("key");
            rate(period, || {
                session
                    .verify(&Mechanism::Ecdsa, key, &[0x42; 32], &prepared.signature)
                    .expect("verify")
            })
        }),
        raw: Some(Box::new(raw::p256_verify)),
    });
    rows.push(Row {
        name: "10 MiB CKM_SHA256_RSA_PKCS in 1 MiB updates".into(),
        unit: "MiB/s",
        higher_is_better: true,
        prepare: Box::new(|module| {
            let (public, private) = generate(&module.session(), KeyKind::Rsa(2048));
            Prepared {
                private: Some(private),
                public: Some(public),
                ..Default::default()
            }
        }),
        measure: Box::new(|module, prepared, period| {
            let session = module.session();
            let chunk = vec![0x5au8; 1 << 20];
            let key = prepared.private.expect("key");
            10.0 * rate(period, || {
                session
                    .sign_init(&Mechanism::Sha256RsaPkcs, key)
                    .expect("init");
                for _ in 0..10 {
                    session.sign_update(&chunk).expect("update");
                }
                session.sign_final().expect("final");
            })
        }),
        raw: Some(Box::new(raw::sha256_rsa_mib)),
    });
    rows.push(Row {
        name: "10 MiB CKM_SHA256 digest in 1 MiB updates".into(),
        unit: "MiB/s",
        higher_is_better: true,
        prepare: Box::new(|_| Prepared::default()),
        measure: Box::new(|module, _, period| {
            let session = module.session();
            let chunk = vec![0x5au8; 1 << 20];
            10.0 * rate(period, || {
                session.digest_init(&Mechanism::Sha256).expect("init");
                for _ in 0..10 {
                    session.digest_update(&chunk).expect("update");
                }
                session.digest_final().expect("final");
            })
        }),
        raw: Some(Box::new(raw::sha256_mib)),
    });
    rows.push(Row {
        name: "keygen RSA-2048 (median of 20)".into(),
        unit: "ms",
        higher_is_better: false,
        prepare: Box::new(|_| Prepared::default()),
        measure: Box::new(|module, _, _| {
            let session = module.session();
            let mut times: Vec<f64> = (0..20)
                .map(|_| {
                    let start = Instant::now();
                    generate(&session, KeyKind::Rsa(2048));
                    start.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(|a, b| a.total_cmp(b));
            times[times.len() / 2]
        }),
        raw: None,
    });
    for (name, kind, raw) in [
        (
            "P-256",
            KeyKind::Ec(P256),
            Box::new(raw::keygen_ec(false)) as Box<dyn Fn(Duration) -> f64>,
        ),
        ("P-384", KeyKind::Ec(P384), Box::new(raw::keygen_ec(true))),
        ("Ed25519", KeyKind::Ed25519, Box::new(raw::keygen_ed25519)),
    ] {
        rows.push(Row {
            name: format!("keygen {name} (token objects)"),
            unit: "ops/s",
            higher_is_better: true,
            prepare: Box::new(|_| Prepared::default()),
            measure: Box::new(move |module, _, period| {
                let session = module.session();
                rate(period, || {
                    generate(&session, kind);
                })
            }),
            raw: Some(raw),
        });
    }
    rows.extend(object_rows());
    rows
}

fn populate(module: &Module) {
    let session = module.session();
    let existing = session
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .expect("find")
        .len();
    for i in existing..OBJECTS {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Label(format!("object-{i}").into_bytes()),
                Attribute::Application(b"bench".to_vec()),
                Attribute::Value(vec![i as u8; 64]),
            ])
            .expect("C_CreateObject");
    }
}

fn object_rows() -> Vec<Row> {
    let find = |name: &str, template: fn() -> Vec<Attribute>| Row {
        name: format!("C_FindObjects {name} among {OBJECTS} objects"),
        unit: "ops/s",
        higher_is_better: true,
        prepare: Box::new(|module| {
            populate(module);
            Prepared::default()
        }),
        measure: Box::new(move |module, _, period| {
            let session = module.session();
            let template = template();
            rate(period, || {
                session.find_objects(&template).expect("find");
            })
        }),
        raw: None,
    };
    vec![
        Row {
            name: "C_CreateObject (token data object)".into(),
            unit: "ops/s",
            higher_is_better: true,
            prepare: Box::new(|_| Prepared::default()),
            measure: Box::new(|module, _, period| {
                let session = module.session();
                let mut made = Vec::new();
                let ops = rate(period, || {
                    made.push(
                        session
                            .create_object(&[
                                Attribute::Class(ObjectClass::DATA),
                                Attribute::Token(true),
                                Attribute::Label(b"transient".to_vec()),
                                Attribute::Value(vec![1; 64]),
                            ])
                            .expect("C_CreateObject"),
                    );
                });
                for object in made {
                    session.destroy_object(object).expect("destroy");
                }
                ops
            }),
            raw: None,
        },
        find("by label", || {
            vec![Attribute::Label(b"object-500".to_vec())]
        }),
        find("by CKA_ID", || vec![Attribute::Id(vec![0x99, 0x98])]),
        find("all", Vec::new),
        Row {
            name: "C_GetAttributeValue (label + value)".into(),
            unit: "ops/s",
            higher_is_better: true,
            prepare: Box::new(|module| {
                populate(module);
                let session = module.session();
                let object = session
                    .find_objects(&[Attribute::Label(b"object-7".to_vec())])
                    .expect("find")[0];
                Prepared {
                    public: Some(object),
                    ..Default::default()
                }
            }),
            measure: Box::new(|module, prepared, period| {
                let session = module.session();
                let object = prepared.public.expect("object");
                rate(period, || {
                    session
                        .get_attributes(object, &[AttributeType::Label, AttributeType::Value])
                        .expect("get");
                })
            }),
            raw: None,
        },
        Row {
            name: "C_Initialize + open session + login (child process)".into(),
            unit: "ops/s",
            higher_is_better: true,
            prepare: Box::new(|_| Prepared::default()),
            measure: Box::new(|module, _, period| child(module, "--init-rate", period)),
            raw: None,
        },
        Row {
            name: format!("resident memory, module loaded and {OBJECTS} objects found"),
            unit: "MiB",
            higher_is_better: false,
            prepare: Box::new(|module| {
                populate(module);
                Prepared::default()
            }),
            measure: Box::new(|module, _, period| child(module, "--rss", period)),
            raw: None,
        },
    ]
}

/// Runs this binary again as a child that loads only `module`, and reads the number it prints.
fn child(module: &Module, what: &str, period: Duration) -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg("--rss-child")
        .arg(&module.path)
        .arg(what)
        .arg(period.as_secs_f64().to_string())
        .output()
        .expect("child");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

/// The child side of [`child`]: `--rss` prints resident MiB after finding every object; `--init-rate`
/// prints how many initialise + open + login + finalize cycles run per second.
pub fn rss_child(path: &std::path::Path, what: &std::path::Path) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let mut args = std::env::args().skip(4);
    let period = Duration::from_secs_f64(args.next().and_then(|v| v.parse().ok()).unwrap_or(1.0));
    let open = || {
        let pkcs11 = Pkcs11::new(path).expect("load");
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("init");
        let slot = pkcs11
            .get_slots_with_initialized_token()
            .expect("slots")
            .into_iter()
            .find(|s| {
                pkcs11
                    .get_token_info(*s)
                    .map(|t| t.label() == "bench")
                    .unwrap_or(false)
            })
            .expect("bench token");
        let session = pkcs11.open_rw_session(slot).expect("session");
        session
            .login(UserType::User, Some(&AuthPin::new(PIN.into())))
            .expect("login");
        (pkcs11, session)
    };
    if what.as_os_str() == "--rss" {
        let (_pkcs11, session) = open();
        let found = session.find_objects(&[]).expect("find");
        for object in found.iter().take(OBJECTS) {
            let _ = session.get_attributes(*object, &[AttributeType::Label]);
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        println!("{}", kib / 1024.0);
    } else {
        let ops = rate(period, || {
            let (pkcs11, session) = open();
            drop(session);
            pkcs11.finalize().expect("finalize");
        });
        println!("{ops}");
    }
}
