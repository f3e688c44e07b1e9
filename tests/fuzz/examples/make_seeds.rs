//! Writes the decode_event and decode_flow seed corpora: records laid out the
//! way the BPF programs fill them (as src/record.rs's unit tests build them),
//! each followed by the 8-byte clock offset and the override text the targets
//! read after the record. Run from tests/fuzz:
//!
//!     cargo run --example make_seeds
//!
//! Plain build, no fuzzing flags; the seeds are committed, so the fuzz runs do
//! not need this.

use std::path::Path;

use trapstream::abi::{ts_event, ts_flow};

const TS_KIND_EVENT: u8 = 1;
const DEVLINK: u8 = 1;
const SKB: u8 = 2;
const L_ETH: u32 = 1;
const L_VLAN1: u32 = 1 << 1;
const L_VLAN2: u32 = 1 << 2;
const L_ARP: u32 = 1 << 3;
const L_IPV4: u32 = 1 << 4;
const L_IPV6: u32 = 1 << 5;
const L_TCP: u32 = 1 << 6;
const L_UDP: u32 = 1 << 7;
const L_ICMP: u32 = 1 << 8;
const L_FRAG: u32 = 1 << 10;
/// A boot-to-wall offset as on a machine booted in early 2021.
const OFFSET: i64 = 1_611_931_000_000_000_000;

fn cstr<const N: usize>(s: &str) -> [i8; N] {
    let mut out = [0i8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b as i8;
    }
    out
}

fn bytes<T: plain::Plain>(v: &T) -> Vec<u8> {
    // SAFETY: the abi types are plain repr(C) structs without padding.
    unsafe { plain::as_bytes(v) }.to_vec()
}

fn devlink(trap: &str, group: &str, kind: u8) -> ts_event {
    ts_event {
        kind: TS_KIND_EVENT,
        source: DEVLINK,
        trap_type: kind,
        time_ns: 294_010_481_600,
        ifindex: 12,
        ifname: cstr("swp1s0"),
        trap_name: cstr(trap),
        trap_group: cstr(group),
        bus_name: cstr("pci"),
        dev_name: cstr("0000:03:00.0"),
        ..Default::default()
    }
}

fn skb(reason: u32) -> ts_event {
    ts_event {
        kind: TS_KIND_EVENT,
        source: SKB,
        drop_reason: reason,
        time_ns: 7_000_000_123,
        ifindex: 3,
        netns_ino: 4_026_531_840,
        ifname: cstr("eth0"),
        ..Default::default()
    }
}

fn eth(e: &mut ts_event, proto: u16, len: u32) {
    let p = &mut e.pkt;
    p.layers |= L_ETH;
    p.eth_proto = proto;
    p.pkt_len = len;
    p.cap_len = len.min(256) as u16;
    p.dst_mac = [0x24, 0x8a, 0x07, 0xca, 0x22, 0x59];
    p.src_mac = [0x0c, 0x42, 0xa1, 0xa9, 0x81, 0x66];
}

fn v4(e: &mut ts_event, proto: u8, len: u16) {
    let p = &mut e.pkt;
    p.layers |= L_IPV4;
    p.ip_src[..4].copy_from_slice(&[192, 0, 2, 1]);
    p.ip_dst[..4].copy_from_slice(&[192, 0, 2, 21]);
    p.ip_proto = proto;
    p.ip_len = len;
    p.ip_id = 0x1234;
    p.frag_flags = 2;
    p.ttl = 64;
}

fn events() -> Vec<(&'static str, ts_event, &'static str)> {
    let mut out = Vec::new();

    // The README's ping: unresolved neighbour exception.
    let mut e = devlink("unresolved_neigh", "l3_exceptions", 1);
    eth(&mut e, 0x0800, 98);
    v4(&mut e, 1, 84);
    e.pkt.layers |= L_ICMP;
    e.pkt.icmp_type = 8;
    out.push(("devlink-icmp", e, ""));

    // src/record.rs's unit test: tagged UDP first fragment with a cookie,
    // and operator texts full of what line protocol must escape.
    let mut e = devlink("ttl_value_is_too_small", "l3_exceptions", 1);
    e.cookie_len = 3;
    e.cookie[..3].copy_from_slice(&[0xde, 0xad, 0x01]);
    eth(&mut e, 0x0800, 146);
    v4(&mut e, 17, 128);
    let p = &mut e.pkt;
    p.layers |= L_VLAN1 | L_UDP | L_FRAG;
    p.vlan_tpid[0] = 0x8100;
    p.vlan_tci[0] = (5 << 13) | 0x1000 | 100;
    p.frag_flags = 3;
    p.sport = 1234;
    p.dport = 53;
    p.udp_len = 108;
    out.push(("devlink-udp-cookie", e, "\u{85}TTL \"expired\", a=b\\\u{1f}ttl\\\u{1f}fwd Exception"));

    // A drop trap on a QinQ TCP SYN, with a cookie longer than captured.
    let mut e = devlink("blackhole_route", "l3_drops", 0);
    e.cookie_len = 40;
    e.cookie = [0xab; 32];
    eth(&mut e, 0x0800, 78);
    v4(&mut e, 6, 60);
    let p = &mut e.pkt;
    p.layers |= L_VLAN1 | L_VLAN2 | L_TCP;
    p.vlan_tpid = [0x88a8, 0x8100];
    p.vlan_tci = [(3 << 13) | 4000, 20];
    p.sport = 51000;
    p.dport = 443;
    p.tcp_flags = 0x02;
    out.push(("devlink-qinq-tcp", e, ""));

    // A control trap the taxonomy does not know, no group, no device.
    let mut e = devlink("vendor_magic", "", 2);
    e.dev_name = [0; 32];
    eth(&mut e, 0x88cc, 60);
    out.push(("devlink-unknown", e, "\u{3}\u{1f}\u{1f}"));

    // The kernel's own drops: IPv6 TCP (NO_SOCKET), ARP, no MAC header.
    let mut e = skb(2);
    eth(&mut e, 0x86dd, 74);
    let p = &mut e.pkt;
    p.layers |= L_IPV6 | L_TCP;
    p.ip_src = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    p.ip_dst = "2001:db8:ff::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
    p.ip_proto = 6;
    p.ip_len = 20;
    p.tos = 0xb8;
    p.ttl = 255;
    p.flow_label = 0xabcde;
    p.sport = 22;
    p.dport = 60000;
    p.tcp_flags = 0x12;
    out.push(("skb-ipv6-tcp", e, ""));

    let mut e = skb(u32::MAX);
    eth(&mut e, 0x0806, 42);
    let p = &mut e.pkt;
    p.layers |= L_ARP;
    p.arp_op = 1;
    p.arp_sha = [2, 0, 0, 0, 0, 0x0a];
    p.arp_spa = [10, 0, 0, 1];
    p.arp_tpa = [10, 0, 0, 2];
    out.push(("skb-arp", e, ""));

    let mut e = skb(0x0003_0001); // a subsystem reason (openvswitch)
    e.flags = 1; // sent alone: the flow table was full
    e.pkt.layers = 1 << 11; // no MAC header
    e.pkt.eth_proto = 0x0800;
    v4(&mut e, 17, 28);
    e.pkt.layers |= L_UDP;
    out.push(("skb-no-mac-overflow", e, ""));
    out
}

fn write(dir: &Path, name: &str, record: &[u8], extra: &str) {
    let mut data = record.to_vec();
    data.extend_from_slice(&OFFSET.to_le_bytes());
    data.extend_from_slice(extra.as_bytes());
    std::fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let (events_dir, flows_dir) = (root.join("decode_event"), root.join("decode_flow"));
    for dir in [&events_dir, &flows_dir] {
        std::fs::create_dir_all(dir).expect("seed dir");
    }
    for (name, event, extra) in events() {
        write(&events_dir, name, &bytes(&event), extra);
        let flow = ts_flow {
            packets: 1000,
            bytes: 98_000,
            first_ns: event.time_ns,
            last_ns: event.time_ns + 4_999_999_999,
            exemplar: event,
        };
        write(&flows_dir, name, &bytes(&flow), extra);
    }
    println!("seeds written under {}", root.display());
}
