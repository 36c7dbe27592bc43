//! libFuzzer entry point of the `pl011` target; the checks are
//! `spevisor_fuzz::pl011::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::pl011::run(data));
