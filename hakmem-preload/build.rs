//! Generates include/hakmem.h (the extension API) from src/ext.rs with cbindgen, and gives
//! libhakmem.so its SONAME (libhakmem.so.MAJOR, what programs linked with -lhakmem record).
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhakmem.so.{major}");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = std::path::Path::new(&crate_dir).join("..");
    println!("cargo:rerun-if-changed=src/ext.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(root.join("hakmem-preload/cbindgen.toml"))
        .expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("hakmem-preload/src/ext.rs"))
        .generate()
        .expect("cbindgen could not generate include/hakmem.h")
        .write_to_file(root.join("include/hakmem.h"));
}
