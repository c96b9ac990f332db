#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptera_fuzz_cases::abi_mechanisms::run(data));
