//! The binary's command line: bad input exits 2 with one line naming the
//! problem and never starts capturing; help and version exit 0.

use std::process::{Command, Output};

fn trapstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trapstream")).args(args).output().expect("run trapstream")
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let table: &[(&[&str], &str)] = &[
        (&["999.0.0.1", "8094"], "collector address '999.0.0.1'"),
        (&["127.0.0.1", "0"], "COLLECTOR_PORT must be 1..65535, got 0"),
        (&["127.0.0.1", "70000"], "COLLECTOR_PORT must be 1..65535, got 70000"),
        (&["-b", "0", "127.0.0.1", "8094"], "--batch-size must be"),
        (&["-i", "-2", "127.0.0.1", "8094"], "--interval must be 0 or more seconds, got -2"),
        (&["-f", "xml", "127.0.0.1", "8094"], "invalid value 'xml'"),
        (&["--max-datagram", "10", "--stdout"], "--max-datagram must be 64..=65507, got 10"),
        (&[], "a collector (COLLECTOR_IP COLLECTOR_PORT), --stdout or --pcap is required"),
        (&["--no-such-flag", "--stdout"], "unexpected argument '--no-such-flag'"),
    ];
    for (args, needle) in table {
        let out = trapstream(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr:?}");
        assert!(stderr.starts_with("trapstream: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout");
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = trapstream(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("trapstream {}", env!("CARGO_PKG_VERSION"))
    );
    let out = trapstream(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--interval",
        "--batch-size",
        "--device-ip",
        "--format",
        "--unique-interval",
        "--retry-timeout",
        "--stdout",
        "--source",
        "--max-datagram",
        "--stats-interval",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// This machine's kernel has no devlink: the default source must say so and
/// point at --source skb, rather than fail with a bare libbpf error.
#[test]
fn missing_devlink_tracepoint_names_the_alternative() {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("kernel BTF");
    let needle = b"btf_trace_devlink_trap_report";
    if btf.windows(needle.len()).any(|w| w == needle) {
        // A devlink kernel would run until stopped; the VM tests cover it.
        return;
    }
    let out = trapstream(&["--stdout"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no devlink_trap_report tracepoint") && stderr.contains("--source skb"),
        "{stderr}"
    );
}

/// Without privileges: one line that says what to change, status 2, nothing
/// of libbpf's multi-line log.
#[test]
fn unprivileged_run_says_what_it_needs() {
    // A copy `nobody` can reach whatever the checkout's permissions are.
    let dir = std::env::temp_dir().join(format!("trapstream-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("trapstream");
    std::fs::copy(env!("CARGO_BIN_EXE_trapstream"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(&bin)
        .args(["--stdout", "--source", "skb"])
        .output()
        .expect("setpriv (util-linux)");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("permission denied: run as root, or with CAP_BPF and CAP_PERFMON"), "{stderr}");
}
