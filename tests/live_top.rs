//! Live: `trapstream top` in a real terminal. tmux runs a shell in an 80×24
//! pane, the test types the command, makes real kernel drops in namespaces
//! of its own (filtered to them, so other drops on the host do not count),
//! reads the screen with capture-pane and presses keys with send-keys.
//! Needs root and tmux (.ci/setup installs it).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_ledger, counter, Hosts, TempConfig};

const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of the test's own (its own socket), one session running an
/// interactive bash with a plain prompt. Killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(tag: &str) -> Tmux {
        let socket = format!("trapstream-test-{}-{tag}", std::process::id());
        let t = Tmux { socket };
        let status = t
            .cmd(&["new-session", "-d", "-s", "top", "-x", "80", "-y", "24"])
            .arg("env PS1='$ ' TERM=xterm-256color bash --norc --noprofile")
            .status()
            .expect("tmux (install it: .ci/setup)");
        assert!(status.success(), "tmux new-session: {status}");
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type a command line and press Enter.
    fn type_line(&self, line: &str) {
        self.run(&["send-keys", "-t", "top", "-l", line]);
        self.run(&["send-keys", "-t", "top", "Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", "top"])
    }

    fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "top", format]).trim().to_string()
    }

    /// The screen once `done` holds for it; panics with the screen after WAIT.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "no {what} on the screen within {WAIT:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).stderr(Stdio::null()).status();
    }
}

/// The row of `screen` whose first column is `name`: its cells, split on blanks.
fn row<'s>(screen: &'s str, name: &str) -> Option<Vec<&'s str>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
}

/// The TOTAL column (the last) of the row `name` shows `total`.
fn shows_total(screen: &str, name: &str, total: u64) -> bool {
    row(screen, name).is_some_and(|cells| cells.last() == Some(&total.to_string().as_str()))
}

/// The line that is exactly `text` (the typed command line holds it too, quoted).
fn has_line(screen: &str, text: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == text)
}

/// The exit status the shell printed, once it has.
fn exit_status(screen: &str) -> Option<&str> {
    screen.lines().find_map(|l| l.trim_end().strip_prefix("exit="))
}

/// A flow row: "udp SRC > DST  RATE  TOTAL"; its total.
fn flow_total(screen: &str, flow: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.trim_start().starts_with(flow))?;
    line.split_whitespace().last()?.parse().ok()
}

/// `trapstream top` started by the pane's shell, which prints its exit
/// status when it ends. Its pid and its log (stderr, to a file) are kept.
struct Top {
    pid_file: PathBuf,
    log_file: PathBuf,
}

impl Top {
    fn start(tmux: &Tmux, args: &str) -> Top {
        let dir = std::env::temp_dir();
        let tag = format!("{}-{}", std::process::id(), tmux.socket.len() + args.len());
        let top = Top {
            pid_file: dir.join(format!("trapstream-top-{tag}.pid")),
            log_file: dir.join(format!("trapstream-top-{tag}.log")),
        };
        let _ = std::fs::remove_file(&top.pid_file);
        let bin = env!("CARGO_BIN_EXE_trapstream");
        // exec: the pid written is trapstream's.
        tmux.type_line(&format!(
            "sh -c 'echo $$ > {}; exec {bin} top {args} 2> {}'; echo \"exit=$?\"",
            top.pid_file.display(),
            top.log_file.display()
        ));
        let screen = tmux.wait_for("view", |s| s.contains("trapstream top") && s.contains("RATE/s"));
        assert!(screen.lines().count() <= 24, "{screen}");
        top.wait_for_log("capturing");
        top
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(&self.pid_file).expect("pid file").trim().parse().expect("pid")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "no '{needle}' in the log within {WAIT:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ids of the BPF programs trapstream holds open (from /proc fdinfo).
    fn prog_ids(&self) -> Vec<u32> {
        let dir = format!("/proc/{}/fdinfo", self.pid());
        let mut ids: Vec<u32> = std::fs::read_dir(&dir)
            .expect("fdinfo")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|info| {
                info.lines().find_map(|l| l.strip_prefix("prog_id:")).and_then(|v| v.trim().parse().ok())
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// After it exited: the status its shell printed, the screen given back
    /// (no alternate screen, cursor shown, the tty in cooked mode), the
    /// process gone, its programs unloaded, and the ledger balanced.
    fn assert_quit_cleanly(self, tmux: &Tmux, progs: &[u32]) -> String {
        let pid = self.pid();
        let screen = tmux.wait_for("exit status", |s| exit_status(s).is_some());
        assert_eq!(exit_status(&screen), Some("0"), "{screen}\n{}", self.log());
        assert_eq!(tmux.format("#{alternate_on}"), "0", "still on the alternate screen");
        assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor still hidden");
        // bash gives each command the tty modes it found after the last
        // one, so a raw mode left behind would show here.
        tmux.type_line("stty -a | grep -q -- -icanon && echo tty=raw || echo tty=cooked");
        let screen = tmux.wait_for("tty mode", |s| has_line(s, "tty=raw") || has_line(s, "tty=cooked"));
        assert!(has_line(&screen, "tty=cooked"), "{screen}");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still running");
        assert!(!progs.is_empty(), "trapstream held no BPF programs");
        let deadline = Instant::now() + WAIT;
        while progs.iter().any(|&id| prog_exists(id)) {
            assert!(Instant::now() < deadline, "BPF programs {progs:?} still loaded after exit");
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = self.wait_for_log("final:");
        let final_line = log.lines().find(|l| l.contains("final:")).unwrap_or_default().to_string();
        assert_ledger(&final_line);
        final_line
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file).map(|p| p.trim().parse::<i32>().unwrap_or(0))
        {
            if pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists() {
                // SAFETY: kill(2) on the pid of the trapstream this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = std::fs::remove_file(&self.log_file);
    }
}

/// Whether a BPF program with this id is loaded (BPF_PROG_GET_FD_BY_ID).
fn prog_exists(id: u32) -> bool {
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    // union bpf_attr for this command: prog_id, next_id, open_flags.
    let attr: [u32; 3] = [id, 0, 0];
    // SAFETY: attr is a valid, initialised buffer of the size passed.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_GET_FD_BY_ID, attr.as_ptr(), std::mem::size_of_val(&attr))
    };
    if fd >= 0 {
        // SAFETY: a descriptor this call just returned.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "BPF_PROG_GET_FD_BY_ID {id}: {err}");
    false
}

#[test]
fn top_counts_live_drops_by_reason_port_and_flow() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let tmux = Tmux::start("views");
    let top = Top::start(&tmux, &format!("--source skb -c {}", cfg.arg()));
    let progs = top.prog_ids();

    // Two flows from one socket: 3 datagrams to one closed port, 5 to another.
    let (few, many) = (40123, 40456);
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().expect("addr").port();
    assert_eq!(hosts.udp_flood(&sock, &hosts.v4_b, &[few], 3, 16, None), 3);
    assert_eq!(hosts.udp_flood(&sock, &hosts.v4_b, &[many], 5, 16, None), 5);

    let screen = tmux.wait_for("NO_SOCKET with total 8", |s| shows_total(s, "NO_SOCKET", 8));
    assert_eq!(row(&screen, "NO_SOCKET").map(|c| c[1]), Some("kernel"), "{screen}");
    assert!(screen.contains("seen ") && screen.contains(" shown 8 "), "ledger: {screen}");

    tmux.keys(&["v"]);
    let screen = tmux.wait_for("ports view", |s| s.contains("PORTS") && shows_total(s, &hosts.dev_b, 8));
    assert!(!screen.contains("NO_SOCKET"), "{screen}");

    tmux.keys(&["v"]);
    let flow = |port: u16| format!("udp {}:{sport} > {}:{port}", hosts.v4_a, hosts.v4_b);
    let screen = tmux.wait_for("flows view", |s| {
        s.contains("FLOWS") && flow_total(s, &flow(few)) == Some(3) && flow_total(s, &flow(many)) == Some(5)
    });
    let position = |s: &str, port| s.find(&flow(port)).unwrap_or_else(|| panic!("no {}:\n{s}", flow(port)));
    assert!(position(&screen, many) < position(&screen, few), "by rate, busier first:\n{screen}");
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("sort by total", |s| s.contains("sort total"));
    assert!(position(&screen, many) < position(&screen, few), "by total, bigger first:\n{screen}");
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("sort by name", |s| s.contains("sort name"));
    assert!(position(&screen, few) < position(&screen, many), "by name:\n{screen}");

    // Bigger: redrawn to the new size, the ledger and keys on the last lines.
    tmux.run(&["resize-window", "-t", "top", "-x", "100", "-y", "30"]);
    let screen = tmux.wait_for("a 100×30 redraw", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == 30 && lines[29].contains("quit") && lines[28].contains("seen ")
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 100), "{screen}");
    assert_eq!(flow_total(&screen, &flow(many)), Some(5), "{screen}");
    // Narrower than the names: they are cut, the counts stay whole.
    tmux.run(&["resize-window", "-t", "top", "-x", "44", "-y", "12"]);
    let totals = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("udp "))
            .filter_map(|l| l.split_whitespace().last())
            .map(String::from)
            .collect()
    };
    let screen = tmux.wait_for("a 44×12 redraw with whole totals", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == 12
            && lines[11].contains("quit")
            && lines[10].contains("seen ")
            && totals(s) == ["3", "5"]
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 44), "{screen}");
    tmux.run(&["resize-window", "-t", "top", "-x", "80", "-y", "24"]);
    tmux.wait_for("an 80×24 redraw", |s| s.lines().count() == 24 && s.contains("FLOWS"));

    tmux.keys(&["q"]);
    let final_line = top.assert_quit_cleanly(&tmux, &progs);
    assert_eq!(counter(&final_line, "sent"), 8, "shown = the drops sent: {final_line}");
    assert_eq!(counter(&final_line, "channel_lost"), 0, "{final_line}");
}

#[test]
fn ctrl_c_and_sigterm_quit_and_give_the_terminal_back() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let tmux = Tmux::start("quit");

    let top = Top::start(&tmux, &format!("--source skb -c {}", cfg.arg()));
    let progs = top.prog_ids();
    hosts.udp_to_closed_ports(&hosts.v4_b, &[40600, 40601], 16);
    tmux.wait_for("NO_SOCKET with total 2", |s| shows_total(s, "NO_SOCKET", 2));
    tmux.keys(&["C-c"]);
    let final_line = top.assert_quit_cleanly(&tmux, &progs);
    assert_eq!(counter(&final_line, "sent"), 2, "{final_line}");

    let top = Top::start(&tmux, &format!("--source skb -c {} --window 3", cfg.arg()));
    let progs = top.prog_ids();
    assert!(tmux.screen().contains("window 3s"), "{}", tmux.screen());
    // SAFETY: kill(2) on the pid of the trapstream this test started.
    unsafe { libc::kill(top.pid(), libc::SIGTERM) };
    top.assert_quit_cleanly(&tmux, &progs);
}

/// Under -u the kernel counts per flow; a flow record counts its packets.
#[test]
fn aggregated_flow_records_count_their_packets() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let tmux = Tmux::start("agg");
    let top = Top::start(&tmux, &format!("--source skb -u 1 -c {}", cfg.arg()));
    let progs = top.prog_ids();
    assert!(tmux.screen().contains("(packets)"), "{}", tmux.screen());
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().expect("addr").port();
    assert_eq!(hosts.udp_flood(&sock, &hosts.v4_b, &[40700], 6, 16, None), 6);
    tmux.wait_for("NO_SOCKET with total 6", |s| shows_total(s, "NO_SOCKET", 6));
    tmux.keys(&["v", "v"]);
    let flow = format!("udp {}:{sport} > {}:40700", hosts.v4_a, hosts.v4_b);
    tmux.wait_for("the flow with 6 packets", |s| flow_total(s, &flow) == Some(6));
    tmux.keys(&["q"]);
    let final_line = top.assert_quit_cleanly(&tmux, &progs);
    assert_eq!(counter(&final_line, "flow_packets"), 6, "{final_line}");
}

#[test]
fn without_a_terminal_top_says_so_in_one_line() {
    // Standard output a pipe.
    let out = Command::new(env!("CARGO_BIN_EXE_trapstream"))
        .args(["top", "--source", "skb"])
        .stdin(Stdio::null())
        .output()
        .expect("run trapstream");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("trapstream: top needs a terminal: standard output is not a terminal"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // Standard output the terminal, standard input not.
    let tmux = Tmux::start("notty");
    let bin = env!("CARGO_BIN_EXE_trapstream");
    tmux.type_line(&format!("{bin} top --source skb </dev/null; echo \"exit=$?\""));
    let screen = tmux.wait_for("exit status", |s| exit_status(s).is_some());
    assert_eq!(exit_status(&screen), Some("2"), "{screen}");
    let lines: Vec<&str> = screen.lines().filter(|l| l.starts_with("trapstream: ")).collect();
    assert_eq!(lines.len(), 1, "{screen}");
    assert!(lines[0].contains("top needs a terminal: standard input is not a terminal"), "{screen}");
}
