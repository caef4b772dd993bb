//! Builds the ISA-L shim when the `isal` feature is on (needs Debian's libisal-dev).
fn main() {
    println!("cargo:rerun-if-changed=src/capture/isal.c");
    if std::env::var_os("CARGO_FEATURE_ISAL").is_some() {
        cc::Build::new().file("src/capture/isal.c").opt_level(2).compile("weir_isal");
        println!("cargo:rustc-link-lib=isal");
    }
}
