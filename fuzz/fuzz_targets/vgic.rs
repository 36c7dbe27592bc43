//! libFuzzer entry point of the `vgic` target; the checks are
//! `spevisor_fuzz::vgic::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::vgic::run(data));
