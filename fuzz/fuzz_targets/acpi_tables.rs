//! libFuzzer entry point of the `acpi_tables` target; the checks are
//! `spevisor_fuzz::acpi_tables::run` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spevisor_fuzz::acpi_tables::run(data));
