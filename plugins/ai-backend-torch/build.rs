//! Compile the C++ shim against libtorch: Debian's `libtorch-dev` by default, or the one
//! under `$LIBTORCH` (e.g. a PyTorch 2.x wheel's `torch/` directory, docs/models.md), with
//! `$LIBTORCH_CXX_STD` (default 17; PyTorch 2.x headers want 20) and `$LIBTORCH_LIBS`
//! (default `torch_cpu,torch,c10`; a CUDA wheel's CPU-only use wants `torch_cpu,c10`, a GPU
//! build `torch_cpu,torch_cuda,c10_cuda,c10`).

use std::path::PathBuf;

fn main() {
    let custom = std::env::var("LIBTORCH").ok();
    let root = PathBuf::from(custom.clone().unwrap_or_else(|| "/usr".into()));
    let include = root.join("include");
    if !include.join("torch/script.h").exists() {
        panic!(
            "libtorch headers not found under {} (torch/script.h). Install Debian's libtorch-dev \
             (`apt-get install libtorch-dev`) or set LIBTORCH to a libtorch directory.",
            include.display()
        );
    }
    for var in ["LIBTORCH", "LIBTORCH_CXX_STD", "LIBTORCH_LIBS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=cpp/shim.cpp");
    let std = std::env::var("LIBTORCH_CXX_STD").unwrap_or_else(|_| "17".into());
    cc::Build::new()
        .cpp(true)
        .file("cpp/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag(format!("-std=c++{std}"))
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .opt_level(2)
        .debug(false)
        .compile("orc_torch_shim");
    for dir in [root.join("lib"), root.join("lib/x86_64-linux-gnu")] {
        if dir.exists() {
            println!("cargo:rustc-link-search=native={}", dir.display());
            if custom.is_some() {
                // A libtorch outside the system's library path is found where it was built.
                println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{}", dir.display());
            }
        }
    }
    let libs = std::env::var("LIBTORCH_LIBS").unwrap_or_else(|_| "torch_cpu,torch,c10".into());
    for lib in libs.split(',').filter(|l| !l.is_empty()) {
        if lib.contains("cuda") {
            // Linked even though no symbol of it is used: libtorch_cuda registers the CUDA
            // kernels and hooks only by being loaded.
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,--push-state,--no-as-needed,-l{lib},--pop-state"
            );
        } else {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
    println!("cargo:rustc-link-lib=dylib=stdc++");
}
