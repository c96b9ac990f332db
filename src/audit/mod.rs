//! Audit hooks: what the module records of the use of keys on this machine, whichever backend holds
//! them. Records go to a tamper-evident JSON-lines file (by default `audit.jsonl` in the store
//! directory) and optionally to syslog; a policy command may be asked before each signature.
//! Records never contain data, PINs or key material: only the SHA-256 of signed data.

pub mod chain;
pub mod jsonl;
pub mod policy;
pub mod verify;

use crate::config::AuditConfig;
use crate::error::{Error, Result};
use chain::Record;
use cryptoki_sys::*;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A policy callback registered by the application (`C_CrypteraSetPolicyCallback`): given the event
/// as JSON, it answers whether the signature may proceed.
pub type PolicyCallback = Arc<dyn Fn(&str) -> bool + Send + Sync>;

static CALLBACK: std::sync::RwLock<Option<PolicyCallback>> = std::sync::RwLock::new(None);

/// Installs (or with `None` removes) the process-wide policy callback.
pub fn set_callback(hook: Option<PolicyCallback>) {
    if let Ok(mut slot) = CALLBACK.write() {
        *slot = hook;
    }
}

fn callback() -> Option<PolicyCallback> {
    CALLBACK.read().ok().and_then(|slot| slot.clone())
}

/// What happened, as the caller of [`Auditor::record`] describes it.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub kind: &'static str,
    pub rv: CK_RV,
    pub slot: Option<CK_SLOT_ID>,
    pub token: Option<Arc<str>>,
    pub key_id: Option<Arc<[u8]>>,
    pub key_label: Option<Arc<[u8]>>,
    pub mechanism: Option<CK_MECHANISM_TYPE>,
    pub data_sha256: Option<[u8; 32]>,
    pub user_type: Option<&'static str>,
    /// The Cryptera service's request id, for operations on remote tokens.
    pub request_id: Option<Arc<str>>,
}

/// Who this process is, found once.
#[derive(Clone, Debug)]
struct Identity {
    pid: u32,
    exe: String,
    uid: u32,
    user: String,
}

impl Identity {
    fn current() -> Identity {
        let uid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap_or(0);
        let user = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| {
                passwd.lines().find_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let id = fields.nth(1)?.parse::<u32>().ok()?;
                    (id == uid).then(|| name.to_string())
                })
            })
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| uid.to_string());
        Identity {
            pid: std::process::id(),
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            uid,
            user,
        }
    }
}

enum Writer {
    /// Records are written by a background thread; the operation does not wait.
    Background {
        /// Senders share a read lock; only `flush` takes the write lock, to close the queue.
        queue: std::sync::RwLock<Option<mpsc::Sender<(Event, std::time::SystemTime)>>>,
        thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    },
    /// Records are written before the operation returns (mandatory audit).
    Inline(Arc<jsonl::JsonlFile>),
}

pub struct Auditor {
    identity: Identity,
    writer: Option<Writer>,
    syslog: Option<std::path::PathBuf>,
    mandatory: bool,
    policy: Option<policy::Policy>,
    warned: Arc<AtomicBool>,
}

fn warn_once(warned: &AtomicBool, what: &str) {
    if !warned.swap(true, Ordering::Relaxed) {
        eprintln!("cryptera-pkcs11: audit records cannot be written ({what}); later failures are not reported");
    }
}

/// The name of a return value, as audit records show it.
pub fn rv_name(rv: CK_RV) -> String {
    let mut name = String::new();
    push_rv_name(&mut name, rv);
    name
}

fn push_rv_name(out: &mut String, rv: CK_RV) {
    let name = match rv {
        CKR_OK => "CKR_OK",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_FUNCTION_REJECTED => "CKR_FUNCTION_REJECTED",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        CKR_TEMPLATE_INCOMPLETE => "CKR_TEMPLATE_INCOMPLETE",
        CKR_TEMPLATE_INCONSISTENT => "CKR_TEMPLATE_INCONSISTENT",
        CKR_ATTRIBUTE_READ_ONLY => "CKR_ATTRIBUTE_READ_ONLY",
        CKR_ACTION_PROHIBITED => "CKR_ACTION_PROHIBITED",
        _ => {
            let _ = write!(out, "0x{rv:08x}");
            return;
        }
    };
    out.push_str(name);
}

fn push_mechanism_name(out: &mut String, mechanism: CK_MECHANISM_TYPE) {
    match crate::mechanism::name(mechanism) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "0x{mechanism:08x}");
        }
    }
}

impl Auditor {
    pub fn new(config: &AuditConfig, store_dir: &Path, may_create_threads: bool) -> Auditor {
        let identity = Identity::current();
        let warned = Arc::new(AtomicBool::new(false));
        let writer = config.enabled.then(|| {
            let path = config
                .file
                .clone()
                .unwrap_or_else(|| store_dir.join("audit.jsonl"));
            let file = Arc::new(jsonl::JsonlFile::new(path, config.mandatory));
            if config.mandatory || !may_create_threads {
                Writer::Inline(file)
            } else {
                let (sender, receiver) = mpsc::channel::<(Event, std::time::SystemTime)>();
                let warned = warned.clone();
                let identity = identity.clone();
                let thread = std::thread::Builder::new()
                    .name("cryptera-audit".into())
                    .spawn(move || {
                        // Records are formatted here, off the caller's thread.
                        let mut last_batch = None;
                        // Records are filled in place batch after batch: their strings keep their
                        // buffers, so a busy writer does not allocate a dozen strings per record.
                        let mut records: Vec<Record> = Vec::new();
                        while let Some(batch) = next_batch(&receiver, &mut last_batch) {
                            if records.len() < batch.len() {
                                records.resize_with(batch.len(), Record::default);
                            }
                            for (record, (event, time)) in records.iter_mut().zip(&batch) {
                                fill_record(record, &identity, event, *time);
                            }
                            let count = batch.len();
                            drop(batch);
                            if let Err(err) = file.append(&mut records[..count]) {
                                warn_once(&warned, &err.to_string());
                            }
                        }
                    })
                    .ok();
                Writer::Background {
                    queue: std::sync::RwLock::new(Some(sender)),
                    thread: Mutex::new(thread),
                }
            }
        });
        let policy = config.policy_command.clone().map(|command| {
            policy::Policy::new(
                command,
                std::time::Duration::from_millis(config.policy_timeout_ms),
            )
        });
        Auditor {
            identity,
            writer,
            syslog: config.syslog.then(|| config.syslog_socket.clone()),
            mandatory: config.mandatory,
            policy,
            warned,
        }
    }

    /// Records `event`. With mandatory audit a record that cannot be written is `CKR_DEVICE_ERROR`;
    /// otherwise the failure is reported once on stderr.
    pub fn record(&self, event: Event) -> Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let now = std::time::SystemTime::now();
        if let Some(socket) = &self.syslog {
            syslog(socket, &to_record(&self.identity, &event, now));
        }
        match writer {
            Writer::Inline(file) => {
                match file.append(&mut [to_record(&self.identity, &event, now)]) {
                    Ok(()) => Ok(()),
                    Err(e) if self.mandatory => Err(Error::Device(format!("audit: {e}"))),
                    Err(e) => {
                        warn_once(&self.warned, &e.to_string());
                        Ok(())
                    }
                }
            }
            Writer::Background { queue, .. } => {
                let sent = queue
                    .read()
                    .ok()
                    .and_then(|q| q.as_ref().map(|s| s.send((event, now)).is_ok()));
                if sent != Some(true) {
                    warn_once(&self.warned, "writer stopped");
                }
                Ok(())
            }
        }
    }

    /// Whether a policy command or callback must be asked before signatures.
    pub fn has_policy(&self) -> bool {
        self.policy.is_some() || callback().is_some()
    }

    /// Asks the policy command (if any) whether the signing operation in `event` may run.
    pub fn ask_policy(&self, event: &Event) -> Result<()> {
        let hook = callback();
        if self.policy.is_none() && hook.is_none() {
            return Ok(());
        }
        let record = to_record(&self.identity, event, std::time::SystemTime::now());
        let json = serde_json::to_string(&record).unwrap_or_default();
        let command_allows = self.policy.as_ref().is_none_or(|p| p.allows(&json));
        let callback_allows = hook.is_none_or(|h| h(&json));
        if command_allows && callback_allows {
            Ok(())
        } else {
            Err(Error::FunctionRejected)
        }
    }

    /// Writes every pending record (the writer thread drains its queue and stops).
    pub fn flush(&self) {
        if let Some(Writer::Background { queue, thread }) = &self.writer {
            if let Ok(mut queue) = queue.write() {
                queue.take();
            }
            if let Some(handle) = thread.lock().ok().and_then(|mut t| t.take()) {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Waits for the next records to write; `None` once the queue is closed and empty. While records keep
/// coming the writer polls every 10 ms instead of parking, so a signing thread never pays for waking it;
/// after a quiet spell it parks until the next record. A busy writer also leaves at least `POLL` between
/// the starts of two batches: each batch costs the file's lock and the head file's rename, which a
/// signer making 100,000 records a second must not pay hundreds of times a second (on two cores that
/// write time is taken from the second signing thread). A record after a quiet spell is written at once.
fn next_batch(
    receiver: &mpsc::Receiver<(Event, std::time::SystemTime)>,
    last_batch: &mut Option<std::time::Instant>,
) -> Option<Vec<(Event, std::time::SystemTime)>> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(10);
    const POLLS_BEFORE_PARKING: u32 = 20;
    const MAX_BATCH: usize = 65_536;
    let mut idle = 0;
    let first = loop {
        match receiver.try_recv() {
            Ok(first) => {
                // Busy: let the batch fill until POLL after the previous one began.
                if let Some(wait) = last_batch.and_then(|at| POLL.checked_sub(at.elapsed())) {
                    std::thread::sleep(wait);
                }
                break first;
            }
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if idle < POLLS_BEFORE_PARKING => {
                idle += 1;
                std::thread::sleep(POLL);
            }
            Err(mpsc::TryRecvError::Empty) => break receiver.recv().ok()?,
        }
    };
    *last_batch = Some(std::time::Instant::now());
    let mut batch = vec![first];
    batch.extend(receiver.try_iter().take(MAX_BATCH - 1));
    Some(batch)
}

fn to_record(identity: &Identity, event: &Event, time: std::time::SystemTime) -> Record {
    let mut record = Record::default();
    fill_record(&mut record, identity, event, time);
    record
}

/// Makes `record` describe `event`, reusing the buffers of the strings it holds.
fn fill_record(
    record: &mut Record,
    identity: &Identity,
    event: &Event,
    time: std::time::SystemTime,
) {
    fn set(to: &mut String, fill: impl FnOnce(&mut String)) {
        to.clear();
        fill(to);
    }
    fn set_some(to: &mut Option<String>, fill: Option<impl FnOnce(&mut String)>) {
        match fill {
            Some(fill) => {
                let to = to.get_or_insert_with(String::new);
                to.clear();
                fill(to);
            }
            None => *to = None,
        }
    }
    record.v = 1;
    record.seq = 0;
    record.prev.clear();
    set(&mut record.time, |out| {
        let _ = write!(out, "{}", humantime::format_rfc3339_micros(time));
    });
    set(&mut record.event, |out| out.push_str(event.kind));
    set(&mut record.rv, |out| push_rv_name(out, event.rv));
    record.pid = identity.pid;
    set(&mut record.exe, |out| out.push_str(&identity.exe));
    set(&mut record.user, |out| out.push_str(&identity.user));
    record.uid = identity.uid;
    record.slot = event.slot;
    set_some(
        &mut record.token,
        event
            .token
            .as_deref()
            .map(|t| |out: &mut String| out.push_str(t)),
    );
    set_some(
        &mut record.key_id,
        event
            .key_id
            .as_deref()
            .map(|id| |out: &mut String| chain::push_hex(out, id)),
    );
    set_some(
        &mut record.key_label,
        event
            .key_label
            .as_deref()
            .map(|label| |out: &mut String| out.push_str(&String::from_utf8_lossy(label))),
    );
    set_some(
        &mut record.mechanism,
        event
            .mechanism
            .map(|m| move |out: &mut String| push_mechanism_name(out, m)),
    );
    set_some(
        &mut record.data_sha256,
        event
            .data_sha256
            .as_ref()
            .map(|d| |out: &mut String| chain::push_hex(out, d)),
    );
    set_some(
        &mut record.user_type,
        event
            .user_type
            .map(|t| move |out: &mut String| out.push_str(t)),
    );
    set_some(
        &mut record.request_id,
        event
            .request_id
            .as_deref()
            .map(|r| |out: &mut String| out.push_str(r)),
    );
}

/// Sends a record to the local syslog socket (facility authpriv, severity info).
fn syslog(socket_path: &Path, record: &Record) {
    #[cfg(unix)]
    {
        let line = chain::seal(record).0;
        let message = format!("<86>cryptera-pkcs11[{}]: {}", record.pid, line);
        if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = socket.send_to(message.as_bytes(), socket_path);
        }
    }
}
