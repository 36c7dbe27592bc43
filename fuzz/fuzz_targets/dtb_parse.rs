//! libFuzzer entry point of the `dtb_parse` target; the checks are
//! `spevisor_fuzz::dtb_parse::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::dtb_parse::run(data));
