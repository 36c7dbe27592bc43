//! Links the guest with its own script: a static executable at 0x4000_0000.
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
    }
}
