//! Tokens named in the configuration file: `[[token]]` entries fix slot numbers and labels, a token's
//! `path` moves its database, and once every configured slot is taken a free slot appears after them.

mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;

#[test]
fn configured_slots_labels_and_paths() {
    let dir = scratch("configured");
    std::fs::create_dir_all(&dir).unwrap();
    let custom = dir.join("elsewhere/tokens/nine.db");
    let config = dir.join("cryptera.toml");
    std::fs::write(
        &config,
        format!(
            "store_dir = {:?}\nkdf_memory_kib = 64\nkdf_iterations = 1\n\n\
             [[token]]\nslot = 7\nlabel = \"configured\"\n\n\
             [[token]]\nslot = 9\nlabel = \"elsewhere\"\npath = {:?}\n",
            dir.join("store").display().to_string(),
            custom.display().to_string()
        ),
    )
    .unwrap();
    std::env::set_var("CRYPTERA_PKCS11_CONFIG", &config);
    let context = Pkcs11::new(module_path()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let ids = |context: &Pkcs11| -> Vec<u64> {
        context
            .get_all_slots()
            .unwrap()
            .iter()
            .map(|s| s.id())
            .collect()
    };
    // Both configured slots are free, so no other slot is needed yet.
    assert_eq!(ids(&context), [7, 9]);
    let slots = context.get_all_slots().unwrap();
    let (seven, nine) = (slots[0], slots[1]);
    let info = context.get_token_info(seven).unwrap();
    assert_eq!(info.label(), "configured");
    assert!(!info.token_initialized());

    context
        .init_token(seven, &pin(SO_PIN), "configured")
        .unwrap();
    assert_eq!(ids(&context), [7, 9]);
    context.init_token(nine, &pin(SO_PIN), "elsewhere").unwrap();
    assert!(custom.is_file(), "the token lives at its configured path");
    assert_eq!(
        ids(&context),
        [7, 9, 10],
        "a free slot follows the configured ones"
    );
    let session = context.open_rw_session(nine).unwrap();
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    session.init_pin(&pin(USER_PIN)).unwrap();
    drop(session);
    context.finalize().unwrap();

    // A fresh start finds both tokens where the configuration says.
    let context = Pkcs11::new(module_path()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    assert_eq!(ids(&context), [7, 9, 10]);
    let slots = context.get_all_slots().unwrap();
    assert_eq!(
        context.get_token_info(slots[0]).unwrap().label(),
        "configured"
    );
    let nine = context.get_token_info(slots[1]).unwrap();
    assert_eq!(nine.label(), "elsewhere");
    assert!(nine.user_pin_initialized());
    context.finalize().unwrap();
}
