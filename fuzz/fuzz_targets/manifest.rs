#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custos_evidence::fuzzing::manifest(data));
