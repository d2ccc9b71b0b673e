//! Fuzz target: see `orc_ai_tf_check::fuzzing::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orc_ai_tf_check::fuzzing::check(data));
