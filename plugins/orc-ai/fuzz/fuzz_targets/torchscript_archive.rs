//! Fuzz target: see `orc_ai_torchscript::fuzzing::archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orc_ai_torchscript::fuzzing::archive(data));
