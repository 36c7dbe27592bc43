//! Links the image with spevisor's linker script as a static PIE.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let script = format!("{dir}/../linker/spevisor.ld");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rerun-if-changed=src/head.S");
    let target = std::env::var("TARGET").unwrap();
    if target.starts_with("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
        for arg in ["-pie", "--no-dynamic-linker", "-znotext", "-znorelro"] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
