#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custos_formats::fuzzing::ts_demux(data));
