#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptera_fuzz_cases::store_records::run(data));
