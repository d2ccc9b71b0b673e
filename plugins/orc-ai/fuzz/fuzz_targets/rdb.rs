//! Fuzz target: see `orc_ai::fuzzing::rdb`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orc_ai::fuzzing::rdb(data));
