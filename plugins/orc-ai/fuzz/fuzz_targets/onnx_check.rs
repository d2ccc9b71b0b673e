//! Fuzz target: see `orc_ai_onnx_check::fuzzing::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orc_ai_onnx_check::fuzzing::check(data));
