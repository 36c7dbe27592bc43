//! libFuzzer entry point of the `mmio` target; the checks are
//! `spevisor_fuzz::mmio::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::mmio::run(data));
