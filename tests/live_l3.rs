//! Live: real kernel drops of packets that carry no Ethernet header: received
//! on tun (IPv4, IPv6), transmitted on tun, and received on tun then dropped
//! on the Ethernet device it is forwarded to before a header is pushed; and,
//! beside them, drops on veth and vxlan that must still decode as Ethernet.
//! Each test runs the trapstream binary (--stdout --source skb, only the
//! test's namespace) and compares each record's whole `packet` object, its
//! device, namespace and drop reason, one record per datagram sent. Needs
//! root.
//!
//! The ipip and sit tests are ignored: this machine's kernel has neither
//! (CONFIG_NET_IPIP and CONFIG_IPV6_SIT unset, no modules). They have not
//! been run; `--ignored` runs them on a kernel that has them.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{ip_udp_packet, Hosts, Netns, TempConfig, Trapstream, Tun, MAC_A, MAC_B};
use serde_json::{json, Value};

const PAYLOAD: usize = 13;

/// trapstream printing one JSON record per line for the drops in `ns` only.
fn watch(ns: &str) -> (Trapstream, TempConfig) {
    let cfg = TempConfig::only_netns(ns);
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "--config", cfg.arg()]);
    (ts, cfg)
}

/// Stop trapstream once its records are out (SIGTERM drains the ring buffer)
/// and return them.
fn records(ts: Trapstream) -> Vec<Value> {
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout, _) = ts.stop();
    assert_eq!(status, 0, "clean exit on SIGTERM");
    stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

/// A UDP datagram as the test sent it, and how it must look when dropped.
struct Sent<'a> {
    src: &'a str,
    dst: &'a str,
    /// TTL or hop limit when dropped (one less than sent when forwarded).
    ttl: u8,
    sport: u16,
    dport: u16,
    /// IPv4 identification as sent (the test's packets carry 0x1234 and DF).
    id: Option<u16>,
}

/// The whole `packet` object a drop of `s` must be, with no Ethernet layer
/// (`ethernet` None) or the given one. Port names come from /etc/services,
/// so they are checked to name the port and then taken from `got`.
fn expected_packet(s: &Sent, ethernet: Option<Value>, got: &Value) -> Value {
    let v6 = s.src.contains(':');
    let canonical = |a: &str| a.parse::<IpAddr>().expect("address").to_string();
    let udp_len = 8 + PAYLOAD;
    let ip_len = if v6 { udp_len } else { 20 + udp_len };
    let mut ip = json!({
        "srcIp": canonical(s.src), "dstIp": canonical(s.dst), "protocol": 17, "protocolName": "17 (udp)",
        "length": ip_len, "tos": 0, "ttl": s.ttl, "version": if v6 { 6 } else { 4 },
    });
    if v6 {
        ip["flowLabel"] = json!(0);
    } else {
        ip["id"] = json!(s.id.expect("IPv4 id"));
        ip["dontFragment"] = json!(true);
    }
    let t = &got["packet"]["TRANSPORT"];
    for (key, port) in [("srcPortName", s.sport), ("dstPortName", s.dport)] {
        let name = t[key].as_str().unwrap_or_else(|| panic!("{key} in {got}"));
        assert!(name.starts_with(&format!("{port} (")), "{key} {name} for port {port}");
    }
    let mut packet = json!({
        "packetType": "TRANSPORT",
        "IP": ip,
        "TRANSPORT": {
            "srcPort": s.sport, "dstPort": s.dport,
            "srcPortName": t["srcPortName"], "dstPortName": t["dstPortName"],
            "udpLength": udp_len,
        },
        "length": ip_len + if v6 { 40 } else { 0 } + frame_header_len(ethernet.as_ref()),
    });
    if let Some(eth) = ethernet {
        packet["ETHERNET"] = eth;
    }
    packet
}

/// The Ethernet header's bytes on the wire: 14, and 4 a VLAN tag (in the
/// frame or, as the length counts it too, in skb metadata).
fn frame_header_len(ethernet: Option<&Value>) -> usize {
    let tags = ethernet.map_or(0, |e| {
        usize::from(e.get("vlanTpid").is_some()) + usize::from(e.get("innerVlanId").is_some())
    });
    ethernet.map_or(0, |_| 14 + 4 * tags)
}

/// Where the kernel reported a drop: on the port the packet came in by, or
/// (forwarded) on the way out, with the way in known by its ifindex only.
enum Port<'a> {
    In(&'a str, u32),
    Out { ingress_ifindex: u32, egress: (&'a str, u32) },
}

/// The record of each sent datagram, matched by destination port: exactly
/// one each, every field as expected, nothing else from the namespace with
/// that reason.
fn assert_records(
    all: &[Value],
    netns: u32,
    reason: &str,
    port: Port<'_>,
    sent: &[Sent],
    ethernet: Option<Value>,
) {
    let ours: Vec<&Value> =
        all.iter().filter(|r| r["netnsIno"] == netns && r["skbDropReason"] == reason).collect();
    assert_eq!(ours.len(), sent.len(), "one {reason} record per datagram: {all:#?}");
    for s in sent {
        let mut found = ours.iter().filter(|r| r["packet"]["TRANSPORT"]["dstPort"] == s.dport);
        let r = found.next().unwrap_or_else(|| panic!("no record for port {}: {all:#?}", s.dport));
        assert!(found.next().is_none(), "two records for port {}", s.dport);
        assert_eq!(r["packet"], expected_packet(s, ethernet.clone(), r), "record {r:#}");
        assert!(r["packet"].get("ETHERNET").is_some() == ethernet.is_some());
        match port {
            Port::In(name, ifindex) => {
                assert_eq!(r["ingressPort"], name, "{r}");
                assert_eq!(r["ingressIfIndex"], ifindex, "{r}");
                assert!(r.get("egressPort").is_none() && r.get("egressIfIndex").is_none(), "{r}");
            }
            Port::Out { ingress_ifindex, egress } => {
                assert_eq!(r["ingressPort"], "N/A", "{r}");
                assert_eq!(r["ingressIfIndex"], ingress_ifindex, "{r}");
                assert_eq!(r["egressPort"], egress.0, "{r}");
                assert_eq!(r["egressIfIndex"], egress.1, "{r}");
            }
        }
        assert_eq!(r["netnsIno"], netns);
        assert_eq!(r["source"], "skb");
        assert_eq!(r["message"], "kernelDrop");
        assert_eq!(r["dropType"], "kernel");
        assert_eq!(r["dropReason"], reason);
    }
}

/// A tun device with an address and a peer address on it, up.
fn tun_with(ns: &Netns, name: &str, local: &str, prefix: u8) -> Tun {
    let tun = Tun::create(ns, name, None);
    let mut args = vec!["addr", "add"];
    let addr = format!("{local}/{prefix}");
    args.push(&addr);
    if local.contains(':') {
        args.push("nodad");
    }
    args.extend(["dev", name]);
    ns.ip(&args);
    ns.ip(&["link", "set", name, "up"]);
    tun
}

fn inject_udp(tun: &Tun, src: &str, dst: &str, ttl: u8, sport: u16, ports: &[u16]) {
    let (s, d): (IpAddr, IpAddr) = (src.parse().expect("src"), dst.parse().expect("dst"));
    for &port in ports {
        tun.inject(&ip_udp_packet(s, d, ttl, sport, port, &[0x5a; PAYLOAD]));
    }
}

/// Received on tun, IPv4: the kernel drops each datagram for want of a
/// socket. mac_header == network_header and the device is ARPHRD_NONE.
#[test]
fn tun_receive_ipv4_to_closed_ports() {
    let ns = Netns::new("l3a");
    let tun = tun_with(&ns, "l3tun4", "10.99.1.1", 24);
    let (ts, _cfg) = watch(&ns.name);
    let ports = [41001, 41002, 41003];
    inject_udp(&tun, "10.99.1.2", "10.99.1.1", 61, 33333, &ports);
    let all = records(ts);
    let sent: Vec<Sent> = ports
        .iter()
        .map(|&dport| Sent {
            src: "10.99.1.2",
            dst: "10.99.1.1",
            ttl: 61,
            sport: 33333,
            dport,
            id: Some(0x1234),
        })
        .collect();
    assert_records(&all, ns.ino(), "NO_SOCKET", Port::In("l3tun4", ns.ifindex("l3tun4")), &sent, None);
}

/// Received on tun, IPv6.
#[test]
fn tun_receive_ipv6_to_closed_ports() {
    let ns = Netns::new("l3b");
    let tun = tun_with(&ns, "l3tun6", "fd00:99:1::1", 64);
    let (ts, _cfg) = watch(&ns.name);
    let ports = [42001, 42002, 42003];
    inject_udp(&tun, "fd00:99:1::2", "fd00:99:1::1", 33, 44444, &ports);
    let all = records(ts);
    let sent: Vec<Sent> = ports
        .iter()
        .map(|&dport| Sent {
            src: "fd00:99:1::2",
            dst: "fd00:99:1::1",
            ttl: 33,
            sport: 44444,
            dport,
            id: None,
        })
        .collect();
    assert_records(&all, ns.ino(), "NO_SOCKET", Port::In("l3tun6", ns.ifindex("l3tun6")), &sent, None);
}

/// Transmitted on tun: received on one tun, forwarded out of another whose
/// qdisc takes nothing (pfifo, limit 0). At the drop skb->dev is the sending
/// tun and the MAC header was reset to the network header on transmit.
#[test]
fn tun_transmit_dropped_by_its_qdisc() {
    let ns = Netns::new("l3c");
    ns.sysctl("net.ipv4.ip_forward", "1");
    let rx = tun_with(&ns, "l3in", "10.99.3.1", 24);
    // No IPv6 on the sending tun: its router solicitations would be dropped too.
    let _tx = Tun::create(&ns, "l3out", None);
    ns.sysctl("net.ipv6.conf.l3out.disable_ipv6", "1");
    ns.ip(&["addr", "add", "10.99.6.1/24", "dev", "l3out"]);
    ns.ip(&["link", "set", "l3out", "up"]);
    common::run_cmd(&["tc", "-n", &ns.name, "qdisc", "add", "dev", "l3out", "root", "pfifo", "limit", "0"]);
    let (ts, _cfg) = watch(&ns.name);
    let ports = [43001, 43002, 43003];
    inject_udp(&rx, "10.99.3.2", "10.99.6.2", 30, 35555, &ports);
    let all = records(ts);
    let sent: Vec<Sent> = ports
        .iter()
        .map(|&dport| Sent {
            src: "10.99.3.2",
            dst: "10.99.6.2",
            ttl: 29,
            sport: 35555,
            dport,
            id: Some(0x1234),
        })
        .collect();
    let out = Port::Out { ingress_ifindex: ns.ifindex("l3in"), egress: ("l3out", ns.ifindex("l3out")) };
    assert_records(&all, ns.ino(), "QDISC_DROP", out, &sent, None);
}

/// Received on tun and forwarded to an Ethernet device (veth) whose
/// neighbour cannot be resolved (no solicitations allowed): the kernel drops
/// it before any Ethernet header is pushed, with skb->dev already the veth
/// (ARPHRD_ETHER) and mac_header still == network_header from tun. Only the
/// header geometry says there is no Ethernet header here.
#[test]
fn forwarded_from_tun_to_ethernet_dropped_before_a_header_is_pushed() {
    let ns = Netns::new("l3d");
    ns.sysctl("net.ipv4.ip_forward", "1");
    let rx = tun_with(&ns, "l3fwd", "10.99.4.1", 24);
    ns.ip(&["link", "add", "l3v0", "type", "veth", "peer", "name", "l3v1"]);
    ns.ip(&["addr", "add", "10.99.5.1/24", "dev", "l3v0"]);
    ns.ip(&["link", "set", "l3v1", "up"]);
    ns.ip(&["link", "set", "l3v0", "up"]);
    ns.sysctl("net.ipv4.neigh.l3v0.mcast_solicit", "0");
    ns.sysctl("net.ipv4.neigh.l3v0.app_solicit", "0");
    let (ts, _cfg) = watch(&ns.name);
    let ports = [44001, 44002, 44003];
    inject_udp(&rx, "10.99.4.2", "10.99.5.9", 17, 36666, &ports);
    let all = records(ts);
    let sent: Vec<Sent> = ports
        .iter()
        .map(|&dport| Sent {
            src: "10.99.4.2",
            dst: "10.99.5.9",
            ttl: 16,
            sport: 36666,
            dport,
            id: Some(0x1234),
        })
        .collect();
    let out = Port::Out { ingress_ifindex: ns.ifindex("l3fwd"), egress: ("l3v0", ns.ifindex("l3v0")) };
    assert_records(&all, ns.ino(), "NEIGH_FAILED", out, &sent, None);
}

/// A whole Ethernet frame from A to B (MAC_A → MAC_B) carrying `s` as UDP
/// with the test's payload, after the VLAN tags `(tpid, tci)` given.
fn udp_frame(tags: &[(u16, u16)], ether_type: u16, s: &Sent) -> Vec<u8> {
    let mut f = common::mac_bytes(MAC_B).to_vec();
    f.extend_from_slice(&common::mac_bytes(MAC_A));
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    let (src, dst): (IpAddr, IpAddr) = (s.src.parse().expect("src"), s.dst.parse().expect("dst"));
    f.extend(ip_udp_packet(src, dst, s.ttl, s.sport, s.dport, &[0x5a; PAYLOAD]));
    f
}

/// The Ethernet case beside them: frames that A writes onto its veth
/// (AF_PACKET, every byte the test's), UDP over IPv4 and IPv6 to closed ports
/// in B, decode the Ethernet header they really have.
#[test]
fn veth_receive_still_decodes_ethernet() {
    let hosts = Hosts::new();
    let (ts, _cfg) = watch(&hosts.ns_b);
    let sent4 =
        [Sent { src: &hosts.v4_a, dst: &hosts.v4_b, ttl: 52, sport: 37777, dport: 45001, id: Some(0x1234) }];
    let sent6 = [Sent { src: &hosts.v6_a, dst: &hosts.v6_b, ttl: 53, sport: 37777, dport: 45002, id: None }];
    hosts.send_frame(&udp_frame(&[], 0x0800, &sent4[0]));
    hosts.send_frame(&udp_frame(&[], 0x86dd, &sent6[0]));
    let all = records(ts);
    let netns = Hosts::netns_ino(&hosts.ns_b);
    let dev = (hosts.dev_b.as_str(), Hosts::ifindex(&hosts.ns_b, &hosts.dev_b));
    let eth = |ether_type: u16| {
        json!({"etherTypeName": format!("{ether_type:#x}"), "etherType": ether_type,
               "srcMac": MAC_A, "dstMac": MAC_B, "vlanId": 0, "pcp": 0})
    };
    let (r4, r6): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|r| r["packet"]["IP"]["version"] == 4);
    assert_records(&r4, netns, "NO_SOCKET", Port::In(dev.0, dev.1), &sent4, Some(eth(0x0800)));
    assert_records(&r6, netns, "NO_SOCKET", Port::In(dev.0, dev.1), &sent6, Some(eth(0x86dd)));
}

/// A VLAN tag that B's stack moves out of the frame into skb metadata (every
/// tagged frame is untagged on receive), reported from there when the frame
/// is dropped before the stack clears the tag: by a netdev ingress chain on
/// B's veth (NETFILTER_DROP). The frame's bytes no longer carry the tag; the
/// record has its VLAN id, priority, DEI and TPID, for 802.1Q and 802.1ad.
/// (Without the chain, B would drop these frames as OTHERHOST, a VLAN of
/// which it has no device, after clearing the tag: nothing left to report.)
#[test]
fn a_vlan_tag_in_skb_metadata_is_reported() {
    let hosts = Hosts::new();
    let nft = |args: &[&str]| common::nft(&hosts.ns_b, args);
    nft(&["add", "table", "netdev", "ts"]);
    let hook = format!("{{ type filter hook ingress device \"{}\" priority 0 ; }}", hosts.dev_b);
    nft(&["add", "chain", "netdev", "ts", "in", &hook]);
    nft(&["add", "rule", "netdev", "ts", "in", "udp", "dport", "45011-45012", "drop"]);
    let cfg = TempConfig::only_netns(&hosts.ns_b);
    let pcap = std::env::temp_dir().join(format!("trapstream-vlan-{}.pcapng", std::process::id()));
    let pcap_arg = pcap.to_str().expect("a UTF-8 temp path");
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "--config", cfg.arg(), "--pcap", pcap_arg]);
    let sent4 =
        [Sent { src: &hosts.v4_a, dst: &hosts.v4_b, ttl: 61, sport: 37778, dport: 45011, id: Some(0x1234) }];
    let sent6 = [Sent { src: &hosts.v6_a, dst: &hosts.v6_b, ttl: 61, sport: 37778, dport: 45012, id: None }];
    // Priority 5, DEI 0, VLAN 100 over IPv4; priority 2, DEI 1, VLAN 3001 (802.1ad) over IPv6.
    hosts.send_frame(&udp_frame(&[(0x8100, 5 << 13 | 100)], 0x0800, &sent4[0]));
    hosts.send_frame(&udp_frame(&[(0x88a8, 2 << 13 | 1 << 12 | 3001)], 0x86dd, &sent6[0]));
    let all = records(ts);
    let netns = Hosts::netns_ino(&hosts.ns_b);
    let dev = (hosts.dev_b.as_str(), Hosts::ifindex(&hosts.ns_b, &hosts.dev_b));
    let eth = |ether_type: u16, vid: u16, pcp: u8, dei: u8, tpid: &str| {
        json!({"etherTypeName": format!("{ether_type:#x}"), "etherType": ether_type,
               "srcMac": MAC_A, "dstMac": MAC_B, "vlanId": vid, "pcp": pcp, "dei": dei, "vlanTpid": tpid})
    };
    let (r4, r6): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|r| r["packet"]["IP"]["version"] == 4);
    let port = || Port::In(dev.0, dev.1);
    let drop = "NETFILTER_DROP";
    assert_records(&r4, netns, drop, port(), &sent4, Some(eth(0x0800, 100, 5, 0, "0x8100")));
    assert_records(&r6, netns, drop, port(), &sent6, Some(eth(0x86dd, 3001, 2, 1, "0x88a8")));
    // The capture has the tag back after the MAC addresses, and the length
    // the records give.
    let packets = common::tshark_file(&pcap, &["eth.type", "frame.len", "frame.cap_len", "udp.dstport"]);
    let _ = std::fs::remove_file(&pcap);
    // Only the test's frames: B drops its own neighbour discovery as well.
    let mut seen: Vec<String> =
        packets.iter().filter(|p| p[3] == "45011" || p[3] == "45012").map(|p| p.join("\t")).collect();
    seen.sort();
    let (len4, len6) = (14 + 4 + 20 + 8 + PAYLOAD, 14 + 4 + 40 + 8 + PAYLOAD);
    assert_eq!(seen, [format!("0x8100\t{len4}\t{len4}\t45011"), format!("0x88a8\t{len6}\t{len6}\t45012")]);
}

/// A tunnel that carries Ethernet (vxlan, ARPHRD_ETHER) between A and B over
/// their veth: the drop in B after decapsulation is on the vxlan device and
/// decodes the inner Ethernet header, not the outer one.
#[test]
fn vxlan_receive_decodes_the_inner_ethernet_header() {
    const VX_A: &str = "02:00:5e:00:01:0a";
    const VX_B: &str = "02:00:5e:00:01:0b";
    let hosts = Hosts::new();
    for (ns, local, remote, mac) in
        [(&hosts.ns_a, &hosts.v4_a, &hosts.v4_b, VX_A), (&hosts.ns_b, &hosts.v4_b, &hosts.v4_a, VX_B)]
    {
        let ip = |args: &[&str]| {
            let mut cmd = vec!["ip", "-n", ns.as_str()];
            cmd.extend_from_slice(args);
            common::run_cmd(&cmd);
        };
        ip(&[
            "link", "add", "l3vx", "type", "vxlan", "id", "42", "local", local, "remote", remote, "dstport",
            "4789",
        ]);
        ip(&["link", "set", "l3vx", "address", mac]);
        ip(&["link", "set", "l3vx", "up"]);
    }
    common::run_cmd(&["ip", "-n", &hosts.ns_b, "addr", "add", "10.98.0.2/24", "dev", "l3vx"]);
    let (ts, _cfg) = watch(&hosts.ns_b);
    let mut f = common::mac_bytes(VX_B).to_vec();
    f.extend_from_slice(&common::mac_bytes(VX_A));
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let (s, d): (IpAddr, IpAddr) = ("10.98.0.1".parse().expect("src"), "10.98.0.2".parse().expect("dst"));
    f.extend(ip_udp_packet(s, d, 44, 38888, 46001, &[0x5a; PAYLOAD]));
    common::send_frame(&hosts.ns_a, "l3vx", &f);
    let all = records(ts);
    let eth = json!({"etherTypeName": "0x800", "etherType": 0x0800, "srcMac": VX_A, "dstMac": VX_B, "vlanId": 0, "pcp": 0});
    let sent =
        [Sent { src: "10.98.0.1", dst: "10.98.0.2", ttl: 44, sport: 38888, dport: 46001, id: Some(0x1234) }];
    let netns = Hosts::netns_ino(&hosts.ns_b);
    assert_records(
        &all,
        netns,
        "NO_SOCKET",
        Port::In("l3vx", Hosts::ifindex(&hosts.ns_b, "l3vx")),
        &sent,
        Some(eth),
    );
}

/// Two namespaces joined by veth with an L3 tunnel of `kind` over it, `inner`
/// addresses (A's, B's, prefix) on the tunnel devices. Returns the device name.
fn l3_tunnel(hosts: &Hosts, kind: &str, inner: (&str, &str, u8)) -> &'static str {
    const DEV: &str = "l3tnl";
    for (ns, local, remote, addr) in
        [(&hosts.ns_a, &hosts.v4_a, &hosts.v4_b, inner.0), (&hosts.ns_b, &hosts.v4_b, &hosts.v4_a, inner.1)]
    {
        let cidr = format!("{addr}/{}", inner.2);
        let mut add = vec!["ip", "-n", ns.as_str(), "addr", "add", cidr.as_str(), "dev", DEV];
        if addr.contains(':') {
            add.push("nodad");
        }
        common::run_cmd(&[
            "ip", "-n", ns, "link", "add", DEV, "type", kind, "local", local, "remote", remote,
        ]);
        common::run_cmd(&add);
        common::run_cmd(&["ip", "-n", ns, "link", "set", DEV, "up"]);
    }
    DEV
}

/// IPv4 in IPv4 (ipip) between A and B: B drops the inner datagram after
/// decapsulation, on the ipip device (ARPHRD_TUNNEL, MAC header reset to
/// the network header).
#[test]
#[ignore = "needs CONFIG_NET_IPIP, which this machine's kernel lacks; run with --ignored where it has it"]
fn ipip_receive_ipv4_to_a_closed_port() {
    let hosts = Hosts::new();
    let dev = l3_tunnel(&hosts, "ipip", ("10.96.0.1", "10.96.0.2", 24));
    let (ts, _cfg) = watch(&hosts.ns_b);
    let (s, d): (IpAddr, IpAddr) = ("10.96.0.1".parse().expect("src"), "10.96.0.2".parse().expect("dst"));
    common::send_l3(&hosts.ns_a, dev, 0x0800, &ip_udp_packet(s, d, 45, 39999, 47001, &[0x5a; PAYLOAD]));
    let all = records(ts);
    let sent =
        [Sent { src: "10.96.0.1", dst: "10.96.0.2", ttl: 45, sport: 39999, dport: 47001, id: Some(0x1234) }];
    let netns = Hosts::netns_ino(&hosts.ns_b);
    assert_records(&all, netns, "NO_SOCKET", Port::In(dev, Hosts::ifindex(&hosts.ns_b, dev)), &sent, None);
}

/// IPv6 in IPv4 (sit) between A and B: the inner IPv6 datagram dropped on
/// the sit device (ARPHRD_SIT).
#[test]
#[ignore = "needs CONFIG_IPV6_SIT, which this machine's kernel lacks; run with --ignored where it has it"]
fn sit_receive_ipv6_to_a_closed_port() {
    let hosts = Hosts::new();
    let dev = l3_tunnel(&hosts, "sit", ("fd00:96::1", "fd00:96::2", 64));
    let (ts, _cfg) = watch(&hosts.ns_b);
    let (s, d): (IpAddr, IpAddr) = ("fd00:96::1".parse().expect("src"), "fd00:96::2".parse().expect("dst"));
    common::send_l3(&hosts.ns_a, dev, 0x86dd, &ip_udp_packet(s, d, 46, 39998, 47002, &[0x5a; PAYLOAD]));
    let all = records(ts);
    let sent = [Sent { src: "fd00:96::1", dst: "fd00:96::2", ttl: 46, sport: 39998, dport: 47002, id: None }];
    let netns = Hosts::netns_ino(&hosts.ns_b);
    assert_records(&all, netns, "NO_SOCKET", Port::In(dev, Hosts::ifindex(&hosts.ns_b, dev)), &sent, None);
}

/// IPv6 in IPv4 (protocol 41) received on tun by a kernel with no sit
/// driver to take it apart: dropped as an unknown protocol. The record is the
/// outer IPv4 header as it was, no Ethernet layer, and no transport layer
/// read out of the inner IPv6 header. (With a sit driver the inner datagram
/// is dropped on the sit device instead: `ipv6_in_ipv4_sit_tunnel`.)
#[test]
fn ipv6_in_ipv4_on_tun_is_reported_as_its_outer_header() {
    use std::net::Ipv4Addr;
    let ns = Netns::new("l3e");
    let tun = tun_with(&ns, "l3tun41", "10.99.7.1", 24);
    let (ts, _cfg) = watch(&ns.name);
    let inner = common::ip_udp_packet(
        "fd00:99:7::2".parse().expect("v6"),
        "fd00:99:7::1".parse().expect("v6"),
        64,
        37777,
        45001,
        &[0x5a; PAYLOAD],
    );
    let (src, dst) = (Ipv4Addr::new(10, 99, 7, 2), Ipv4Addr::new(10, 99, 7, 1));
    let total = (20 + inner.len()) as u16;
    for id in [0x4101u16, 0x4102, 0x4103] {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 55, 41, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let sum = common::inet_checksum(&p, 0);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&inner);
        tun.inject(&p);
    }
    let all = records(ts);
    let ours: Vec<&Value> =
        all.iter().filter(|r| r["netnsIno"] == ns.ino() && r["packet"]["IP"]["protocol"] == 41).collect();
    assert_eq!(ours.len(), 3, "{all:#?}");
    for (r, id) in ours.iter().zip([0x4101u16, 0x4102, 0x4103]) {
        assert_eq!(r["skbDropReason"], "IP_NOPROTO", "{r}");
        assert_eq!(r["ingressPort"], "l3tun41", "{r}");
        assert_eq!(r["ingressIfIndex"], ns.ifindex("l3tun41"), "{r}");
        assert_eq!(
            r["packet"],
            json!({
                "packetType": "IP",
                "IP": {
                    "srcIp": "10.99.7.2", "dstIp": "10.99.7.1", "protocol": 41,
                    "protocolName": r["packet"]["IP"]["protocolName"], "length": total,
                    "tos": 0, "ttl": 55, "version": 4, "id": id, "dontFragment": true,
                },
                "length": total,
            }),
            "{r:#}"
        );
    }
}
