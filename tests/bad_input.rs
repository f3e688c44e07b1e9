//! Malformed flags, configuration files and environments: each must end the
//! binary with status 2 and one line on stderr naming the problem, before it
//! captures anything. tests/cli.rs has the basic flags; these are the rest.
//!
//! Every run carries --check-config so that a case the binary wrongly accepts
//! exits at once ("configuration OK") instead of capturing until the timeout.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command) -> Run {
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trapstream");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?}: still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Error output is a line or two: it fits in the pipe while the child runs.
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    Run { status: status.code(), stdout, stderr }
}

fn trapstream(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trapstream"));
    cmd.args(args).arg("--check-config");
    run(cmd)
}

/// Status 2, nothing on stdout, and exactly one line on stderr that contains
/// every needle. A carriage return counts as a line break: on a terminal it
/// rewrites the line, which is as misleading as a second one.
fn problem(what: &str, r: &Run, needles: &[&str]) -> Option<String> {
    let body = r.stderr.strip_suffix('\n').unwrap_or(&r.stderr);
    let mut wrong = Vec::new();
    if r.status != Some(2) {
        wrong.push(format!("status {:?}, not 2", r.status));
    }
    if body.is_empty() || body.contains(['\n', '\r']) || !r.stderr.ends_with('\n') {
        wrong.push("not exactly one line".to_string());
    }
    if !body.starts_with("trapstream: ") {
        wrong.push("no 'trapstream: ' prefix".to_string());
    }
    if let Some(missing) = needles.iter().find(|n| !body.contains(*n)) {
        wrong.push(format!("does not say {missing:?}"));
    }
    if !r.stdout.is_empty() {
        wrong.push(format!("wrote to stdout: {:?}", r.stdout));
    }
    (!wrong.is_empty()).then(|| format!("{what}: {}: stderr {:?}", wrong.join(", "), r.stderr))
}

/// Runs a whole table before failing, so that one run lists every bad case.
fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} case(s) misbehave:\n{}", failures.len(), failures.join("\n"));
}

/// A file that lives as long as the test, in a directory of its own.
struct Temp(PathBuf);

impl Temp {
    fn dir() -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("trapstream-bad-input-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Temp(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn malformed_flags() {
    let table: &[(&[&str], &[&str])] = &[
        (&["--rate-limit", "5/m", "--stdout"], &["--rate-limit '5/m' is not a whole number"]),
        (&["--rate-limit", "-5", "--stdout"], &["--rate-limit must be 0..=100000000, got -5"]),
        (&["--rate-limit", "5/s/s", "--stdout"], &["--rate-limit '5/s' is not a whole number"]),
        (&["--lru-size", "3", "--stdout"], &["--lru-size must be 4..=1048576, got 3"]),
        (&["--lru-size", "1048577", "--stdout"], &["--lru-size must be 4..=1048576, got 1048577"]),
        (
            &["--transport", "tcp", "--tcp-backlog", "x", "127.0.0.1", "8094"],
            &["--tcp-backlog 'x' is not a whole number"],
        ),
        (
            &["--transport", "tcp", "--tcp-backlog", "-1", "127.0.0.1", "8094"],
            &["--tcp-backlog must be 0..=1073741824, got -1"],
        ),
        // Malformed even where it would not be used: -r is checked with UDP
        // too, and a typo should not wait for the day TCP is switched on.
        (&["--tcp-backlog", "x", "127.0.0.1", "8094"], &["--tcp-backlog 'x' is not a whole number"]),
        (&["--tcp-backlog", "x", "--stdout"], &["--tcp-backlog 'x' is not a whole number"]),
        (&["--transport", "sctp", "127.0.0.1", "8094"], &["invalid value 'sctp'"]),
        (&["--trap-types", "drop,bogus", "--stdout"], &["invalid value 'bogus'", "--trap-types"]),
        (&["--trap-types", "", "--stdout"], &["--trap-types"]),
        (&["--source", "xdp", "--stdout"], &["invalid value 'xdp'", "--source"]),
        (&["-u", "-1", "--stdout"], &["--unique-interval must be more than 0 seconds, got -1"]),
        (&["-u", "0", "--stdout"], &["--unique-interval must be more than 0 seconds, got 0"]),
        (&["--exemplars", "3", "--stdout"], &["--exemplars needs -u (--unique-interval)"]),
        (&["-u", "5", "--exemplars", "0", "--stdout"], &["--exemplars must be 1..=1000, got 0"]),
        (&["-u", "5", "--exemplars", "1001", "--stdout"], &["--exemplars must be 1..=1000, got 1001"]),
        (&["-u", "5", "--exemplars", "3x", "--stdout"], &["--exemplars '3x' is not a whole number"]),
        (&["-r", "abc", "--stdout"], &["--retry-timeout 'abc' is not a number of seconds"]),
        (&["-i", "nan", "--stdout"], &["--interval must be 0 or more seconds, got nan"]),
        (&["-i", "inf", "--stdout"], &["--interval must be 0 or more seconds, got inf"]),
        (&["-i", "", "--stdout"], &["--interval '' is not a number of seconds"]),
        (
            &["--stats-interval", "-0.5", "--stdout"],
            &["--stats-interval must be 0 or more seconds, got -0.5"],
        ),
        (&["--channel-depth", "0", "--stdout"], &["--channel-depth must be 1..=16777216, got 0"]),
        (&["-b", "1.5", "--stdout"], &["--batch-size '1.5' is not a whole number"]),
        (
            &["-b", "340282366920938463463374607431768211456", "--stdout"],
            &["--batch-size '340282366920938463463374607431768211456' is not a whole number"],
        ),
        (&["--ring-size", "5000", "--stdout"], &["--ring-size must be a power of two, got 5000"]),
        (&["--ring-size", "2048", "--stdout"], &["--ring-size must be 4096..=1073741824, got 2048"]),
        (&["--max-datagram", "65508", "--stdout"], &["--max-datagram must be 64..=65507, got 65508"]),
        (&["-d", "300.1.1.1", "--stdout"], &["--device-ip '300.1.1.1' is not an IPv4 or IPv6 address"]),
        // An IPv6 collector with its port glued on, the way URLs write it.
        (
            &["2001:db8:0:0:0:0:0:1:8094", "8094"],
            &["collector address '2001:db8:0:0:0:0:0:1:8094' is not an IPv4 or IPv6 address"],
        ),
        (&["[2001:db8::1]:8094", "8094"], &["collector address '[2001:db8::1]:8094' is not an IPv4 or IPv6"]),
        (&["192.0.2.1:8094", "8094"], &["collector address '192.0.2.1:8094' is not an IPv4 or IPv6 address"]),
        (&["fe80::1%eth0", "8094"], &["collector address 'fe80::1%eth0' is not an IPv4 or IPv6 address"]),
        (&["127.0.0.1", "80x"], &["COLLECTOR_PORT '80x' is not a port number"]),
        (&["127.0.0.1"], &["missing COLLECTOR_PORT after COLLECTOR_IP"]),
        (&["127.0.0.1", "8094", "extra"], &["unexpected argument 'extra'"]),
        (&["--stdout", "127.0.0.1", "8094"], &["--stdout takes no collector address and port"]),
        (&["-f", "text", "127.0.0.1", "8094"], &["-f text is for --stdout only"]),
        // A value that smuggles a second line into the error must not get one.
        (&["-d", "192.0.2.1\nfake: configuration OK", "--stdout"], &["--device-ip '192.0.2.1"]),
    ];
    let failures = table
        .iter()
        .filter_map(|(args, needles)| problem(&format!("{args:?}"), &trapstream(args), needles))
        .collect();
    report(failures);
}

#[test]
fn malformed_config_files() {
    let tmp = Temp::dir();
    // (file text, extra flags, what stderr must say); the message also names the file.
    let table: &[(&str, &[&str], &[&str])] = &[
        ("colector_ip = \"192.0.2.1\"\n", &["--stdout"], &["line 1: unknown field `colector_ip`"]),
        (
            "stdout = true\n[filters]\ninclude_port = [\"swp1\"]\n",
            &[],
            &["line 3: unknown field `include_port`"],
        ),
        ("batch_size = \"20\"\n", &["--stdout"], &["line 1: invalid type: string \"20\""]),
        ("stdout = \"yes\"\n", &[], &["line 1: invalid type: string \"yes\", expected a boolean"]),
        ("format = \"xml\"\n", &["--stdout"], &["line 1: unknown variant `xml`"]),
        ("source = \"xdp\"\n", &["--stdout"], &["line 1: unknown variant `xdp`"]),
        ("trap_types = [\"drop\", \"bogus\"]\n", &["--stdout"], &["line 1: unknown variant `bogus`"]),
        (
            "collector_ip = \"10.0.0.300\"\ncollector_port = 8094\n",
            &[],
            &["line 1: collector_ip '10.0.0.300' is not an IPv4 or IPv6 address"],
        ),
        (
            "collector_ip = \"127.0.0.1\"\ncollector_port = 70000\n",
            &[],
            &["line 2: collector_port must be 1..65535"],
        ),
        ("device_ip = \"::g\"\n", &["--stdout"], &["line 1: device_ip '::g' is not an IPv4 or IPv6 address"]),
        ("stdout = true\nbatch_size = = 3\n", &[], &["line 2: "]),
        ("stdout = true\n[filters\n", &[], &["line 2: "]),
        ("batch_size = 1\nbatch_size = 2\n", &["--stdout"], &["line 2: ", "duplicate key"]),
        ("ring_size = 5000\n", &["--stdout"], &["line 1: ring_size must be a power of two, got 5000"]),
        ("interval = -1\n", &["--stdout"], &["line 1: interval must be 0 or more seconds, got -1"]),
        ("rate_limit = \"5/m\"\n", &["--stdout"], &["line 1: rate_limit '5/m' is not a whole number"]),
        ("stdout = true\ntcp_backlog = -1\n", &[], &["line 2: tcp_backlog must be 0..=1073741824, got -1"]),
        ("stdout = true\n[filters]\ninclude_ports = [\"\"]\n", &[], &["port '' must be 1..15 characters"]),
        (
            "stdout = true\n[filters]\nexclude_ports = [\"swp1\", \"abcdefghijklmnop\"]\n",
            &[],
            &["port 'abcdefghijklmnop' must be 1..15 characters"],
        ),
        (
            "stdout = true\n[filters]\ninclude_reasons = [\"NO_SOCKET\", \"NOT_A_DROP_REASON\"]\n",
            &[],
            &["skb drop reason 'NOT_A_DROP_REASON' is not known to this kernel"],
        ),
        (
            "stdout = true\n[filters]\ninclude_netns = [\"trapstream-no-such-netns\"]\n",
            &[],
            &["line 3: filters.include_netns: network namespace 'trapstream-no-such-netns'"],
        ),
        (
            "stdout = true\n[taxonomy.ttl_value_is_too_small]\nseverity = \"Urgent\"\n",
            &[],
            &["line 3: taxonomy.ttl_value_is_too_small.severity 'Urgent' is not one of"],
        ),
        ("stdout = true\n[taxonomy.x]\ncolour = \"red\"\n", &[], &["line 3: unknown field `colour`"]),
        ("stdout = true\ncollector_ip = \"127.0.0.1\"\ncollector_port = 8094\n", &[], &["--stdout takes no"]),
        // Values that carry a line break into the message must not break it.
        ("\"bad\\nkey\" = 1\n", &["--stdout"], &["line 1: unknown field `bad"]),
        ("format = \"x\\ny\"\n", &["--stdout"], &["line 1: unknown variant `x"]),
        ("device_ip = \"192.0.2.1\\r\\nok\"\n", &["--stdout"], &["line 1: device_ip '192.0.2.1"]),
        (
            "stdout = true\n[filters]\ninclude_reasons = [\"NO_SOCKET\\nOK\"]\n",
            &[],
            &["skb drop reason 'NO_SOCKET"],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, flags, needles)) in table.iter().enumerate() {
        let path = tmp.file(&format!("case{i}.toml"), text.as_bytes());
        let mut args = vec!["--config", utf8(&path)];
        args.extend_from_slice(flags);
        let mut needles = needles.to_vec();
        // Filter names are checked later, against what the kernel can match,
        // and the stdout/collector clash is a usage error: those do not name the file.
        let checked_later = ["_ports", "include_reasons"].iter().any(|k| text.contains(k))
            || needles.iter().any(|n| n.starts_with("--stdout"));
        if !checked_later {
            needles.push(utf8(&path));
        }
        failures.extend(problem(&format!("file {text:?} with {flags:?}"), &trapstream(&args), &needles));
    }
    let path = tmp.file("latin1.toml", b"format = \"caf\xe9\"\n");
    let r = trapstream(&["--config", utf8(&path), "--stdout"]);
    failures.extend(problem("a file that is not UTF-8", &r, &[utf8(&path), "valid UTF-8"]));
    report(failures);
}

#[test]
fn config_paths_that_cannot_be_read() {
    let tmp = Temp::dir();
    let missing = tmp.0.join("no-such.toml");
    let mut failures = Vec::new();
    let r = trapstream(&["--config", utf8(&missing), "--stdout"]);
    failures.extend(problem("a missing file", &r, &[utf8(&missing), "No such file or directory"]));
    let r = trapstream(&["--config", utf8(&tmp.0), "--stdout"]);
    failures.extend(problem("a directory", &r, &[utf8(&tmp.0), "Is a directory"]));
    let r = trapstream(&["--config", "", "--stdout"]);
    failures.extend(problem("an empty path", &r, &["a value is required for '--config <PATH>'"]));
    report(failures);
}

/// As an unprivileged user (root reads any file): a configuration file it may
/// not read is a problem with the file, not a crash or a silent default.
#[test]
fn unreadable_config_file_as_non_root() {
    let tmp = Temp::dir();
    // A copy `nobody` can reach whatever the checkout's permissions are.
    let bin = tmp.0.join("trapstream");
    std::fs::copy(env!("CARGO_BIN_EXE_trapstream"), &bin).expect("copy the binary");
    std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let config = tmp.file("secret.toml", b"stdout = true\n");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod file");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]).arg(&bin).args([
        "--config",
        utf8(&config),
        "--check-config",
    ]);
    let r = run(cmd);
    report(problem("an unreadable file", &r, &[utf8(&config), "Permission denied"]).into_iter().collect());
}

/// `trapstream top` shows drops in the terminal: an output is a mistake.
#[test]
fn top_with_an_output() {
    let table: &[(&[&str], &[&str])] = &[
        (&["top", "--stdout"], &["top shows the drops in this terminal and takes no --stdout"]),
        (&["top", "127.0.0.1", "8094"], &["takes no collector (COLLECTOR_IP)"]),
        (&["top", "-f", "json"], &["takes no --format"]),
        (&["top", "--transport", "tcp"], &["takes no --transport"]),
        (&["--stdout", "top"], &["top comes before its flags: trapstream top [OPTIONS]"]),
        // -c is the configuration file, for top as for streaming.
        (&["top", "-c", "127.0.0.1:8094"], &["127.0.0.1:8094: No such file or directory"]),
        (&["top", "--window", "0"], &["--window must be 1..=3600, got 0"]),
    ];
    let failures = table
        .iter()
        .filter_map(|(args, needles)| problem(&format!("{args:?}"), &trapstream(args), needles))
        .collect();
    report(failures);
}
