//! Live: a kernel drop on the transmit path names the device it was leaving
//! by as egressPort, and the port it came in on (if any) by ingressIfIndex.
//! Real drops by nftables in namespaces this test creates. Needs root and
//! the nft command (Debian's nftables).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{nft, run_cmd as run, Hosts, TempConfig, Trapstream};
use serde_json::Value;

const N: u16 = 8;

/// Drop UDP to ports `lo..=hi` in `ns`'s postrouting hook: after routing,
/// with skb->dev already the way out.
fn drop_on_the_way_out(ns: &str, lo: u16, hi: u16) {
    nft(ns, &["add", "table", "inet", "ts"]);
    nft(ns, &["add", "chain", "inet", "ts", "out", "{ type filter hook postrouting priority 0 ; }"]);
    nft(ns, &["add", "rule", "inet", "ts", "out", "udp", "dport", &format!("{lo}-{hi}"), "drop"]);
}

/// JSON records of NETFILTER_DROP drops in namespace `ns`, after `traffic`.
fn netfilter_drops(ns: &str, traffic: impl FnOnce()) -> Vec<Value> {
    let netns = Hosts::netns_ino(ns);
    let cfg = TempConfig::only_netns(ns);
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg()]);
    traffic();
    std::thread::sleep(Duration::from_millis(600));
    let (status, stdout, final_line) = ts.stop();
    assert_eq!(status, 0, "{final_line}");
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|r| r["netnsIno"] == netns && r["skbDropReason"] == "NETFILTER_DROP")
        .collect()
}

#[test]
fn a_locally_sent_packet_dropped_on_its_way_out_has_no_ingress_port() {
    let hosts = Hosts::new();
    let ifindex_a = Hosts::ifindex(&hosts.ns_a, &hosts.dev_a);
    drop_on_the_way_out(&hosts.ns_a, 42000, 42000 + N - 1);
    let ports: Vec<u16> = (0..N).map(|i| 42000 + i).collect();
    let records = netfilter_drops(&hosts.ns_a, || {
        Hosts::in_netns(&hosts.ns_a, || {
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind in A");
            for &port in &ports {
                // A drop on the local output path is reported to the sender (EPERM).
                let err = sock.send_to(b"0123456789", (hosts.v4_b.as_str(), port)).expect_err("dropped");
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
            }
        });
    });
    assert_eq!(records.len(), N as usize, "{records:?}");
    for r in &records {
        assert_eq!(r["ingressPort"], "N/A", "{r}");
        assert_eq!(r["ingressIfIndex"], 0, "{r}");
        assert_eq!(r["egressPort"], hosts.dev_a.as_str(), "{r}");
        assert_eq!(r["egressIfIndex"], ifindex_a, "{r}");
        assert_eq!(r["packet"]["IP"]["dstIp"], hosts.v4_b.as_str(), "{r}");
    }
}

#[test]
fn a_forwarded_packet_dropped_on_its_way_out_names_both_ports() {
    let hosts = Hosts::new();
    // C behind B: A -> B (forwarding) -> C, dropped in B's postrouting.
    let ns_c = format!("{}c", hosts.ns_b);
    let (b_to_c, c_dev) = (format!("{}c", hosts.dev_b), format!("{}c0", hosts.ns_b));
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns_c]).status();
    run(&["ip", "netns", "add", &ns_c]);
    let _c = Gone(ns_c.clone());
    run(&["ip", "-n", &hosts.ns_b, "link", "add", &b_to_c, "type", "veth", "peer", "name", &c_dev]);
    run(&["ip", "-n", &hosts.ns_b, "link", "set", &c_dev, "netns", &ns_c]);
    run(&["ip", "-n", &hosts.ns_b, "addr", "add", "198.51.100.1/24", "dev", &b_to_c]);
    run(&["ip", "-n", &hosts.ns_b, "link", "set", &b_to_c, "up"]);
    run(&["ip", "-n", &ns_c, "addr", "add", "198.51.100.2/24", "dev", &c_dev]);
    run(&["ip", "-n", &ns_c, "link", "set", &c_dev, "up"]);
    run(&["ip", "-n", &hosts.ns_a, "route", "add", "198.51.100.0/24", "via", &hosts.v4_b]);
    run(&["ip", "netns", "exec", &hosts.ns_b, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    drop_on_the_way_out(&hosts.ns_b, 42100, 42100 + N - 1);
    let ifindex_in = Hosts::ifindex(&hosts.ns_b, &hosts.dev_b);
    let ifindex_out = Hosts::ifindex(&hosts.ns_b, &b_to_c);

    let ports: Vec<u16> = (0..N).map(|i| 42100 + i).collect();
    let records = netfilter_drops(&hosts.ns_b, || {
        hosts.udp_to_closed_ports("198.51.100.2", &ports, 10);
    });
    assert_eq!(records.len(), N as usize, "{records:?}");
    for r in &records {
        // The kernel keeps only the index of the port a forwarded packet came in on.
        assert_eq!(r["ingressIfIndex"], ifindex_in, "{r}");
        assert_eq!(r["ingressPort"], "N/A", "{r}");
        assert_eq!(r["egressPort"], b_to_c.as_str(), "{r}");
        assert_eq!(r["egressIfIndex"], ifindex_out, "{r}");
        assert_eq!(r["packet"]["IP"]["srcIp"], hosts.v4_a.as_str(), "{r}");
        assert_eq!(r["packet"]["IP"]["ttl"], 63, "forwarded once: {r}");
    }
}

#[test]
fn a_received_packet_keeps_its_ingress_port_and_has_no_egress() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg()]);
    let ports: Vec<u16> = (0..N).map(|i| 42200 + i).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &ports, 10);
    std::thread::sleep(Duration::from_millis(600));
    let (_, stdout, _) = ts.stop();
    let records: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["skbDropReason"] == "NO_SOCKET")
        .collect();
    assert_eq!(records.len(), N as usize);
    for r in &records {
        assert_eq!(r["ingressPort"], hosts.dev_b.as_str(), "{r}");
        assert!(r.get("egressPort").is_none() && r.get("egressIfIndex").is_none(), "{r}");
    }
}
