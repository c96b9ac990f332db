//! Loads a module with a fresh, private token store and prepares a logged-in token.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};

pub const PIN: &str = "bench-pin-1234";
const SO_PIN: &str = "bench-so-pin-1234";

/// One module under test, with its token.
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub pkcs11: Pkcs11,
    pub slot: Slot,
    /// A session open for the whole run: some modules (SoftHSM2) forget object handles when a token's
    /// last session closes.
    pub _keeper: std::sync::Mutex<Session>,
    /// Keeps the token store alive for the run.
    pub _store: tempfile::TempDir,
}

/// Points the module at a new empty store through the environment variables each module reads at
/// `C_Initialize` (ours: `CRYPTERA_PKCS11_CONFIG`; SoftHSM2: `SOFTHSM2_CONF`).
fn private_store(path: &Path) -> tempfile::TempDir {
    let store = tempfile::tempdir().expect("temp dir");
    let tokens = store.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.contains("softhsm") {
        let conf = store.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                tokens.display()
            ),
        )
        .expect("softhsm config");
        std::env::set_var("SOFTHSM2_CONF", conf);
    } else {
        let conf = store.path().join("cryptera.toml");
        // `CRYPTERA_BENCH_AUDIT=off` measures the module with its audit records switched off.
        let audit = match std::env::var("CRYPTERA_BENCH_AUDIT").as_deref() {
            Ok("off") => "[audit]\nenabled = false\n",
            _ => "",
        };
        std::fs::write(
            &conf,
            format!("store_dir = \"{}\"\n{audit}", tokens.display()),
        )
        .expect("config");
        std::env::set_var("CRYPTERA_PKCS11_CONFIG", conf);
    }
    store
}

pub fn load(path: &Path) -> Module {
    let store = private_store(path);
    let pkcs11 =
        Pkcs11::new(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = pkcs11
        .get_all_slots()
        .expect("slots")
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .expect("a free slot");
    pkcs11
        .init_token(slot, &AuthPin::new(SO_PIN.into()), "bench")
        .expect("C_InitToken");
    // SoftHSM2 renumbers the slot of a token it initialises: find it again by label.
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
        .expect("the new token");
    let session = pkcs11.open_rw_session(slot).expect("session");
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .expect("SO login");
    session
        .init_pin(&AuthPin::new(PIN.into()))
        .expect("C_InitPIN");
    session.logout().expect("logout");
    drop(session);
    let keeper = pkcs11.open_rw_session(slot).expect("session");
    keeper
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .expect("user login");
    let name = if path.to_string_lossy().contains("softhsm") {
        "SoftHSM2"
    } else {
        "Cryptera"
    }
    .to_string();
    Module {
        name,
        path: path.to_path_buf(),
        pkcs11,
        slot,
        _keeper: std::sync::Mutex::new(keeper),
        _store: store,
    }
}

impl Module {
    /// A read/write session of the logged-in user.
    pub fn session(&self) -> Session {
        let session = self.pkcs11.open_rw_session(self.slot).expect("session");
        match session.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => panic!("login: {e}"),
        }
        session
    }
}
