//! libFuzzer entry point of the `dtb_roundtrip` target; the checks are
//! `spevisor_fuzz::dtb_roundtrip::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::dtb_roundtrip::run(data));
