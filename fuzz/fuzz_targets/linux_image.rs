//! libFuzzer entry point of the `linux_image` target; the checks are
//! `spevisor_fuzz::linux_image::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::linux_image::run(data));
