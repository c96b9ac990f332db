//! Hosts unload modules: after `C_Finalize` and `dlclose()`, threads that used the module exit
//! cleanly (no thread-local destructor may point into unmapped code), and loading it again works.

mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;

fn use_and_unload(label: &str) {
    let context = Pkcs11::new(module_path()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = fresh_token_in(&context, label);
    let session = context.open_ro_session(slot).unwrap();
    session.digest(&Mechanism::Sha256, b"unload").unwrap();
    session.generate_random_vec(32).unwrap();
    drop(session);
    // Finalizing consumes the context, whose drop closes the library.
    context.finalize().unwrap();
}

#[test]
fn threads_outlive_an_unloaded_module() {
    configure();
    for round in 0..3 {
        let worker = std::thread::spawn(move || use_and_unload(&format!("unload-{round}")));
        worker
            .join()
            .expect("the thread that used the module crashed");
        // A thread that never touched the module starts and ends normally meanwhile.
        std::thread::spawn(|| ()).join().unwrap();
    }
}
