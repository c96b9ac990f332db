//! Every committed fuzz input, replayed through its target on the normal build (the libFuzzer runs
//! are `scripts/fuzz-smoke.sh` and the long runs of docs/ROBUSTNESS.md). The ABI targets set the
//! module up once per process, so each target is its own test binary: see the other files here.

#[test]
fn der_corpus_replays() {
    let inputs = cryptera_fuzz_cases::replay("der", cryptera_fuzz_cases::der::run);
    assert!(inputs >= 10, "only {inputs} committed inputs");
}

#[test]
fn store_records_corpus_replays() {
    let inputs =
        cryptera_fuzz_cases::replay("store_records", cryptera_fuzz_cases::store_records::run);
    assert!(inputs >= 10, "only {inputs} committed inputs");
}
