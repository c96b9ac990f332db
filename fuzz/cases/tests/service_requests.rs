//! The committed `service_requests` fuzz inputs, replayed through the target (a process of its own: see corpus.rs).

#[test]
fn service_requests_corpus_replays() {
    let inputs = cryptera_fuzz_cases::replay(
        "service_requests",
        cryptera_fuzz_cases::service_requests::run,
    );
    assert!(inputs >= 10, "only {inputs} committed inputs");
}
