//! The arm64 package's binary, for real: the trapstream that
//! `debian/build-deb.sh --arch arm64` cross-builds (glibc 2.31, static libelf
//! and zlib) runs in an arm64 guest (qemu-system-aarch64 -M virt, TCG) on an
//! arm64 kernel cross-built from Debian's linux-source
//! (tests/vm/build-kernel-arm64.sh), through the same guest-devlink.sh
//! scenarios as the x86 kernels, held to the same assertions
//! (tests/common/devlink.rs). The BPF object inside is the one every
//! architecture uses: its CO-RE relocations resolve against arm64's BTF here.
//!
//! The binary is not built here (a second, cross, release build inside
//! `cargo test`): .ci/run builds the arm64 package first. A missing or stale
//! binary fails the test, with the command that builds it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

mod common;

use common::devlink::check_guest;
use common::vm::{read, repo, run_guest_arm64};

const BUILD: &str = "bash debian/build-deb.sh --arch arm64";

/// The arm64 binary build-deb.sh leaves in this target directory.
fn arm64_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TRAPSTREAM_ARM64_BIN") {
        return PathBuf::from(p);
    }
    // CARGO_BIN_EXE_trapstream is TARGET_DIR/release/trapstream.
    let host = Path::new(env!("CARGO_BIN_EXE_trapstream"));
    let target_dir = host.parent().and_then(Path::parent).expect("target directory");
    target_dir.join("aarch64-unknown-linux-gnu/release/trapstream")
}

fn newest_source() -> (SystemTime, PathBuf) {
    let mut newest = (SystemTime::UNIX_EPOCH, PathBuf::new());
    let mut todo: Vec<PathBuf> = ["src", "bpf", "include", "build.rs", "Cargo.toml", "Cargo.lock"]
        .iter()
        .map(|p| repo().join(p))
        .collect();
    while let Some(p) = todo.pop() {
        let meta = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&p).expect("read_dir").map(|e| e.expect("dir entry").path()));
        } else if meta.modified().expect("mtime") > newest.0 {
            newest = (meta.modified().expect("mtime"), p);
        }
    }
    newest
}

fn check_binary(bin: &Path) {
    let meta = std::fs::metadata(bin)
        .unwrap_or_else(|e| panic!("the arm64 trapstream {bin:?}: {e}: build it with `{BUILD}`"));
    let (newest, source) = newest_source();
    assert!(
        meta.modified().expect("mtime") >= newest,
        "the arm64 trapstream {bin:?} is older than {source:?}: rebuild it with `{BUILD}`"
    );
    let out = Command::new("readelf").arg("-h").arg(bin).output().expect("run readelf");
    let header = String::from_utf8_lossy(&out.stdout);
    assert!(header.contains("AArch64"), "{bin:?} is not an arm64 executable:\n{header}");
}

/// The BPF object the arm64 build embedded: the newest in its OUT_DIRs.
fn arm64_bpf_object(bin: &Path) -> PathBuf {
    let build = bin.parent().expect("release directory").join("build");
    let mut objects: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(&build)
        .unwrap_or_else(|e| panic!("{build:?}: {e}: build with `{BUILD}`"))
        .map(|e| e.expect("dir entry").path().join("out/trapstream.bpf.o"))
        .filter(|p| p.is_file())
        .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).expect("mtime"), p))
        .collect();
    objects.sort();
    objects.pop().unwrap_or_else(|| panic!("no trapstream.bpf.o under {build:?}: build with `{BUILD}`")).1
}

/// CO-RE across architectures: the object built for arm64 is byte for byte
/// the one built for this host, so the same source and the same bytes serve
/// both; only the kernel's BTF differs.
#[test]
fn one_bpf_object_for_every_architecture() {
    let host: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trapstream.bpf.o"));
    let bin = arm64_binary();
    check_binary(&bin);
    let path = arm64_bpf_object(&bin);
    let arm64 = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(host.len() > 1000, "host object: {} bytes", host.len());
    assert!(
        arm64 == host,
        "{path:?} ({} bytes) differs from this host's object ({} bytes)",
        arm64.len(),
        host.len()
    );
}

fn check_arm64_kernel(version: &str) {
    let bin = arm64_binary();
    check_binary(&bin);
    let dir = run_guest_arm64(version, "guest-devlink.sh", &bin, &[]);
    // The guest really was arm64: the virt board's device tree and the
    // kernel's own machine name.
    let console = read(&dir, "console.log");
    assert!(console.contains("Machine model: linux,dummy-virt"), "not the arm64 virt board:\n{console}");
    let arch = read(&dir, "arch");
    assert_eq!(arch.trim(), "aarch64", "uname -m in the guest");
    check_guest(version, &dir);
}

#[test]
fn arm64_devlink_traps_on_linux_6_1() {
    check_arm64_kernel("6.1");
}

// Not in CI: each is another cold kernel build (about as long as 6.1's),
// past .ci/run's time limit. Run by hand with --ignored.
#[test]
#[ignore = "another cold arm64 kernel build; run with --ignored"]
fn arm64_devlink_traps_on_linux_5_10() {
    check_arm64_kernel("5.10");
}
