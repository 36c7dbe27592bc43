//! Links the guest with its own script: a static executable at 0x4000_0000
//! (or at 0x4000_0000 + $SPEVISOR_GUEST_LOAD_OFFSET).

/// The variable naming the guest's load offset in RAM (xtask sets it).
const LOAD_OFFSET_ENV: &str = "SPEVISOR_GUEST_LOAD_OFFSET";
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let script = format!("{dir}/linker.ld");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rerun-if-changed=src/start.S");
    let target = std::env::var("TARGET").unwrap();
    if target.starts_with("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
        // The workspace builds this target with `-C relocation-model=pic` (for
        // the self-relocating hypervisor image). The guest runs where it is
        // linked: a plain executable, no dynamic relocations.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        // Where in RAM the guest runs (default: the base).
        println!("cargo:rerun-if-env-changed={LOAD_OFFSET_ENV}");
        if let Ok(offset) = std::env::var(LOAD_OFFSET_ENV) {
            println!("cargo:rustc-link-arg-bins=--defsym=GUEST_LOAD_OFFSET={offset}");
        }
    }
}
