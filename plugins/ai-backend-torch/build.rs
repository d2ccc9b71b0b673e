//! Compile the C++ shim against libtorch (Debian's `libtorch-dev`, or `$LIBTORCH`).

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("LIBTORCH").unwrap_or_else(|_| "/usr".into()));
    let include = root.join("include");
    if !include.join("torch/script.h").exists() {
        panic!(
            "libtorch headers not found under {} (torch/script.h). Install Debian's libtorch-dev \
             (`apt-get install libtorch-dev`) or set LIBTORCH to a libtorch directory.",
            include.display()
        );
    }
    println!("cargo:rerun-if-changed=cpp/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    cc::Build::new()
        .cpp(true)
        .file("cpp/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .opt_level(2)
        .debug(false)
        .compile("orc_torch_shim");
    for dir in [root.join("lib"), root.join("lib/x86_64-linux-gnu")] {
        if dir.exists() {
            println!("cargo:rustc-link-search=native={}", dir.display());
        }
    }
    for lib in ["torch_cpu", "torch", "c10"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:rustc-link-lib=dylib=stdc++");
}
