//! Zero configuration: without `CRYPTERA_PKCS11_CONFIG` the module keeps its tokens under
//! `$XDG_DATA_HOME/cryptera-pkcs11`, offers slot 0 free for `C_InitToken`, applies the default PIN
//! rules, and keeps the store private to the user (directory 0700, files 0600).

mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::session::UserType;
use std::os::unix::fs::PermissionsExt;

#[test]
fn tokens_live_in_the_users_data_directory_by_default() {
    let data_home = scratch("xdg");
    std::fs::create_dir_all(&data_home).unwrap();
    std::env::remove_var("CRYPTERA_PKCS11_CONFIG");
    std::env::set_var("XDG_DATA_HOME", &data_home);
    let context = Pkcs11::new(module_path()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();

    let slots = context.get_all_slots().unwrap();
    assert_eq!(slots.len(), 1, "a fresh machine has exactly the free slot");
    let slot = slots[0];
    assert_eq!(slot.id(), 0);
    let info = context.get_token_info(slot).unwrap();
    assert!(!info.token_initialized());
    assert_eq!(info.min_pin_length(), 4);

    context.init_token(slot, &pin(SO_PIN), "defaults").unwrap();
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    session.init_pin(&pin(USER_PIN)).unwrap();
    session.logout().unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let (_, private) = ec_pair(&session, P256);
    session
        .sign(&Mechanism::EcdsaSha256, private, b"zero config")
        .unwrap();
    // A new free slot appears once slot 0 is taken.
    let slots = context.get_all_slots().unwrap();
    assert_eq!(slots.len(), 2);
    assert!(!context
        .get_token_info(slots[1])
        .unwrap()
        .token_initialized());

    let store = data_home.join("cryptera-pkcs11");
    let token_file = store.join("slot-0.token");
    assert!(token_file.is_file(), "{} is missing", token_file.display());
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700, "the store directory is private");
    for entry in std::fs::read_dir(&store).unwrap().flatten() {
        assert_eq!(
            mode(&entry.path()),
            0o600,
            "{} is readable by others",
            entry.path().display()
        );
    }
    drop(session);
    context.finalize().unwrap();
}
