//! The shared harness of the integration tests: it loads the built module, gives it a private store
//! through a config file, and hands out freshly initialised tokens. Every test file is its own process
//! with one `Pkcs11` context; tests inside a file run in parallel threads, each on its own token.
#![allow(dead_code, unused_macros)]

/// Calls a raw function of the module's 2.40 function list: `ck!(C_GetSlotList, ...)`.
macro_rules! ck {
    ($name:ident $(, $arg:expr)* $(,)?) => {
        // SAFETY: every test passes arguments that fit the PKCS#11 signature of the function.
        unsafe { (common::raw().$name.expect(stringify!($name)))($($arg),*) }
    };
}

pub mod crosscheck;
pub mod rawsign;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

pub const SO_PIN: &str = "so-pin-5678";
pub const USER_PIN: &str = "user-1234";
/// What the harness configures: short enough to test the limits, few attempts before lockout.
pub const MIN_PIN_LEN: usize = 4;
pub const MAX_PIN_LEN: usize = 24;
pub const MAX_PIN_ATTEMPTS: u32 = 3;

/// The built module: `CRYPTERA_PKCS11_MODULE`, else the workspace's release build.
pub fn module_path() -> PathBuf {
    let path = std::env::var_os("CRYPTERA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libcryptera_pkcs11.so")
        });
    assert!(
        path.is_file(),
        "the module {} does not exist: build it with `cargo build --release -p cryptera-pkcs11` \
         or point CRYPTERA_PKCS11_MODULE at it",
        path.display()
    );
    path
}

/// A per-process directory under the target's tmp dir; those of finished runs are swept away.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pkcs11-tests");
        std::fs::create_dir_all(&parent).expect("create the tests' tmp dir");
        sweep_stale(&parent);
        let exe = std::env::current_exe().expect("current exe");
        let name = exe
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("test")
            .to_owned();
        let dir = parent.join(format!("{name}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the work dir");
        dir
    })
}

/// Removes work dirs left by processes that no longer exist.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.rsplit('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes the module's config (store in the work dir, cheap KDF, the PIN limits above) and points
/// `CRYPTERA_PKCS11_CONFIG` at it. Child processes inherit the variable and so share the store.
pub fn configure() -> &'static Path {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = work_dir();
        let config = dir.join("cryptera.toml");
        let text = format!(
            "store_dir = {:?}\nmin_pin_len = {MIN_PIN_LEN}\nmax_pin_len = {MAX_PIN_LEN}\n\
             max_pin_attempts = {MAX_PIN_ATTEMPTS}\nkdf_memory_kib = 64\nkdf_iterations = 1\n",
            dir.join("store").display().to_string()
        );
        std::fs::write(&config, text).expect("write the config");
        std::env::set_var("CRYPTERA_PKCS11_CONFIG", &config);
        config
    })
}

/// A scratch file path in this process's work dir.
pub fn scratch(name: &str) -> PathBuf {
    work_dir().join(name)
}

/// Loads the module with the harness configuration and initialises it: a context of its own.
pub fn new_context() -> Pkcs11 {
    configure();
    let context = Pkcs11::new(module_path()).expect("load the module");
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    context
}

/// The process-wide, initialised context.
pub fn pkcs11() -> &'static Pkcs11 {
    static CONTEXT: OnceLock<Pkcs11> = OnceLock::new();
    CONTEXT.get_or_init(new_context)
}

/// The raw 2.40 function list of the module (the same loaded library as the context).
pub fn raw() -> &'static cryptoki_sys::CK_FUNCTION_LIST {
    static LIST: OnceLock<(libloading::Library, usize)> = OnceLock::new();
    let (_, list) = LIST.get_or_init(|| {
        configure();
        // SAFETY: loading the module runs no initialisers with preconditions.
        let library = unsafe { libloading::Library::new(module_path()) }.expect("dlopen");
        let mut list: *mut cryptoki_sys::CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: the symbol has the C_GetFunctionList signature by the spec.
        let rv = unsafe {
            let get: libloading::Symbol<
                unsafe extern "C" fn(
                    *mut *mut cryptoki_sys::CK_FUNCTION_LIST,
                ) -> cryptoki_sys::CK_RV,
            > = library
                .get(b"C_GetFunctionList\0")
                .expect("C_GetFunctionList");
            get(&mut list)
        };
        assert_eq!(rv, cryptoki_sys::CKR_OK);
        assert!(!list.is_null());
        (library, list as usize)
    });
    // SAFETY: the list is static data of the module, which stays loaded with the library above.
    unsafe { &*(*list as *const cryptoki_sys::CK_FUNCTION_LIST) }
}

pub fn pin(text: &str) -> AuthPin {
    AuthPin::from(text)
}

/// One free slot exists at a time, so tests take turns initialising it (or looking at it).
pub fn free_slot_turn() -> MutexGuard<'static, ()> {
    static FREE_SLOT: Mutex<()> = Mutex::new(());
    FREE_SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The uninitialised slot the module always offers.
pub fn free_slot(context: &Pkcs11) -> Slot {
    context
        .get_all_slots()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|slot| {
            !context
                .get_token_info(*slot)
                .expect("C_GetTokenInfo")
                .token_initialized()
        })
        .expect("the module always offers a free slot")
}

/// Initialises the free slot's token as `label` with [`SO_PIN`] and user PIN [`USER_PIN`].
pub fn fresh_token_in(context: &Pkcs11, label: &str) -> Slot {
    let _turn = free_slot_turn();
    let slot = free_slot(context);
    context
        .init_token(slot, &pin(SO_PIN), label)
        .expect("C_InitToken");
    let session = context.open_rw_session(slot).expect("C_OpenSession");
    session
        .login(UserType::So, Some(&pin(SO_PIN)))
        .expect("SO login");
    session.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    session.logout().expect("C_Logout");
    slot
}

pub fn fresh_token(label: &str) -> Slot {
    fresh_token_in(pkcs11(), label)
}

/// A read/write session on a fresh token, logged in as the user.
pub fn user_session(label: &str) -> (Slot, Session) {
    let slot = fresh_token(label);
    let session = pkcs11().open_rw_session(slot).expect("C_OpenSession");
    session
        .login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    (slot, session)
}

/// The PKCS#11 return code of a failed call; panics if the call succeeded.
pub fn rv<T: std::fmt::Debug>(result: Result<T, Error>) -> RvError {
    match result {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// One attribute's raw value.
pub fn attr(session: &Session, object: ObjectHandle, kind: AttributeType) -> Attribute {
    let mut found = session
        .get_attributes(object, &[kind])
        .expect("C_GetAttributeValue");
    assert_eq!(found.len(), 1, "attribute {kind:?} not available");
    found.remove(0)
}

pub fn bool_attr(session: &Session, object: ObjectHandle, kind: AttributeType) -> bool {
    match attr(session, object, kind) {
        Attribute::Token(v)
        | Attribute::Private(v)
        | Attribute::Sensitive(v)
        | Attribute::Extractable(v)
        | Attribute::AlwaysSensitive(v)
        | Attribute::NeverExtractable(v)
        | Attribute::Local(v)
        | Attribute::Modifiable(v)
        | Attribute::Copyable(v)
        | Attribute::Destroyable(v)
        | Attribute::Sign(v)
        | Attribute::Verify(v)
        | Attribute::Encrypt(v)
        | Attribute::Decrypt(v)
        | Attribute::Wrap(v)
        | Attribute::Unwrap(v)
        | Attribute::Derive(v)
        | Attribute::AlwaysAuthenticate(v)
        | Attribute::Trusted(v)
        | Attribute::WrapWithTrusted(v)
        | Attribute::SignRecover(v)
        | Attribute::VerifyRecover(v) => v,
        other => panic!("{other:?} is not a boolean attribute"),
    }
}

pub fn bytes_attr(session: &Session, object: ObjectHandle, kind: AttributeType) -> Vec<u8> {
    match attr(session, object, kind) {
        Attribute::Value(v)
        | Attribute::Label(v)
        | Attribute::Id(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::PrivateExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)
        | Attribute::Subject(v)
        | Attribute::Issuer(v)
        | Attribute::SerialNumber(v)
        | Attribute::PublicKeyInfo(v)
        | Attribute::CheckValue(v)
        | Attribute::Application(v)
        | Attribute::Prime1(v)
        | Attribute::Prime2(v)
        | Attribute::Exponent1(v)
        | Attribute::Exponent2(v)
        | Attribute::Coefficient(v) => v,
        other => panic!("{other:?} is not a byte-string attribute"),
    }
}

/// DER of the named-curve OIDs, as `CKA_EC_PARAMS` carries them.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Generates a key pair with the given templates; panics with the mechanism if that fails.
pub fn key_pair(
    session: &Session,
    mechanism: &Mechanism,
    public: &[Attribute],
    private: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(mechanism, public, private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair {mechanism:?}: {e}"))
}

pub fn rsa_pair(session: &Session, bits: u64) -> (ObjectHandle, ObjectHandle) {
    key_pair(
        session,
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ],
        &[],
    )
}

pub fn ec_pair(session: &Session, curve: &[u8]) -> (ObjectHandle, ObjectHandle) {
    key_pair(
        session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(curve.to_vec())],
        &[],
    )
}

pub fn ed25519_pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    key_pair(
        session,
        &Mechanism::EccEdwardsKeyPairGen,
        &[Attribute::EcParams(ED25519.to_vec())],
        &[],
    )
}

/// A template selecting objects of `class` (and `key_type`) labelled `label`.
pub fn by_label(class: ObjectClass, key_type: Option<KeyType>, label: &str) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    if let Some(key_type) = key_type {
        template.push(Attribute::KeyType(key_type));
    }
    template
}
