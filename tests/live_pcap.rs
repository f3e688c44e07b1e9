//! Live: `--pcap` captures of real kernel drops in namespaces this test
//! creates (IPv4 and IPv6 over veth, a VLAN-tagged frame, IPv4 on a tun
//! device), read back by the real `tshark` from a file and through a pipe.
//! Needs root and tshark (.ci/setup installs it).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    counter, ip_udp_packet, mac_bytes, Collector, Hosts, Netns, TempConfig, Trapstream, Tun, MAC_A, MAC_B,
};
use serde_json::Value;

const PAYLOAD: usize = 20;
const VID: u16 = 100;
const TUN_LOCAL: &str = "10.98.1.1";
const TUN_PEER: &str = "10.98.1.2";
const VLAN_LOCAL: &str = "10.97.1.1";
const VLAN_PEER: &str = "10.97.1.2";

/// tshark's fields for one packet, in this order.
const FIELDS: [&str; 12] = [
    "frame.interface_name",
    "frame.interface_description",
    "frame.comment",
    "frame.time_epoch",
    "eth.src",
    "vlan.id",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
];

/// One packet as tshark decoded it.
#[derive(Debug, Clone)]
struct Seen(BTreeMap<&'static str, String>);

impl Seen {
    fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }
}

fn parse_line(line: &str) -> Seen {
    Seen(FIELDS.iter().copied().zip(line.split('\t').map(str::to_string)).collect())
}

fn tshark_command() -> Command {
    common::tshark(&FIELDS)
}

fn tshark_file(path: &Path) -> Vec<Seen> {
    common::tshark_file(path, &FIELDS)
        .into_iter()
        .map(|row| Seen(FIELDS.iter().copied().zip(row).collect()))
        .collect()
}

/// A capture file in a directory tshark (running as nobody) can read.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("trapstream-pcap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test's drops: UDP to closed ports over IPv4 and IPv6 on the veth, a
/// VLAN-tagged frame that B has no VLAN device for, and IPv4 received on a
/// tun device (no link-layer header).
struct Scene {
    hosts: Hosts,
    tun_ns: Netns,
    tun: Tun,
    cfg: TempConfig,
}

/// What a drop must look like in the capture.
struct Expect {
    iface: String,
    reason: &'static str,
    src: String,
    dst: String,
    sport: u16,
    dport: u16,
    vlan: Option<u16>,
    /// Ethernet source (None on the tun device: no link-layer header).
    eth_src: Option<&'static str>,
}

impl Scene {
    fn new() -> Scene {
        let hosts = Hosts::new();
        let tun_ns = Netns::new("pcap");
        let tun = Tun::create(&tun_ns, "pcaptun0", None);
        tun_ns.ip(&["addr", "add", &format!("{TUN_LOCAL}/24"), "dev", "pcaptun0"]);
        tun_ns.ip(&["link", "set", "pcaptun0", "up"]);
        // A veth whose qdisc takes nothing: what is sent on it is dropped there.
        tun_ns.ip(&["link", "add", "pcapva", "address", MAC_A, "type", "veth", "peer", "name", "pcapvb"]);
        for dev in ["pcapva", "pcapvb"] {
            tun_ns.sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6"), "1");
            tun_ns.ip(&["link", "set", dev, "up"]);
        }
        common::run_cmd(&[
            "tc",
            "-n",
            &tun_ns.name,
            "qdisc",
            "add",
            "dev",
            "pcapva",
            "root",
            "pfifo",
            "limit",
            "0",
        ]);
        let cfg = TempConfig::new(&format!(
            "[filters]\ninclude_netns = [{}, {}]\n",
            Hosts::netns_ino(&hosts.ns_b),
            tun_ns.ino()
        ));
        Scene { hosts, tun_ns, tun, cfg }
    }

    /// Send every kind once per port in `ports` (distinct per kind), return what must be seen.
    fn send(&self, base: u16, count: u16) -> Vec<Expect> {
        let h = &self.hosts;
        let mut expect = Vec::new();
        let v4: Vec<u16> = (0..count).map(|i| base + i).collect();
        let v6: Vec<u16> = (0..count).map(|i| base + 100 + i).collect();
        let sport4 = h.udp_to_closed_ports(&h.v4_b, &v4, PAYLOAD);
        let sport6 = h.udp_to_closed_ports(&h.v6_b, &v6, PAYLOAD);
        for (ports, sport, src, dst) in [(&v4, sport4, &h.v4_a, &h.v4_b), (&v6, sport6, &h.v6_a, &h.v6_b)] {
            for &dport in ports {
                expect.push(Expect {
                    iface: h.dev_b.clone(),
                    reason: "NO_SOCKET",
                    src: canonical(src),
                    dst: canonical(dst),
                    sport,
                    dport,
                    vlan: None,
                    eth_src: Some(MAC_A),
                });
            }
        }
        // A VLAN-tagged frame sent on a veth whose qdisc takes nothing (the
        // host kernel has no VLAN devices: the tag is in the frame's bytes).
        let (s, d): (IpAddr, IpAddr) = (VLAN_LOCAL.parse().unwrap(), VLAN_PEER.parse().unwrap());
        let vlan_sport = 40404;
        for i in 0..count {
            let mut f = Vec::new();
            f.extend_from_slice(&mac_bytes(MAC_B));
            f.extend_from_slice(&mac_bytes(MAC_A));
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&VID.to_be_bytes());
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            f.extend(ip_udp_packet(s, d, 64, vlan_sport, base + 200 + i, &[0x5a; PAYLOAD]));
            common::send_frame_into_a_dropping_qdisc(&self.tun_ns.name, "pcapva", &f);
        }
        for i in 0..count {
            expect.push(Expect {
                iface: "pcapva".into(),
                reason: "QDISC_DROP",
                src: VLAN_LOCAL.into(),
                dst: VLAN_PEER.into(),
                sport: vlan_sport,
                dport: base + 200 + i,
                vlan: Some(VID),
                eth_src: Some(MAC_A),
            });
        }
        let (s, d): (IpAddr, IpAddr) = (TUN_PEER.parse().unwrap(), TUN_LOCAL.parse().unwrap());
        for i in 0..count {
            let dport = base + 300 + i;
            self.tun.inject(&ip_udp_packet(s, d, 61, 33333, dport, &[0x5a; PAYLOAD]));
            expect.push(Expect {
                iface: "pcaptun0".into(),
                reason: "NO_SOCKET",
                src: TUN_PEER.into(),
                dst: TUN_LOCAL.into(),
                sport: 33333,
                dport,
                vlan: None,
                eth_src: None,
            });
        }
        expect
    }
}

fn canonical(addr: &str) -> String {
    addr.parse::<IpAddr>().expect("address").to_string()
}

/// Every expected drop is in `seen` exactly once, decoded as it was sent,
/// on its interface, with its comment. Returns the packets matched.
fn assert_seen(seen: &[Seen], expect: &[Expect]) {
    for e in expect {
        let hits: Vec<&Seen> = seen
            .iter()
            .filter(|s| {
                s.get("udp.dstport") == e.dport.to_string() && s.get("udp.srcport") == e.sport.to_string()
            })
            .collect();
        assert_eq!(hits.len(), 1, "port {} once in the capture: {hits:?}", e.dport);
        let s = hits[0];
        let (src, dst) = if e.src.contains(':') {
            (s.get("ipv6.src"), s.get("ipv6.dst"))
        } else {
            (s.get("ip.src"), s.get("ip.dst"))
        };
        assert_eq!((src, dst), (e.src.as_str(), e.dst.as_str()), "{s:?}");
        assert_eq!(s.get("frame.interface_name"), e.iface, "{s:?}");
        let description = s.get("frame.interface_description");
        assert!(description.starts_with("kernel drops (skb:kfree_skb)"), "{s:?}");
        assert_eq!(
            description.contains("sent by this host, leaving here"),
            e.reason == "QDISC_DROP",
            "{s:?}"
        );
        assert_eq!(s.get("eth.src"), e.eth_src.unwrap_or(""), "{s:?}");
        assert_eq!(s.get("vlan.id"), e.vlan.map(|v| v.to_string()).unwrap_or_default(), "{s:?}");
        let comment = s.get("frame.comment");
        assert!(comment.starts_with("skbDropReason="), "{s:?}");
        assert!(comment.starts_with(&format!("skbDropReason={} ", e.reason)), "{s:?}");
        assert!(comment.contains("dropType=kernel severity=Notice message=kernelDrop"), "{s:?}");
    }
}

#[test]
fn drops_land_in_a_pcapng_file_that_tshark_reads_as_sent() {
    let scene = Scene::new();
    let dir = TempDir::new("file");
    let path = dir.file("drops.pcapng");
    let ts = Trapstream::start(&[
        "--source",
        "skb",
        "--config",
        scene.cfg.arg(),
        "--pcap",
        path.to_str().unwrap(),
        "--stats-interval",
        "0",
    ]);
    let expect = scene.send(43000, 4);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, stats) = ts.stop();
    assert_eq!(status, 0, "{stats}");
    let seen = tshark_file(&path);
    assert_seen(&seen, &expect);
    assert_eq!(
        seen.len() as u64,
        counter(&stats, "pcap_written"),
        "every packet written is in the file: {stats}"
    );
    assert_eq!(counter(&stats, "pcap_lost"), 0, "{stats}");
    assert!(stats.contains(" outputs=pcap"), "--pcap alone: {stats}");
    drop(scene.tun_ns);
}

/// With -u, the packets sent alone carry their bytes into the capture: the
/// exemplars of each new flow and the overflow of a table too small for the
/// flows (6 flows, 4 keys). The packets counted in the kernel have none and
/// are not written: the capture holds exactly the records sent alone.
#[test]
fn with_u_the_packets_sent_alone_are_captured() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let dir = TempDir::new("alone");
    let path = dir.file("alone.pcapng");
    let ts = Trapstream::start(&[
        "--stdout",
        "--source",
        "skb",
        "--config",
        cfg.arg(),
        "-u",
        "0.2",
        "--lru-size",
        "4",
        "--exemplars",
        "2",
        "--pcap",
        path.to_str().unwrap(),
    ]);
    let sock = hosts.socket_in_a();
    let ports: Vec<u16> = (46000..46006).collect();
    hosts.udp_flood(&sock, &hosts.v4_b, &ports, 20, PAYLOAD, None);
    std::thread::sleep(Duration::from_millis(500));
    let (status, stdout, stats) = ts.stop();
    assert_eq!(status, 0, "{stats}");
    let mut alone: Vec<String> = Vec::new();
    let (mut exemplars, mut overflow) = (0, 0);
    for line in stdout.lines() {
        let r: Value = serde_json::from_str(line).expect("one JSON record per line");
        match r["aggregation"].as_str() {
            Some("exemplar") => exemplars += 1,
            Some("overflow") => overflow += 1,
            _ => continue,
        }
        alone.push(r["packet"]["TRANSPORT"]["dstPort"].to_string());
    }
    assert_eq!(exemplars, 12, "2 exemplars for each of 6 flows: {stats}");
    assert!(overflow > 0, "6 flows in 4-key tables overflow: {stats}");
    let mut captured: Vec<String> =
        tshark_file(&path).iter().map(|p| p.get("udp.dstport").to_string()).collect();
    alone.sort();
    captured.sort();
    assert_eq!(captured, alone, "the capture is the packets sent alone: {stats}");
    assert_eq!(counter(&stats, "pcap_written"), alone.len() as u64, "{stats}");
}

/// `trapstream --pcap - | tshark -r -` with a collector at once: tshark
/// shows each packet while trapstream still runs (the stream is flushed as
/// it goes), and its timestamps are the records' to the nanosecond.
#[test]
fn drops_stream_through_a_pipe_live_while_the_collector_gets_its_records() {
    let scene = Scene::new();
    let collector = Collector::bind("127.0.0.1:0");
    let port = collector.port().to_string();
    let mut ts = Trapstream::start_with_stdout(
        &["--source", "skb", "--config", scene.cfg.arg(), "--pcap", "-", "-i", "0.1", "127.0.0.1", &port],
        Stdio::piped(),
    );
    let pipe = ts.child.stdout.take().expect("stdout");
    let mut tshark = tshark_command()
        .args(["-l", "-r", "-"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tshark");
    let out = tshark.stdout.take().expect("tshark stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect = scene.send(44000, 3);
    // Live: every packet arrives before trapstream is told to stop.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < expect.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("tshark showed {} of {} packets while trapstream ran: {seen:?}", seen.len(), expect.len())
        });
        seen.push(parse_line(&line));
    }
    let mut datagrams = collector.receive_until(Duration::from_secs(10), |got| {
        records(got).iter().filter(|r| r["skbDropReason"] != Value::Null).count() >= expect.len()
    });
    let (status, _, stats) = ts.stop();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0, "{stats}");
    let tshark_status = tshark.wait().expect("tshark exits at the end of the stream");
    reader.join().expect("reader");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut tshark.stderr.take().unwrap(), &mut err).unwrap();
    assert!(tshark_status.success(), "tshark: {tshark_status}: {err}");
    assert!(err.trim().is_empty(), "tshark warned: {err}");
    while let Ok(line) = rx.try_recv() {
        seen.push(parse_line(&line));
    }
    assert_seen(&seen, &expect);
    // The same packets reached the collector, stamped with the same instant.
    let recs = records(&datagrams);
    for s in seen.iter().filter(|s| expect.iter().any(|e| s.get("udp.dstport") == e.dport.to_string())) {
        let dport: u64 = s.get("udp.dstport").parse().expect("port");
        let rec = recs
            .iter()
            .find(|r| r["packet"]["TRANSPORT"]["dstPort"] == dport)
            .unwrap_or_else(|| panic!("no record for port {dport}"));
        assert_eq!(rec["timestamp"].as_str(), Some(s.get("frame.time_epoch")), "port {dport}");
    }
    assert_eq!(counter(&stats, "pcap_written"), counter(&stats, "pcap_frames"), "{stats}");
    assert_eq!(counter(&stats, "pcap_written"), seen.len() as u64, "{stats}");
    drop(scene.tun_ns);
}

fn records(datagrams: &[Vec<u8>]) -> Vec<Value> {
    datagrams
        .iter()
        .flat_map(|d| {
            let v: Value = serde_json::from_slice(d).expect("JSON datagram");
            v.as_array().expect("array").clone()
        })
        .filter(|o| o.get("measurement").is_none())
        .collect()
}

fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
}

/// A storm into small files: at most N files of at most the size, each a
/// capture tshark reads on its own, the newest holding the last packets.
#[test]
fn rotation_keeps_the_size_and_count_limits() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let dir = TempDir::new("rotate");
    let path = dir.file("storm.pcapng");
    let ts = Trapstream::start(&[
        "--source",
        "skb",
        "--config",
        cfg.arg(),
        "--pcap",
        path.to_str().unwrap(),
        "--pcap-rotate-size",
        "8192",
        "--pcap-rotate-files",
        "3",
        "--stats-interval",
        "0",
    ]);
    let ports: Vec<u16> = (0..200).map(|i| 45000 + i).collect();
    for chunk in ports.chunks(20) {
        hosts.udp_to_closed_ports(&hosts.v4_b, chunk, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, stats) = ts.stop();
    assert_eq!(status, 0, "{stats}");
    let files = capture_files(&dir.0);
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["storm.pcapng", "storm.pcapng.1", "storm.pcapng.2"], "three files kept");
    let mut total = 0;
    for f in &files {
        let size = std::fs::metadata(f).expect("stat").len();
        assert!(size <= 8192, "{} is {size} bytes", f.display());
        let seen = tshark_file(f);
        assert!(!seen.is_empty(), "{} holds packets", f.display());
        total += seen.len() as u64;
    }
    let written = counter(&stats, "pcap_written");
    assert!(written > total, "older files were deleted: {total} of {written} packets kept");
    assert_eq!(counter(&stats, "pcap_lost"), 0, "{stats}");
    let newest = tshark_file(&path);
    assert!(
        newest.iter().any(|s| s.get("udp.dstport") == ports.last().unwrap().to_string()),
        "the newest file has the last drop"
    );
}

/// A disk that fills: what could not be written is counted and logged, the
/// file stays a valid capture (no torn block) holding exactly what was
/// counted written, and trapstream keeps running.
#[test]
fn a_full_disk_is_a_counted_loss_and_never_a_torn_file() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let dir = TempDir::new("full");
    common::run_cmd(&["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir.0.to_str().unwrap()]);
    let path = dir.file("full.pcapng");
    let mut ts = Trapstream::start(&[
        "--source",
        "skb",
        "--config",
        cfg.arg(),
        "--pcap",
        path.to_str().unwrap(),
        "--pcap-snaplen",
        "1024",
        "--stats-interval",
        "0",
    ]);
    let ports: Vec<u16> = (0..150).map(|i| 46000 + i).collect();
    for chunk in ports.chunks(10) {
        hosts.udp_to_closed_ports(&hosts.v4_b, chunk, 900);
        std::thread::sleep(Duration::from_millis(30));
    }
    // The reason is logged (once per 10 s, with the count).
    let line = ts.wait_for_log("pcap: writing the capture:", Duration::from_secs(10));
    assert!(line.contains("No space left on device"), "{line}");
    let (status, _, stats) = ts.stop();
    assert_eq!(status, 0, "a full disk is not fatal: {stats}");
    assert!(counter(&stats, "pcap_lost") > 0, "{stats}");
    let seen = tshark_file(&path);
    assert_eq!(seen.len() as u64, counter(&stats, "pcap_written"), "{stats}");
    // Ours, and maybe a few other drops in B (the ledger holds for all).
    assert!(counter(&stats, "pcap_frames") >= 150, "{stats}");
}

/// `trapstream --pcap - | head -c 1000`: with no other output, the reader
/// leaving ends trapstream cleanly, its losses counted.
#[test]
fn a_closed_pipe_ends_a_pcap_only_run_with_its_losses_counted() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let mut ts = Trapstream::start_with_stdout(
        &["--source", "skb", "--config", cfg.arg(), "--pcap", "-", "--stats-interval", "0"],
        Stdio::piped(),
    );
    let mut pipe = ts.child.stdout.take().expect("stdout");
    hosts.udp_to_closed_ports(&hosts.v4_b, &[47000, 47001, 47002], 10);
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut pipe, &mut first).expect("the capture starts");
    assert_eq!(&first[..4], &0x0A0D_0D0Au32.to_ne_bytes(), "a Section Header Block first");
    drop(pipe);
    for i in 0..5 {
        hosts.udp_to_closed_ports(&hosts.v4_b, &[47010 + i], 10);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, stats) = ts.wait_exit(Duration::from_secs(10));
    assert_eq!(status, 0, "the reader leaving is the end, not an error: {stats}");
    assert!(counter(&stats, "pcap_lost") > 0, "{stats}");
}

/// Bad flags and an unwritable path: one line, exit 2, before any capture.
#[test]
fn bad_pcap_settings_are_one_line_and_status_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--pcap", "/nonexistent-dir/x.pcapng"],
            "--pcap /nonexistent-dir/x.pcapng: No such file or directory",
        ),
        (&["--pcap", "-", "--pcap-snaplen", "2000"], "--pcap-snaplen must be 1..=1024, got 2000"),
        (&["--pcap", "-", "--stdout"], "--pcap - writes the capture to standard output"),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_trapstream"))
            .args(["--source", "skb"])
            .args(*args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains(" INFO ")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].contains(expected), "{args:?}: {stderr}");
    }
}

/// A reader that stops reading (a paused Wireshark): the capture waits for
/// it, but SIGTERM still ends trapstream within seconds, the packets it
/// could not write counted lost.
#[test]
fn a_stalled_reader_does_not_keep_trapstream_from_exiting() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let mut ts = Trapstream::start_with_stdout(
        &[
            "--source",
            "skb",
            "--config",
            cfg.arg(),
            "--pcap",
            "-",
            "--pcap-snaplen",
            "1024",
            "--stats-interval",
            "0",
        ],
        Stdio::piped(),
    );
    // Held open and never read: the pipe (64 KiB) fills.
    let _unread = ts.child.stdout.take().expect("stdout");
    let ports: Vec<u16> = (0..200).map(|i| 48000 + i).collect();
    for chunk in ports.chunks(20) {
        hosts.udp_to_closed_ports(&hosts.v4_b, chunk, 900);
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(ts.child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let (status, stats) = ts.wait_exit(Duration::from_secs(10));
    assert_eq!(status, 0, "{stats}");
    assert!(started.elapsed() < Duration::from_secs(6), "exit took {:?}", started.elapsed());
    assert!(counter(&stats, "pcap_lost") > 0, "{stats}");
    assert!(counter(&stats, "pcap_written") > 0, "what fit in the pipe was written: {stats}");
}

/// `--pcap -` onto a full device next to a collector: the capture's losses
/// are counted and logged, and the records still reach the collector.
#[test]
fn a_full_stream_loses_the_capture_but_not_the_records() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let collector = Collector::bind("127.0.0.1:0");
    let port = collector.port().to_string();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let mut ts = Trapstream::start_with_stdout(
        &["--source", "skb", "--config", cfg.arg(), "--pcap", "-", "-i", "0.1", "127.0.0.1", &port],
        Stdio::from(full),
    );
    let ports = [49000, 49001, 49002, 49003];
    hosts.udp_to_closed_ports(&hosts.v4_b, &ports, 10);
    let line = ts.wait_for_log("pcap: writing the capture:", Duration::from_secs(10));
    assert!(line.contains("No space left on device"), "{line}");
    let mut datagrams = collector.receive_until(Duration::from_secs(10), |got| {
        records(got).iter().filter(|r| r["skbDropReason"] == "NO_SOCKET").count() >= ports.len()
    });
    let (status, _, stats) = ts.stop();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0, "{stats}");
    let ours = records(&datagrams).iter().filter(|r| r["skbDropReason"] == "NO_SOCKET").count();
    assert_eq!(ours, ports.len(), "{stats}");
    assert_eq!(counter(&stats, "pcap_written"), 0, "{stats}");
    assert_eq!(counter(&stats, "pcap_lost"), counter(&stats, "pcap_frames"), "{stats}");
    assert!(counter(&stats, "pcap_lost") >= ports.len() as u64, "{stats}");
}
