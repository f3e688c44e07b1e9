//! Test hosts for live tests: network namespaces joined by a veth pair, real
//! drops sent between them, and a trapstream process to watch them.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const MAC_A: &str = "02:00:5e:00:00:0a";
pub const MAC_B: &str = "02:00:5e:00:00:0b";

fn run(cmd: &[&str]) {
    let status = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Two namespaces, A and B, with a veth pair between them: 10.(x).(y).1 and
/// fd00:(x):(y)::1 in A, .2 / ::2 in B. Removed on drop.
pub struct Hosts {
    pub ns_a: String,
    pub ns_b: String,
    pub dev_a: String,
    pub dev_b: String,
    pub v4_a: String,
    pub v4_b: String,
    pub v6_a: String,
    pub v6_b: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Hosts {
    pub fn new() -> Hosts {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id() % 60000 + n;
        let (x, y) = (100 + (id / 250) % 150, id % 250);
        let h = Hosts {
            ns_a: format!("ts{id}a"),
            ns_b: format!("ts{id}b"),
            dev_a: format!("ts{id}a0"),
            dev_b: format!("ts{id}b0"),
            v4_a: format!("10.{x}.{y}.1"),
            v4_b: format!("10.{x}.{y}.2"),
            v6_a: format!("fd00:{x}:{y}::1"),
            v6_b: format!("fd00:{x}:{y}::2"),
        };
        for ns in [&h.ns_a, &h.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&["ip", "link", "add", &h.dev_a, "type", "veth", "peer", "name", &h.dev_b]);
        for (ns, dev, mac, v4, v6) in
            [(&h.ns_a, &h.dev_a, MAC_A, &h.v4_a, &h.v6_a), (&h.ns_b, &h.dev_b, MAC_B, &h.v4_b, &h.v6_b)]
        {
            run(&["ip", "link", "set", dev, "netns", ns]);
            run(&["ip", "-n", ns, "link", "set", dev, "address", mac]);
            run(&["ip", "-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            run(&["ip", "-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        h
    }

    /// The namespace's inode, as trapstream reports it in netnsIno.
    pub fn netns_ino(ns: &str) -> u32 {
        std::fs::metadata(format!("/run/netns/{ns}")).expect("netns file").ino() as u32
    }

    pub fn ifindex(ns: &str, dev: &str) -> u32 {
        let out = Command::new("ip").args(["-n", ns, "-o", "link", "show", dev]).output().expect("ip link");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':').next().and_then(|s| s.trim().parse().ok()).expect("ifindex")
    }

    /// Run `f` on a thread that has entered namespace `ns`.
    pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{ns}")).expect("open netns");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with a valid namespace fd.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    /// Send one UDP datagram per destination port from A to B, where nothing
    /// listens: B's stack drops each with NO_SOCKET. Returns the source port.
    pub fn udp_to_closed_ports(&self, dst: &str, ports: &[u16], payload: usize) -> u16 {
        let dst_ip: std::net::IpAddr = dst.parse().expect("address");
        let bind: SocketAddr = if dst_ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("bind");
        Self::in_netns(&self.ns_a, || {
            let sock = UdpSocket::bind(bind).expect("bind in A");
            for &port in ports {
                sock.send_to(&vec![0x5a; payload], SocketAddr::new(dst_ip, port)).expect("send");
                // ICMP errors for the previous datagram are rate limited and
                // harmless; a short gap keeps neighbour resolution queues small.
                std::thread::sleep(Duration::from_millis(2));
            }
            sock.local_addr().expect("local addr").port()
        })
    }
}

impl Hosts {
    /// From one source port in A, send `per_port` datagrams to each port,
    /// interleaved, optionally pinned to `cpu` (the veth receive path runs on
    /// the sending CPU, so the drop happens there too). Returns what was sent.
    pub fn udp_flood(
        &self,
        sock: &UdpSocket,
        dst: &str,
        ports: &[u16],
        per_port: u32,
        payload: usize,
        cpu: Option<usize>,
    ) -> u64 {
        let dst_ip: std::net::IpAddr = dst.parse().expect("address");
        Self::in_netns(&self.ns_a, || {
            if let Some(cpu) = cpu {
                pin_to_cpu(cpu);
            }
            let data = vec![0x5a; payload];
            let mut sent = 0;
            for _ in 0..per_port {
                for &port in ports {
                    // ENOBUFS/ECONNREFUSED from earlier ICMP errors: the
                    // datagram was not sent, so try until it is.
                    while sock.send_to(&data, SocketAddr::new(dst_ip, port)).is_err() {}
                    sent += 1;
                }
            }
            sent
        })
    }

    /// A UDP socket bound in namespace A (its port stays fixed: one flow per destination).
    pub fn socket_in_a(&self) -> UdpSocket {
        Self::in_netns(&self.ns_a, || UdpSocket::bind("0.0.0.0:0").expect("bind in A"))
    }
}

pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET and sched_setaffinity(0, ...) act on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity({cpu}): {}", std::io::Error::last_os_error());
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A running trapstream, its stderr collected line by line.
pub struct Trapstream {
    pub child: Child,
    stderr: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Trapstream {
    pub fn start(args: &[&str]) -> Trapstream {
        Trapstream::start_in(None, args)
    }

    /// Start it inside network namespace `ns` (its sockets live there).
    pub fn start_in(ns: Option<&str>, args: &[&str]) -> Trapstream {
        Trapstream::spawn(ns, args, Stdio::piped())
    }

    /// Start it with standard output going to `stdout` (a file, /dev/full).
    pub fn start_with_stdout(args: &[&str], stdout: Stdio) -> Trapstream {
        Trapstream::spawn(None, args, stdout)
    }

    fn spawn(ns: Option<&str>, args: &[&str], stdout: Stdio) -> Trapstream {
        let bin = env!("CARGO_BIN_EXE_trapstream");
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start trapstream");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut t = Trapstream { child, stderr: rx, log: Vec::new() };
        t.wait_for_log("capturing", Duration::from_secs(30));
        t
    }

    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no '{needle}' from trapstream within {timeout:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, wait for exit; returns the exit status, stdout and the final stats line.
    pub fn stop(mut self) -> (i32, String, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let status = self.child.wait().expect("wait");
        let final_line = self.wait_for_log("final:", Duration::from_secs(10));
        (status.code().unwrap_or(-1), stdout, final_line)
    }
}

impl Trapstream {
    /// Wait for it to exit on its own; returns the exit status and the final stats line.
    pub fn wait_exit(mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "trapstream still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let final_line = self.wait_for_log("final:", Duration::from_secs(10));
        (status.code().unwrap_or(-1), final_line)
    }
}

/// The per-event identity from a stats line: what was read was sent, lost
/// at one stage, or is still held by the transport.
pub fn assert_read_accounted(stats: &str) {
    let named = |name: &str| if stats.contains(&format!(" {name}=")) { counter(stats, name) } else { 0 };
    assert_eq!(
        counter(stats, "read"),
        named("decode_errors")
            + named("channel_lost")
            + named("sent")
            + named("send_lost")
            + named("unacked_lost")
            + named("queued"),
        "read = decode_errors + channel_lost + sent + send_lost + unacked_lost + queued: {stats}"
    );
}

impl Drop for Trapstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A counter from the final stats line, e.g. `counter(line, "sent")`.
pub fn counter(line: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// A UDP socket standing in for the collector.
pub struct Collector {
    pub socket: UdpSocket,
}

impl Collector {
    pub fn bind(addr: &str) -> Collector {
        let socket = UdpSocket::bind(addr).expect("bind collector");
        // Bursts must not overflow the test's own socket: that loss would be
        // the test's, not trapstream's, and it could not be counted.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(32 << 20);
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        Collector { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("addr").port()
    }

    /// Receive datagrams until `done` says enough or `timeout` passes.
    pub fn receive_until(&self, timeout: Duration, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline && !done(&got) {
            if let Ok(n) = self.socket.recv(&mut buf) {
                got.push(buf[..n].to_vec());
            }
        }
        got
    }

    pub fn drain(&self, got: &mut Vec<Vec<u8>>) {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    }
}

/// A configuration file that lives as long as the test.
pub struct TempConfig(pub std::path::PathBuf);

impl TempConfig {
    pub fn new(text: &str) -> TempConfig {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("trapstream-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write config");
        TempConfig(path)
    }

    /// Only drops in this namespace reach the test's collector: other drops
    /// on the host (another agent, a build) cannot crowd it.
    pub fn only_netns(ns: &str) -> TempConfig {
        TempConfig::new(&format!("[filters]\ninclude_netns = [{}]\n", Hosts::netns_ino(ns)))
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
