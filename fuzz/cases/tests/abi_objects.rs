//! The committed `abi_objects` fuzz inputs, replayed through the target (a process of its own: see corpus.rs).

#[test]
fn abi_objects_corpus_replays() {
    let inputs = cryptera_fuzz_cases::replay("abi_objects", cryptera_fuzz_cases::abi_objects::run);
    assert!(inputs >= 10, "only {inputs} committed inputs");
}
