//! libFuzzer entry point of the `esr` target; the checks are
//! `spevisor_fuzz::esr::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::esr::run(data));
