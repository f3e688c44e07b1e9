//! Compiles the BPF programs with clang and generates their Rust skeleton in
//! OUT_DIR, so `cargo build` alone produces a complete binary.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const BPF_SOURCE: &str = "bpf/trapstream.bpf.c";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let skeleton = out_dir.join("trapstream.skel.rs");

    SkeletonBuilder::new()
        .source(manifest_dir.join(BPF_SOURCE))
        .obj(out_dir.join("trapstream.bpf.o"))
        // v1 codegen produces code the verifier rejects; v3 (kernel 5.1+) is
        // fine everywhere trapstream can run (5.10+).
        .clang_args([
            "-mcpu=v3".into(),
            // One object for every architecture: libbpf-cargo would otherwise
            // define __TARGET_ARCH_<cargo's target arch>, which only
            // bpf_tracing.h's register macros read. With no known arch they
            // fail to compile, so nothing can come to depend on pt_regs, and
            // the x86-64 and arm64 builds embed the same bytes (checked by
            // tests/vm_arm64.rs).
            "-D__TARGET_ARCH_none".into(),
            "-I".into(),
            manifest_dir.join("include").into_os_string(),
            "-I".into(),
            manifest_dir.join("bpf").into_os_string(),
        ])
        .build_and_generate(&skeleton)
        .unwrap_or_else(|err| panic!("building {BPF_SOURCE}: {err:#}"));

    for path in ["bpf", "include"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
