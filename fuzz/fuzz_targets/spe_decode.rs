//! libFuzzer entry point of the `spe_decode` target; the checks are
//! `spevisor_fuzz::spe_decode::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::spe_decode::run(data));
