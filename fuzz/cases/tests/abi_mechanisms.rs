//! The committed `abi_mechanisms` fuzz inputs, replayed through the target (a process of its own: see corpus.rs).

#[test]
fn abi_mechanisms_corpus_replays() {
    let inputs =
        cryptera_fuzz_cases::replay("abi_mechanisms", cryptera_fuzz_cases::abi_mechanisms::run);
    assert!(inputs >= 10, "only {inputs} committed inputs");
}
