//! Multi-process stress of one token: N processes × M threads creating token objects, finding them by
//! label and by ID, signing with token keys and destroying objects for a bounded time, then a check
//! that the store holds exactly what the processes reported (see docs/ROBUSTNESS.md and
//! pkcs11-tests/scripts/stress.sh).
//!
//! `stress run [--processes N] [--threads M] [--seconds S] [--dir DIR] [--grace G] [--keep]`: the
//! whole run. It writes a module config (store in DIR, cheap KDF), initialises a token in a child
//! process, starts N `stress worker` processes, kills any still running G seconds after the deadline
//! (a hang is a failure), then runs `stress check`. Prints the figures and exits non-zero on any
//! failure. DIR is removed after a run that passed, unless `--keep`.
//!
//! `stress worker <id> <threads> <seconds> <log>`: one process. Each thread works in its own session
//! on objects of its own (token data objects, public or private, and generated AES keys with an ID),
//! so it knows exactly what must exist, while the other threads and processes change the same store.
//! Every success is appended to `<log>` right after the call returns: `created <label>`,
//! `destroyed <label>`, `key <label>` (a thread's signing key pair); failures as `error ...`.
//!
//! `stress check <dir>`: reads every log, then opens the token and checks with a full `C_FindObjects`
//! that every object reported created and not destroyed exists exactly once, nothing reported
//! destroyed exists, no object exists that nobody reported, every key pair is whole, and each live
//! object is found by its label and by its ID.
//!
//! The module is `CRYPTERA_PKCS11_MODULE`, else the workspace's release build.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const LABEL: &str = "stress";
const SO_PIN: &str = "so-pin-5678";
const USER_PIN: &str = "user-1234";
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Objects one thread keeps alive at most; past it, it destroys before it creates.
const LIVE_PER_THREAD: usize = 24;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["run", options @ ..] => run(options),
        ["init"] => init(),
        ["worker", id, threads, seconds, log] => {
            worker(id, threads.parse().unwrap_or(1), seconds.parse().unwrap_or(1), Path::new(log))
        }
        ["check", dir] => check(Path::new(dir)),
        _ => Err("usage: stress run [--processes N] [--threads M] [--seconds S] [--dir DIR] [--grace G] [--keep]\n       \
                  stress init | stress worker ID THREADS SECONDS LOG | stress check DIR"
            .into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stress: {err}");
            ExitCode::FAILURE
        }
    }
}

fn module_path() -> PathBuf {
    std::env::var_os("CRYPTERA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libcryptera_pkcs11.so")
        })
}

fn context() -> Result<Pkcs11> {
    let context = Pkcs11::new(module_path())?;
    context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    Ok(context)
}

fn token_slot(context: &Pkcs11) -> Result<Slot> {
    for slot in context.get_slots_with_initialized_token()? {
        if context.get_token_info(slot)?.label().trim_end() == LABEL {
            return Ok(slot);
        }
    }
    Err(format!("no token labelled {LABEL}").into())
}

fn user_session(context: &Pkcs11, slot: Slot) -> Result<Session> {
    let session = context.open_rw_session(slot)?;
    match session.login(UserType::User, Some(&AuthPin::from(USER_PIN))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(err) => Err(err.into()),
    }
}

// ---- run ----

fn option(options: &[&str], name: &str, default: u64) -> Result<u64> {
    match options.iter().position(|o| *o == name) {
        Some(at) => Ok(options
            .get(at + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn run(options: &[&str]) -> Result<()> {
    let processes = option(options, "--processes", 4)?;
    let threads = option(options, "--threads", 4)?;
    let seconds = option(options, "--seconds", 30)?;
    let grace = option(options, "--grace", 60)?;
    let dir = match options.iter().position(|o| *o == "--dir") {
        Some(at) => PathBuf::from(options.get(at + 1).ok_or("--dir needs a value")?),
        None => std::env::temp_dir().join(format!("cryptera-stress.{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs"))?;
    let config = dir.join("cryptera.toml");
    std::fs::write(
        &config,
        format!(
            "store_dir = {:?}\nkdf_memory_kib = 64\nkdf_iterations = 1\nmax_pin_attempts = 100\n",
            dir.join("store").display().to_string()
        ),
    )?;
    let exe = std::env::current_exe()?;
    let command = |args: &[String]| {
        let mut command = Command::new(&exe);
        command
            .args(args)
            .env("CRYPTERA_PKCS11_CONFIG", &config)
            .env("CRYPTERA_PKCS11_MODULE", module_path());
        command
    };
    println!(
        "stress: {processes} processes x {threads} threads for {seconds} s on one token ({})",
        dir.display()
    );
    let status = command(&["init".into()]).status()?;
    if !status.success() {
        return Err("token initialisation failed".into());
    }
    let started = Instant::now();
    let mut children: Vec<(u64, Child)> = Vec::new();
    for id in 0..processes {
        let log = dir.join("logs").join(format!("p{id}.log"));
        let args = [
            "worker".to_owned(),
            id.to_string(),
            threads.to_string(),
            seconds.to_string(),
            log.display().to_string(),
        ];
        children.push((id, command(&args).spawn()?));
    }
    let deadline = started + Duration::from_secs(seconds + grace);
    let mut failures = Vec::new();
    for (id, child) in &mut children {
        loop {
            match child.try_wait()? {
                Some(status) if status.success() => break,
                Some(status) => {
                    failures.push(format!("process {id} failed ({status})"));
                    break;
                }
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!(
                        "process {id} still running {grace} s after the deadline: hung (killed)"
                    ));
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    let elapsed = started.elapsed();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for id in 0..processes {
        let text = std::fs::read_to_string(dir.join("logs").join(format!("p{id}.log")))
            .unwrap_or_default();
        for line in text.lines() {
            if let Some(stats) = line.strip_prefix("stats ") {
                for pair in stats.split_whitespace() {
                    if let Some((name, value)) = pair.split_once('=') {
                        *totals.entry(name.to_owned()).or_default() +=
                            value.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            if let Some(error) = line.strip_prefix("error ") {
                failures.push(format!("process {id}: {error}"));
            }
        }
    }
    let total: u64 = totals.values().sum();
    let figures: Vec<String> = totals.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "stress: {total} operations in {:.1} s ({:.0}/s): {}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        figures.join(" ")
    );
    let check = command(&["check".into(), dir.display().to_string()]).status()?;
    if !check.success() {
        failures.push("the final check failed".into());
    }
    if failures.is_empty() {
        println!("stress: ok");
        if !options.contains(&"--keep") {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    } else {
        for failure in failures.iter().take(50) {
            eprintln!("stress: FAIL {failure}");
        }
        Err(format!(
            "{} failures; the run is kept in {}",
            failures.len(),
            dir.display()
        )
        .into())
    }
}

fn init() -> Result<()> {
    let context = context()?;
    let slot = context
        .get_all_slots()?
        .into_iter()
        .find(|slot| {
            context
                .get_token_info(*slot)
                .is_ok_and(|info| !info.token_initialized())
        })
        .ok_or("no free slot")?;
    context.init_token(slot, &AuthPin::from(SO_PIN), LABEL)?;
    let session = context.open_rw_session(slot)?;
    session.login(UserType::So, Some(&AuthPin::from(SO_PIN)))?;
    session.init_pin(&AuthPin::from(USER_PIN))?;
    Ok(())
}

// ---- worker ----

/// The log of one worker process: one line per reported success or failure, written (and flushed)
/// right after the call returns.
struct Log(Mutex<std::fs::File>);

impl Log {
    fn line(&self, text: &str) {
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(format!("{text}\n").as_bytes());
        let _ = file.flush();
    }
}

#[derive(Default)]
struct Stats {
    create: AtomicU64,
    find: AtomicU64,
    sign: AtomicU64,
    destroy: AtomicU64,
    scan: AtomicU64,
    errors: AtomicU64,
}

/// xorshift64*: a per-thread stream of choices, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn worker(id: &str, threads: u64, seconds: u64, log_path: &Path) -> Result<()> {
    let log = Arc::new(Log(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?,
    )));
    let context = context()?;
    let slot = token_slot(&context)?;
    // Login is per token and process: this session keeps it for the threads' sessions.
    let _login = user_session(&context, slot)?;
    let stats = Arc::new(Stats::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for thread in 0..threads {
        let (context, log, stats) = (context.clone(), log.clone(), stats.clone());
        let name = format!("p{id}-t{thread}");
        handles.push(std::thread::spawn(move || {
            if let Err(err) = thread_work(&context, slot, &name, deadline, &log, &stats) {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                log.line(&format!("error {name}: {err}"));
            }
        }));
    }
    for handle in handles {
        if handle.join().is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            log.line("error a thread panicked");
        }
    }
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    log.line(&format!(
        "stats create={} find={} sign={} destroy={} scan={}",
        load(&stats.create),
        load(&stats.find),
        load(&stats.sign),
        load(&stats.destroy),
        load(&stats.scan)
    ));
    log.line("done");
    match load(&stats.errors) {
        0 => Ok(()),
        n => Err(format!("{n} errors, see {}", log_path.display()).into()),
    }
}

fn label_template(label: &str) -> Vec<Attribute> {
    vec![Attribute::Label(label.as_bytes().to_vec())]
}

/// Finds an object by its label and, when it is a key, by its ID: exactly one, the given handle.
fn find_own(session: &Session, label: &str, handle: ObjectHandle) -> Result<()> {
    let found = find_one(
        session,
        &label_template(label),
        &format!("{label} by label"),
    )?;
    if found != handle {
        return Err(format!("{label}: another handle than the one created").into());
    }
    let class = session.get_attributes(handle, &[AttributeType::Class])?;
    if class.contains(&Attribute::Class(ObjectClass::SECRET_KEY)) {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(label.as_bytes().to_vec()),
        ];
        if find_one(session, &template, &format!("{label} by ID"))? != handle {
            return Err(format!("{label}: another handle by ID than the one created").into());
        }
    }
    Ok(())
}

fn find_one(session: &Session, template: &[Attribute], what: &str) -> Result<ObjectHandle> {
    match session.find_objects(template)?.as_slice() {
        [one] => Ok(*one),
        found => Err(format!("{what}: found {} objects, expected 1", found.len()).into()),
    }
}

fn thread_work(
    context: &Pkcs11,
    slot: Slot,
    name: &str,
    deadline: Instant,
    log: &Log,
    stats: &Stats,
) -> Result<()> {
    let session = context.open_rw_session(slot)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15
        ^ u64::from(std::process::id()) << 20
        ^ name.len() as u64
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b))));
    // A key pair of this thread's own, to sign with throughout.
    let key_label = format!("key-{name}");
    session.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Label(key_label.as_bytes().to_vec()),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Token(true),
            Attribute::Label(key_label.as_bytes().to_vec()),
            Attribute::Sign(true),
        ],
    )?;
    log.line(&format!("key {key_label}"));
    let mut live: Vec<(String, ObjectHandle)> = Vec::new();
    let mut serial = 0u64;
    while Instant::now() < deadline {
        let roll = rng.below(100);
        let outcome = if roll < 35 && live.len() < LIVE_PER_THREAD {
            serial += 1;
            let label = format!("obj-{name}-{serial}");
            let created = if rng.below(2) == 0 {
                // A data object, public or private (sealed in the store).
                let value: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
                session.create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(rng.below(2) == 0),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Value(value),
                ])
            } else {
                // A secret key generated in the token, with an ID.
                session.generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(label.as_bytes().to_vec()),
                        Attribute::Id(label.as_bytes().to_vec()),
                    ],
                )
            };
            created
                .map(|handle| {
                    log.line(&format!("created {label}"));
                    live.push((label, handle));
                    stats.create.fetch_add(1, Ordering::Relaxed);
                })
                .map_err(Into::into)
        } else if roll < 60 && !live.is_empty() {
            let (label, handle) = &live[rng.below(live.len() as u64) as usize];
            stats.find.fetch_add(1, Ordering::Relaxed);
            find_own(&session, label, *handle)
        } else if roll < 75 {
            stats.sign.fetch_add(1, Ordering::Relaxed);
            sign_once(&session, &key_label, &mut rng)
        } else if roll < 95 || live.len() >= LIVE_PER_THREAD {
            if live.is_empty() {
                continue;
            }
            let (label, handle) = live.swap_remove(rng.below(live.len() as u64) as usize);
            session
                .destroy_object(handle)
                .map(|()| {
                    log.line(&format!("destroyed {label}"));
                    stats.destroy.fetch_add(1, Ordering::Relaxed);
                })
                .map_err(|err| format!("destroying {label}: {err}").into())
        } else {
            stats.scan.fetch_add(1, Ordering::Relaxed);
            scan(&session)
        };
        if let Err(err) = outcome {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            log.line(&format!("error {name}: {err}"));
        }
    }
    Ok(())
}

fn sign_once(session: &Session, key_label: &str, rng: &mut Rng) -> Result<()> {
    let private = find_one(
        session,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ],
        key_label,
    )?;
    let public = find_one(
        session,
        &[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ],
        key_label,
    )?;
    let data: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
    let signature = session.sign(&Mechanism::EcdsaSha256, private, &data)?;
    session.verify(&Mechanism::EcdsaSha256, public, &data, &signature)?;
    Ok(())
}

/// Every object of the token, read while others change it: objects that vanish between the search
/// and the read are fine, any other failure is not.
fn scan(session: &Session) -> Result<()> {
    for handle in session.find_objects(&[])? {
        match session.get_attributes(handle, &[AttributeType::Class, AttributeType::Label]) {
            Ok(_) | Err(Error::Pkcs11(RvError::ObjectHandleInvalid, _)) => {}
            Err(err) => {
                return Err(format!("reading an object found by a full search: {err}").into())
            }
        }
    }
    Ok(())
}

// ---- check ----

fn check(dir: &Path) -> Result<()> {
    let mut created = BTreeSet::new();
    let mut destroyed = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir.join("logs"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        if text.lines().last() != Some("done") {
            problems.push(format!("{} did not finish", path.display()));
        }
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("created", label)) => {
                    created.insert(label.to_owned());
                }
                Some(("destroyed", label)) => {
                    destroyed.insert(label.to_owned());
                }
                Some(("key", label)) => {
                    keys.insert(label.to_owned());
                }
                _ => {}
            }
        }
    }
    let context = context()?;
    let slot = token_slot(&context)?;
    let session = user_session(&context, slot)?;
    // A full search, every object's class and label read back: the store opens and decodes.
    let mut data: BTreeMap<String, Vec<ObjectHandle>> = BTreeMap::new();
    let mut key_objects: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let all = session.find_objects(&[])?;
    for handle in &all {
        let attrs =
            session.get_attributes(*handle, &[AttributeType::Class, AttributeType::Label])?;
        let (mut class, mut label) = (None, String::new());
        for attr in attrs {
            match attr {
                Attribute::Class(c) => class = Some(c),
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                _ => {}
            }
        }
        match class {
            Some(ObjectClass::DATA | ObjectClass::SECRET_KEY) => {
                data.entry(label).or_default().push(*handle)
            }
            Some(ObjectClass::PRIVATE_KEY) => key_objects.entry(label).or_default().0 += 1,
            Some(ObjectClass::PUBLIC_KEY) => key_objects.entry(label).or_default().1 += 1,
            other => problems.push(format!("unexpected object {label:?} of class {other:?}")),
        }
    }
    let expected: BTreeSet<&String> = created.difference(&destroyed).collect();
    for label in &expected {
        match data.get(*label).map_or(0, Vec::len) {
            1 => {}
            0 => problems.push(format!(
                "lost: {label} was reported created and never destroyed"
            )),
            n => problems.push(format!("duplicated: {label} exists {n} times")),
        }
    }
    for label in &destroyed {
        if !created.contains(label) {
            problems.push(format!("{label} reported destroyed but never created"));
        }
        if data.contains_key(label) {
            problems.push(format!(
                "resurrected: {label} was reported destroyed and exists"
            ));
        }
    }
    for label in data.keys() {
        if !created.contains(label) {
            problems.push(format!(
                "ghost: {label} exists but nobody reported creating it"
            ));
        }
    }
    for label in &keys {
        if key_objects.get(label) != Some(&(1, 1)) {
            problems.push(format!(
                "key pair {label}: {:?} (private, public)",
                key_objects.get(label)
            ));
        }
    }
    for label in key_objects.keys() {
        if !keys.contains(label) {
            problems.push(format!("ghost key {label}"));
        }
    }
    // The search index agrees with the full search.
    for label in &expected {
        if let Some([handle]) = data.get(*label).map(Vec::as_slice) {
            if let Err(err) = find_own(&session, label, *handle) {
                problems.push(format!("search: {err}"));
            }
        }
    }
    println!(
        "stress check: {} objects in the store ({} live data objects and secret keys, {} key pairs); \
         {} created and {} destroyed over the run",
        all.len(),
        expected.len(),
        keys.len(),
        created.len(),
        destroyed.len()
    );
    if problems.is_empty() {
        println!("stress check: ok");
        Ok(())
    } else {
        for problem in problems.iter().take(50) {
            eprintln!("stress check: FAIL {problem}");
        }
        Err(format!("{} problems", problems.len()).into())
    }
}
