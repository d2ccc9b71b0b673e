//! Fuzz target: see `orc_client::fuzzing::reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orc_client::fuzzing::reply(data));
