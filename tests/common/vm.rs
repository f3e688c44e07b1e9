//! The QEMU harness shared by the VM tests: a cached test kernel per
//! version (tests/vm/build-kernel.sh), one boot running one guest script
//! (tests/vm/run-guest.sh), and readers for what the guest left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kernel image for `version`, built once and cached; a failure to
/// build is a test failure, with the builder's own message.
pub fn kernel(version: &str) -> PathBuf {
    build_kernel("build-kernel.sh", version)
}

/// The arm64 kernel image for `version` (tests/vm/build-kernel-arm64.sh).
pub fn kernel_arm64(version: &str) -> PathBuf {
    build_kernel("build-kernel-arm64.sh", version)
}

fn build_kernel(script: &str, version: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("tests/vm").join(script))
        .arg(version)
        .output()
        .expect("run tests/vm/build-kernel.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "building the {version} test kernel failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(stdout.lines().last().expect("the image path").trim());
    assert!(path.is_file(), "build-kernel.sh printed {path:?}, which is not a file");
    path
}

/// Boot `version`, run `script` (under tests/vm/) with trapstream and socat
/// in the guest and `env` (TRAPSTREAM_GUEST_* names) set there; return the
/// results directory.
pub fn run_guest(version: &str, script: &str, env: &[(&str, String)]) -> PathBuf {
    let image = kernel(version);
    let harness = [("TRAPSTREAM_VM_EXTRA_BINS", which("socat"))];
    boot(&image, version, script, Path::new(env!("CARGO_BIN_EXE_trapstream")), &harness, env)
}

/// As `run_guest`, on the arm64 kernel `version` under qemu-system-aarch64,
/// with `binary` (an arm64 trapstream) and the arm64 userland's socat.
pub fn run_guest_arm64(version: &str, script: &str, binary: &Path, env: &[(&str, String)]) -> PathBuf {
    let image = kernel_arm64(version);
    // Emulating another architecture costs more per instruction than x86
    // TCG: a longer wall-clock limit unless one is given.
    let timeout = std::env::var("TRAPSTREAM_VM_TIMEOUT").unwrap_or_else(|_| "600".to_string());
    let harness = [
        ("TRAPSTREAM_VM_ARCH", "arm64".to_string()),
        ("TRAPSTREAM_VM_EXTRA_BINS", "socat".to_string()),
        ("TRAPSTREAM_VM_TIMEOUT", timeout),
    ];
    boot(&image, &format!("arm64-{version}"), script, binary, &harness, env)
}

fn boot(
    image: &Path,
    tag: &str,
    script: &str,
    binary: &Path,
    harness: &[(&str, String)],
    env: &[(&str, String)],
) -> PathBuf {
    let name = script.trim_end_matches(".sh");
    let out_dir = std::env::temp_dir().join(format!("trapstream-vm-{name}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/vm/run-guest.sh"))
        .arg(image)
        .arg(&out_dir)
        .arg(repo().join("tests/vm").join(script))
        .arg(binary)
        .envs(harness.iter().map(|(k, v)| (k, v)));
    for (name, value) in env {
        assert!(name.starts_with("TRAPSTREAM_GUEST_"), "{name} would not reach the guest");
        cmd.env(name, value);
    }
    let out = cmd.output().expect("run tests/vm/run-guest.sh");
    assert!(
        out.status.success(),
        "the {tag} guest ({script}) failed (results in {out_dir:?}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir
}

pub fn which(name: &str) -> String {
    let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "{name} is not installed: run .ci/setup");
    path
}

pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The final counters of a scenario that exited 0, checked against the ledger.
pub fn final_stats(dir: &Path, scenario: &str) -> String {
    let err = read(dir, &format!("{scenario}.err"));
    assert_eq!(read(dir, &format!("{scenario}.status")).trim(), "0", "{scenario} exit status; log:\n{err}");
    let line = err
        .lines()
        .find(|l| l.contains("final:"))
        .unwrap_or_else(|| panic!("{scenario}: no final counters:\n{err}"))
        .to_string();
    super::assert_ledger(&line);
    line
}

/// The JSON lines trapstream wrote, without its own counters.
pub fn records(dir: &Path, scenario: &str) -> Vec<Value> {
    read(dir, &format!("{scenario}.out"))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{scenario}: {e}: {l}")))
        .filter(|r| r.get("measurement").is_none())
        .collect()
}

/// Packets per trap in the records (a record with `count` stands for that many).
pub fn per_trap(records: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r["trapName"].as_str().expect("trapName").to_string()).or_default() +=
            r["count"].as_u64().unwrap_or(1);
    }
    m
}
