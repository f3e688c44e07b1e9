//! Test hosts for live tests: network namespaces joined by a veth pair, real
//! drops sent between them, and a trapstream process to watch them.

#![allow(dead_code)]

pub mod devlink;
pub mod vm;

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
        assert_ledger(&final_line);
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
        assert_ledger(&final_line);
        (status.code().unwrap_or(-1), final_line)
    }
}

impl Drop for Trapstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's accounting identities, on the counters trapstream logged at
/// exit: every tracepoint hit it handled is in exactly one counter, and
/// every record it read is delivered or counted lost. Checked after every
/// live scenario that stops trapstream.
pub fn assert_ledger(final_line: &str) {
    let c = |name: &str| counter(final_line, name);
    // Kernel: each hit is filtered, suppressed, lost for ring space, counted
    // into a flow table, or handed over (ring records, which user space reads
    // or fails to decode; flow entries are read the same way once drained).
    assert_eq!(
        c("seen") + optional(final_line, "flow_records"),
        c("filtered") + c("rate_limited") + c("ring_lost") + optional(final_line, "aggregated") + c("read")
            + c("decode_errors"),
        "seen + flow_records = filtered + rate_limited + ring_lost + aggregated + read + decode_errors: {final_line}"
    );
    if final_line.contains(" flushes=") {
        // -u: the ring carries only the packets no table had room for and
        // the exemplars of new flows, and every packet counted into a table
        // comes back out in a drain.
        assert_eq!(
            c("seen"),
            c("filtered")
                + c("rate_limited")
                + c("ring_lost")
                + c("aggregated")
                + c("overflow")
                + c("exemplars"),
            "seen = filtered + rate_limited + ring_lost + aggregated + overflow + exemplars: {final_line}"
        );
        assert_eq!(
            c("overflow") + c("exemplars") + c("flow_records"),
            c("read") + c("decode_errors"),
            "overflow + exemplars + flow_records = read + decode_errors: {final_line}"
        );
        assert_eq!(c("flow_packets"), c("aggregated"), "flow_packets = aggregated: {final_line}");
    }
    if final_line.contains(" pcap_frames=") {
        // --pcap: every per-packet record handed to the capture is written or lost.
        assert_eq!(
            c("pcap_frames"),
            c("pcap_written") + c("pcap_lost"),
            "pcap_frames = pcap_written + pcap_lost: {final_line}"
        );
    }
    if final_line.contains(" outputs=pcap") {
        // The capture is the only output: every record read is a packet for it.
        assert_eq!(c("read"), c("pcap_frames"), "read = pcap_frames (--pcap alone): {final_line}");
        assert_eq!(c("sent") + c("send_lost") + c("channel_lost"), 0, "no record output: {final_line}");
        return;
    }
    // User space: every record read is sent, lost on the way, or still queued.
    assert_eq!(
        c("read"),
        c("channel_lost") + c("sent") + c("send_lost") + c("unacked_lost") + c("queued"),
        "read = channel_lost + sent + send_lost + unacked_lost + queued: {final_line}"
    );
}

/// A counter that the stats line carries only in some modes (-u), else 0.
fn optional(line: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    line.split_whitespace().find_map(|w| w.strip_prefix(&key)).and_then(|v| v.parse().ok()).unwrap_or(0)
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
        // rmem_max (208 KiB by default) caps SO_RCVBUF, about a hundred
        // datagrams; the tests run as root, so force it past the cap.
        let size: libc::c_int = 32 << 20;
        // SAFETY: setsockopt on a socket this function owns, with a pointer to
        // a c_int that outlives the call and its true length.
        let forced = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(32 << 20);
        }
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

    /// Only NO_SOCKET drops in this namespace: what the tests send to B's
    /// closed ports, without the neighbour discovery and MLD packets a new
    /// namespace drops on its own, which would add records the exact
    /// assertions trip over.
    pub fn only_no_socket_in(ns: &str) -> TempConfig {
        TempConfig::new(&format!(
            "[filters]\ninclude_netns = [{}]\ninclude_reasons = [\"NO_SOCKET\"]\n",
            Hosts::netns_ino(ns)
        ))
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

/// A network namespace of its own, loopback up; removed on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ts{}{tag}{n}", std::process::id() % 60000);
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// `ip -n NAME args...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut cmd = vec!["ip", "-n", &self.name];
        cmd.extend_from_slice(args);
        run(&cmd);
    }

    /// A sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        run(&["ip", "netns", "exec", &self.name, "sysctl", "-qw", &format!("{key}={value}")]);
    }

    pub fn ino(&self) -> u32 {
        Hosts::netns_ino(&self.name)
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        Hosts::ifindex(&self.name, dev)
    }

    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        Hosts::in_netns(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// ARPHRD_* device types (include/uapi/linux/if_arp.h).
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_PPP: u16 = 512;
pub const ARPHRD_RAWIP: u16 = 519;
pub const ARPHRD_TUNNEL: u16 = 768;
pub const ARPHRD_TUNNEL6: u16 = 769;
pub const ARPHRD_SIT: u16 = 776;
pub const ARPHRD_IPGRE: u16 = 778;
pub const ARPHRD_IP6GRE: u16 = 823;
pub const ARPHRD_NONE: u16 = 0xfffe;

/// A tun device (IFF_TUN | IFF_NO_PI) in a namespace, held open by this
/// process: what is written to `file` is received on the device, what the
/// device transmits can be read from it. Gone when dropped with its namespace.
pub struct Tun {
    pub file: File,
    pub name: String,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETLINK: libc::c_ulong = 0x4004_54cd;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

impl Tun {
    /// Create `name` in `ns`; with `link_type`, the device claims that ARPHRD
    /// type (TUNSETLINK, before it is up), as ipip, sit or GRE devices do.
    pub fn create(ns: &Netns, name: &str, link_type: Option<u16>) -> Tun {
        assert!(name.len() < 16, "interface name too long: {name}");
        let file = ns.in_netns(|| {
            // The device is created in the namespace of the opener.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .expect("open /dev/net/tun");
            let mut ifr = [0u8; 40];
            ifr[..name.len()].copy_from_slice(name.as_bytes());
            ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
            // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes) we own.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
            assert_eq!(rc, 0, "TUNSETIFF {name}: {}", std::io::Error::last_os_error());
            if let Some(t) = link_type {
                // SAFETY: TUNSETLINK takes the type by value.
                let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETLINK, libc::c_ulong::from(t)) };
                assert_eq!(rc, 0, "TUNSETLINK {name} {t}: {}", std::io::Error::last_os_error());
            }
            file
        });
        Tun { file, name: name.to_string() }
    }

    /// Receive one IP packet on the device.
    pub fn inject(&self, packet: &[u8]) {
        use std::io::Write as _;
        let n = (&self.file).write(packet).expect("write to tun");
        assert_eq!(n, packet.len(), "short write to tun");
    }
}

/// The Internet checksum of `data` (RFC 1071), starting from `sum`.
pub fn inet_checksum(data: &[u8], mut sum: u32) -> u16 {
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP datagram from `src` to `dst` in an IP header of its own family, with
/// valid checksums (the kernel checks them before it looks for a socket).
pub fn ip_udp_packet(
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    ttl: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    use std::net::IpAddr;
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&udp_len.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&u32::from(udp_len).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => panic!("mixed address families"),
    }
    pseudo.extend_from_slice(&udp);
    let sum = match inet_checksum(&pseudo, 0) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());

    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&(20 + udp_len).to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0]); // id 0x1234, DF
            p.extend_from_slice(&[ttl, 17, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let sum = inet_checksum(&p, 0);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&(6u32 << 28).to_be_bytes());
            p.extend_from_slice(&udp_len.to_be_bytes());
            p.extend_from_slice(&[17, ttl]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!(),
    }
    p.extend_from_slice(&udp);
    p
}

/// `tshark -T fields` with these fields, run as nobody: as root tshark
/// warns that it runs as root, and with no home it has no personal
/// preferences to read (or to warn about). Add `-r FILE` or `-r -`.
pub fn tshark(fields: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "tshark", "-n", "-T", "fields"])
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    for f in fields {
        c.args(["-e", f]);
    }
    c
}

/// tshark's reading of a capture file, one Vec of `fields` per packet:
/// it must exit 0 without a word on stderr.
pub fn tshark_file(path: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    let out = tshark(fields).arg("-r").arg(path).output().expect("run tshark (is it installed?)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark -r {}: {}: {stderr}", path.display(), out.status);
    assert!(stderr.trim().is_empty(), "tshark warned about {}: {stderr}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// A command that must succeed.
pub fn run_cmd(cmd: &[&str]) {
    run(cmd);
}

/// An nft command that must succeed, inside namespace `ns`.
pub fn nft(ns: &str, args: &[&str]) {
    let mut command = vec!["ip", "netns", "exec", ns, "nft"];
    command.extend_from_slice(args);
    run(&command);
}

pub fn mac_bytes(mac: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (o, part) in m.iter_mut().zip(mac.split(':')) {
        *o = u8::from_str_radix(part, 16).expect("hex MAC");
    }
    m
}

impl Hosts {
    /// Write one whole Ethernet frame onto A's end of the veth: B receives
    /// exactly these bytes.
    pub fn send_frame(&self, frame: &[u8]) {
        send_frame(&self.ns_a, &self.dev_a, frame);
    }
}

/// Write one whole Ethernet frame onto `dev` in namespace `ns` (AF_PACKET).
pub fn send_frame(ns: &str, dev: &str, frame: &[u8]) {
    let ether_type = u16::from_be_bytes([frame[12], frame[13]]);
    packet_send(ns, dev, libc::SOCK_RAW, ether_type, frame);
}

/// Hand one network-layer packet of `ether_type` to `dev` in namespace `ns`
/// to transmit, as a device without link-layer header (ipip, sit) takes it.
pub fn send_l3(ns: &str, dev: &str, ether_type: u16, packet: &[u8]) {
    packet_send(ns, dev, libc::SOCK_DGRAM, ether_type, packet);
}

/// Write one whole Ethernet frame onto `dev`, whose qdisc drops it: the
/// kernel then reports ENOBUFS to the sender, which is the drop, not a failure.
pub fn send_frame_into_a_dropping_qdisc(ns: &str, dev: &str, frame: &[u8]) {
    let ether_type = u16::from_be_bytes([frame[12], frame[13]]);
    packet_send_allowing(ns, dev, libc::SOCK_RAW, ether_type, frame, Some(libc::ENOBUFS));
}

fn packet_send(ns: &str, dev: &str, kind: libc::c_int, ether_type: u16, frame: &[u8]) {
    packet_send_allowing(ns, dev, kind, ether_type, frame, None);
}

fn packet_send_allowing(
    ns: &str,
    dev: &str,
    kind: libc::c_int,
    ether_type: u16,
    frame: &[u8],
    allowed: Option<libc::c_int>,
) {
    let ifindex = Hosts::ifindex(ns, dev);
    let proto = ether_type.to_be();
    Hosts::in_netns(ns, || {
        // SAFETY: a socket we own, a zeroed sockaddr_ll filled in, a buffer
        // and length from a slice; the fd is closed before return.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, kind, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = proto;
            addr.sll_ifindex = ifindex as i32;
            if kind == libc::SOCK_RAW {
                addr.sll_halen = 6;
                addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            }
            let n = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n < 0 && allowed.is_some() && err.raw_os_error() == allowed {
                return;
            }
            assert_eq!(n, frame.len() as isize, "AF_PACKET send on {dev}: {err}");
        }
    });
}
