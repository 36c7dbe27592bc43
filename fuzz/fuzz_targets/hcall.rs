//! libFuzzer entry point of the `hcall` target; the checks are
//! `spevisor_fuzz::hcall::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::hcall::run(data));
