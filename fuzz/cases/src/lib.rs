//! What the fuzz targets share: a byte reader over the fuzzer's input, exact-size heap buffers (so
//! AddressSanitizer sees any read or write past a length the module was given), and the module set up
//! once per process on a private store with a cheap KDF, with a token and a logged-in user.
//!
//! The targets call the module's exported `C_*` functions directly from its rlib: the same code as
//! `libcryptera_pkcs11.so`, instrumented for coverage and AddressSanitizer. libfuzzer-sys turns every
//! panic into an abort, so a panic that the module's guard would have turned into
//! `CKR_GENERAL_ERROR` is still reported as a crash.
//!
//! Each target is a module here with its `run(data)`: `fuzz/fuzz_targets/` hands libFuzzer's inputs to
//! it, and `tests/corpus.rs` replays every committed input of `fuzz/corpus/` through it on the normal
//! build, so CI compiles the targets and re-checks their corpora on every change.
#![allow(clippy::missing_safety_doc)]

pub mod abi_mechanisms;
pub mod abi_objects;
pub mod der;
pub mod service_requests;
pub mod store_records;

use cryptera_pkcs11::abi::*;
use cryptoki_sys::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const SO_PIN: &[u8] = b"so-pin-5678";
pub const USER_PIN: &[u8] = b"user-1234";

/// Reads the fuzzer's bytes front to back; an exhausted input reads as zeros.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.u8();
        }
        u64::from_le_bytes(bytes)
    }

    /// Up to `len` bytes (fewer when the input runs out).
    pub fn take(&mut self, len: usize) -> &'a [u8] {
        let len = len.min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A byte string whose length is the next byte (or, when `long`, the next two bytes).
    pub fn bytes(&mut self, long: bool) -> &'a [u8] {
        let len = if long {
            usize::from(self.u16() % 4096)
        } else {
            usize::from(self.u8())
        };
        self.take(len)
    }

    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.data;
        self.data = &[];
        rest
    }

    /// One of `choices`, or (when the byte is past them) a value read from the input.
    pub fn pick(&mut self, choices: &[CK_ULONG]) -> CK_ULONG {
        let at = usize::from(self.u8());
        match choices.get(at) {
            Some(value) => *value,
            None if at == 0xff => self.u64() as CK_ULONG,
            None if choices.is_empty() => at as CK_ULONG,
            None => choices[at % choices.len()],
        }
    }
}

/// A heap buffer of exactly `len` bytes: ASan reports any access past its end.
pub fn exact(bytes: &[u8]) -> Box<[u8]> {
    bytes.to_vec().into_boxed_slice()
}

/// A per-process scratch directory: on tmpfs when there is one (the store's fsyncs are then cheap),
/// under the temp dir otherwise. Directories of processes that no longer exist are removed first.
pub fn work_dir(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    scratch_dir(&base.join("cryptera-fuzz"), name)
}

/// A per-process scratch directory on disk (for data that grows over a long run).
pub fn disk_work_dir(name: &str) -> PathBuf {
    scratch_dir(&std::env::temp_dir().join("cryptera-fuzz"), name)
}

fn scratch_dir(base: &Path, name: &str) -> PathBuf {
    let _ = std::fs::create_dir_all(base);
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let pid = file_name
                .to_str()
                .and_then(|n| n.rsplit('.').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = base.join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fuzz work dir");
    dir
}

/// The initialised module: one token, a session logged in as the user that lives as long as the
/// process (session objects made in it, such as the keys of the mechanism target, stay valid).
pub struct Module {
    pub slot: CK_SLOT_ID,
    pub keeper: CK_SESSION_HANDLE,
}

impl Module {
    /// A new read/write session on the token (the user stays logged in: login is per token).
    pub fn open_session(&self) -> CK_SESSION_HANDLE {
        let mut session = CK_INVALID_HANDLE;
        // SAFETY: a valid out pointer.
        let rv = unsafe {
            C_OpenSession(
                self.slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                std::ptr::null_mut(),
                None,
                &mut session,
            )
        };
        assert_eq!(rv, CKR_OK, "C_OpenSession");
        session
    }

    pub fn close_session(&self, session: CK_SESSION_HANDLE) {
        // SAFETY: no pointers.
        let rv = unsafe { C_CloseSession(session) };
        assert_eq!(rv, CKR_OK, "C_CloseSession");
    }
}

/// Sets the module up on first use: config in a private directory (cheap Argon2id, no audit file:
/// the targets are about parsing, and an audit file would fill the disk), `C_Initialize`,
/// `C_InitToken`, `C_InitPIN`, user login.
pub fn module(name: &str) -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| {
        let dir = work_dir(name);
        let config = dir.join("cryptera.toml");
        std::fs::write(
            &config,
            format!(
                "store_dir = {:?}\nkdf_memory_kib = 8\nkdf_iterations = 1\nmax_pin_attempts = 1000000\n\
                 [audit]\nenabled = false\n",
                dir.join("store").display().to_string()
            ),
        )
        .expect("write the config");
        std::env::set_var("CRYPTERA_PKCS11_CONFIG", &config);
        // SAFETY: every pointer below is valid for the call it is passed to.
        unsafe {
            assert_eq!(C_Initialize(std::ptr::null_mut()), CKR_OK, "C_Initialize");
            let mut slots = [0 as CK_SLOT_ID; 8];
            let mut count = slots.len() as CK_ULONG;
            assert_eq!(
                C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count),
                CKR_OK
            );
            assert!(count > 0, "no slot");
            let slot = slots[0];
            let mut label = [b' '; 32];
            label[..4].copy_from_slice(b"fuzz");
            let rv = C_InitToken(
                slot,
                SO_PIN.as_ptr() as *mut u8,
                SO_PIN.len() as CK_ULONG,
                label.as_mut_ptr(),
            );
            assert_eq!(rv, CKR_OK, "C_InitToken");
            let mut keeper = CK_INVALID_HANDLE;
            let rv = C_OpenSession(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                std::ptr::null_mut(),
                None,
                &mut keeper,
            );
            assert_eq!(rv, CKR_OK, "C_OpenSession");
            let rv = C_Login(
                keeper,
                CKU_SO,
                SO_PIN.as_ptr() as *mut u8,
                SO_PIN.len() as CK_ULONG,
            );
            assert_eq!(rv, CKR_OK, "SO login");
            let rv = C_InitPIN(
                keeper,
                USER_PIN.as_ptr() as *mut u8,
                USER_PIN.len() as CK_ULONG,
            );
            assert_eq!(rv, CKR_OK, "C_InitPIN");
            assert_eq!(C_Logout(keeper), CKR_OK);
            let rv = C_Login(
                keeper,
                CKU_USER,
                USER_PIN.as_ptr() as *mut u8,
                USER_PIN.len() as CK_ULONG,
            );
            assert_eq!(rv, CKR_OK, "user login");
            Module { slot, keeper }
        }
    })
}

/// Attribute types the template targets draw from: every type the module knows, some it does not,
/// and the array-valued ones (whose values it must treat as opaque bytes, never as pointers).
pub const ATTRIBUTE_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_TRUSTED,
    CKA_ALLOWED_MECHANISMS,
    CKA_CHECK_VALUE,
    CKA_CERTIFICATE_CATEGORY,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_NAME_HASH_ALGORITHM,
    CKA_WRAP_TEMPLATE,
    CKA_UNWRAP_TEMPLATE,
    CKA_DERIVE_TEMPLATE,
    CKA_HW_FEATURE_TYPE,
    CKA_UNIQUE_ID,
    CKA_PRIME_BITS,
    CKA_VENDOR_DEFINED,
];

/// A raw `CK_ATTRIBUTE` array built from the input, values in one exact-size arena. Layouts per
/// attribute: the exact value; a declared length running past the value into the following ones
/// (never past the arena); a NULL value pointer with a non-zero length; `CK_UNAVAILABLE_INFORMATION`
/// as the length. The whole array may also be passed as NULL with a non-zero count.
pub struct RawTemplate {
    attrs: Box<[CK_ATTRIBUTE]>,
    _arena: Box<[u8]>,
    null_array: bool,
}

impl RawTemplate {
    pub fn read(r: &mut Reader) -> RawTemplate {
        let head = r.u8();
        let count = usize::from(head % 16);
        let null_array = head & 0x80 != 0 && head & 0x40 != 0;
        let mut specs = Vec::with_capacity(count);
        let mut arena = Vec::new();
        for _ in 0..count {
            let kind = r.pick(ATTRIBUTE_TYPES);
            let mode = r.u8();
            let value = r.bytes(mode & 0x04 != 0);
            let extra = if mode & 0x03 == 1 {
                usize::from(r.u8())
            } else {
                0
            };
            specs.push((kind, mode & 0x03, arena.len(), value.len(), extra));
            arena.extend_from_slice(value);
        }
        let arena = arena.into_boxed_slice();
        let base = arena.as_ptr();
        let attrs = specs
            .into_iter()
            .map(|(kind, layout, offset, len, extra)| {
                // SAFETY (for the harness's own pointer arithmetic): `offset <= arena.len()`.
                let at = unsafe { base.add(offset) } as *mut std::ffi::c_void;
                let (pointer, declared) = match layout {
                    0 => (at, len),
                    1 => (at, (len + extra).min(arena.len() - offset)),
                    2 => (std::ptr::null_mut(), len.max(1)),
                    _ => (at, CK_UNAVAILABLE_INFORMATION as usize),
                };
                CK_ATTRIBUTE {
                    type_: kind,
                    pValue: pointer,
                    ulValueLen: declared as CK_ULONG,
                }
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        RawTemplate {
            attrs,
            _arena: arena,
            null_array: null_array && count > 0,
        }
    }

    pub fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        if self.null_array {
            std::ptr::null_mut()
        } else {
            self.attrs.as_mut_ptr()
        }
    }

    pub fn count(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }
}

/// A `C_GetAttributeValue` template: per attribute a NULL value (a length query) or a buffer of its
/// own, of exactly the declared size, so a write past the declared length is an ASan report.
pub struct OutTemplate {
    attrs: Box<[CK_ATTRIBUTE]>,
    buffers: Vec<Option<Box<[u8]>>>,
}

impl OutTemplate {
    pub fn read(r: &mut Reader) -> OutTemplate {
        let count = usize::from(r.u8() % 16);
        let mut attrs = Vec::with_capacity(count);
        let mut buffers = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = r.pick(ATTRIBUTE_TYPES);
            let mode = r.u8();
            let len = if mode & 0x04 != 0 {
                usize::from(r.u16() % 4096)
            } else {
                usize::from(r.u8())
            };
            if mode & 0x01 == 0 {
                attrs.push(CK_ATTRIBUTE {
                    type_: kind,
                    pValue: std::ptr::null_mut(),
                    ulValueLen: len as CK_ULONG,
                });
                buffers.push(None);
            } else {
                let mut buffer = vec![0xa5u8; len].into_boxed_slice();
                attrs.push(CK_ATTRIBUTE {
                    type_: kind,
                    pValue: buffer.as_mut_ptr() as *mut std::ffi::c_void,
                    ulValueLen: len as CK_ULONG,
                });
                buffers.push(Some(buffer));
            }
        }
        OutTemplate {
            attrs: attrs.into_boxed_slice(),
            buffers,
        }
    }

    pub fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        self.attrs.as_mut_ptr()
    }

    pub fn count(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }

    /// What the module reported must fit what it was given: a length no larger than the buffer, or
    /// `CK_UNAVAILABLE_INFORMATION`; and a call that succeeded left no attribute unavailable.
    pub fn check(&self, rv: CK_RV) {
        for (attr, buffer) in self.attrs.iter().zip(&self.buffers) {
            let reported = attr.ulValueLen;
            if let Some(buffer) = buffer {
                assert!(
                    reported == CK_UNAVAILABLE_INFORMATION || reported as usize <= buffer.len(),
                    "C_GetAttributeValue reported {reported} bytes written into a buffer of {}",
                    buffer.len()
                );
            }
            if rv == CKR_OK {
                assert_ne!(
                    reported, CK_UNAVAILABLE_INFORMATION,
                    "CKR_OK with an unavailable attribute"
                );
            }
        }
    }
}

/// Whether `CRYPTERA_FUZZ_TRACE` is set: the targets then print what each call returned, to check
/// what the seeds reach.
pub fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CRYPTERA_FUZZ_TRACE").is_some())
}

/// Prints `what` and its return value when tracing.
pub fn trace(what: &str, rv: CK_RV) -> CK_RV {
    if tracing() {
        eprintln!("{what}: {rv:#x}");
    }
    rv
}

/// Runs every committed input of `fuzz/corpus/<target>` through `run`; the number of inputs. A panic
/// names the input (libFuzzer would have reported it as a crash).
pub fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("read the corpus directory").path())
        .collect();
    inputs.sort();
    for input in &inputs {
        let data = std::fs::read(input).expect("read a corpus input");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", input.display());
    }
    inputs.len()
}
