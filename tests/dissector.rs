//! The real BPF dissector and skb handler, run on synthetic frames through
//! BPF_PROG_TEST_RUN (a tc program that calls the same code on the kernel
//! skb behind its context). Needs root and a 6.2+ kernel.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use trapstream::capture::dissect_frames;
use trapstream::record::{
    Arp, Ethernet, Fragment, Ip, Mac, Network, Origin, Packet, Record, Transport, Vlan,
};

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

fn eth(ether_type: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
}

fn vlan_tag(f: &mut Vec<u8>, tci: u16, next: u16) {
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&next.to_be_bytes());
}

/// An Ethernet frame whose EtherType is given by the outer tag list.
fn eth_tagged(tags: &[(u16, u16)], ether_type: u16) -> Vec<u8> {
    let Some(&(first_tpid, _)) = tags.first() else { return eth(ether_type) };
    let mut f = eth(first_tpid);
    for (i, &(_, tci)) in tags.iter().enumerate() {
        let next = tags.get(i + 1).map_or(ether_type, |t| t.0);
        vlan_tag(&mut f, tci, next);
    }
    f
}

struct V4 {
    tos: u8,
    id: u16,
    flags_frag: u16,
    ttl: u8,
    proto: u8,
    options: usize,
}

fn ipv4(f: &mut Vec<u8>, h: V4, payload: &[u8]) {
    let ihl = 5 + h.options / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    f.push(0x40 | ihl as u8);
    f.push(h.tos);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&h.id.to_be_bytes());
    f.extend_from_slice(&h.flags_frag.to_be_bytes());
    f.push(h.ttl);
    f.push(h.proto);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.extend_from_slice(&[198, 51, 100, 1]);
    f.extend(std::iter::repeat_n(1u8, h.options)); // NOP options
    f.extend_from_slice(payload);
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t
}

const V6_SRC: &str = "2001:db8::1";
const V6_DST: &str = "2001:db8:ff::2";

fn ipv6(f: &mut Vec<u8>, tclass: u8, flow: u32, next: u8, hop: u8, payload: &[u8]) {
    let word = (6u32 << 28) | (u32::from(tclass) << 20) | (flow & 0xfffff);
    f.extend_from_slice(&word.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next);
    f.push(hop);
    f.extend_from_slice(&V6_SRC.parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&V6_DST.parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(payload);
}

/// An 8-byte extension header (hop-by-hop, routing, destination options).
fn ext8(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

fn frag6(next: u8, offset_bytes: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&(offset_bytes | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

fn run(frames: &[Vec<u8>]) -> Vec<Record> {
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let records = dissect_frames(&refs).expect("BPF_PROG_TEST_RUN (needs root and kernel 6.2+)");
    assert_eq!(records.len(), frames.len());
    for (rec, frame) in records.iter().zip(frames) {
        let Origin::Skb(drop) = rec.origin else { panic!("not an skb record: {rec:?}") };
        assert!(drop.synthetic);
        assert_eq!(rec.ingress.name.as_str(), "lo", "test_run uses the loopback device");
        assert_eq!(rec.packet.len as usize, frame.len(), "frame length from the MAC header");
        assert_eq!(rec.packet.captured as usize, frame.len().min(256));
    }
    records
}

fn one(frame: Vec<u8>) -> Packet {
    run(&[frame])[0].packet
}

fn ethernet() -> Option<Ethernet> {
    Some(Ethernet { src: Mac(SRC), dst: Mac(DST) })
}

fn v4_ip(protocol: u8, length: u16, tos: u8, ttl: u8, id: u16) -> Ip {
    Ip {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        protocol,
        length,
        tos,
        ttl,
        id: Some(id),
        fragment: None,
        dont_fragment: false,
        flow_label: None,
    }
}

fn v6_ip(protocol: u8, length: u16, tos: u8, ttl: u8, flow: u32) -> Ip {
    Ip {
        src: V6_SRC.parse().unwrap(),
        dst: V6_DST.parse().unwrap(),
        protocol,
        length,
        tos,
        ttl,
        id: None,
        fragment: None,
        dont_fragment: false,
        flow_label: Some(flow),
    }
}

fn v4_udp_frame() -> Vec<u8> {
    let mut f = eth(0x0800);
    let h = V4 { tos: 0, id: 0x1234, flags_frag: 0x4000, ttl: 64, proto: 17, options: 0 };
    ipv4(&mut f, h, &udp(40000, 53, &[0xaa; 12]));
    f
}

#[test]
fn ipv4_udp() {
    let p = one(v4_udp_frame());
    assert_eq!(p.ethernet, ethernet());
    assert_eq!(p.vlans, [None, None]);
    assert_eq!(p.ether_type, 0x0800);
    let mut ip = v4_ip(17, 40, 0, 64, 0x1234);
    ip.dont_fragment = true;
    assert_eq!(p.network, Network::Ip(ip));
    assert_eq!(p.transport, Transport::Udp { src_port: 40000, dst_port: 53, length: 20 });
    assert!(!p.walk_limited);
}

#[test]
fn ipv4_nonzero_tos_options_and_tcp_flags() {
    let mut f = eth(0x0800);
    let h = V4 { tos: 0xb9, id: 7, flags_frag: 0, ttl: 3, proto: 6, options: 8 };
    ipv4(&mut f, h, &tcp(443, 51000, 0x12));
    let p = one(f);
    assert_eq!(p.network, Network::Ip(v4_ip(6, 48, 0xb9, 3, 7)));
    assert_eq!(p.transport, Transport::Tcp { src_port: 443, dst_port: 51000, flags: 0x12 });
}

#[test]
fn ipv4_fragments() {
    // First fragment: MF set, offset 0: ports are there.
    let mut first = eth(0x0800);
    ipv4(
        &mut first,
        V4 { tos: 0, id: 99, flags_frag: 0x2000, ttl: 64, proto: 17, options: 0 },
        &udp(1, 2, &[0; 16]),
    );
    // Non-first fragment: offset 185 * 8 = 1480 bytes, the payload is not a UDP header.
    let mut later = eth(0x0800);
    ipv4(&mut later, V4 { tos: 0, id: 99, flags_frag: 185, ttl: 64, proto: 17, options: 0 }, &[0x55; 24]);
    let r = run(&[first, later]);
    let mut ip = v4_ip(17, 44, 0, 64, 99);
    ip.fragment = Some(Fragment { offset: 0, more: true });
    assert_eq!(r[0].packet.network, Network::Ip(ip));
    assert_eq!(r[0].packet.transport, Transport::Udp { src_port: 1, dst_port: 2, length: 24 });
    ip.fragment = Some(Fragment { offset: 1480, more: false });
    assert_eq!(r[1].packet.network, Network::Ip(ip));
    assert_eq!(r[1].packet.transport, Transport::None, "a non-first fragment has no L4 header");
}

#[test]
fn ipv4_with_ihl_below_5_is_not_decoded() {
    let mut f = v4_udp_frame();
    f[14] = 0x44;
    let p = one(f);
    assert_eq!(p.ethernet, ethernet());
    assert_eq!(p.ether_type, 0x0800);
    assert_eq!(p.network, Network::None);
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn ipv4_icmp_echo() {
    let mut f = eth(0x0800);
    ipv4(
        &mut f,
        V4 { tos: 0, id: 1, flags_frag: 0x4000, ttl: 64, proto: 1, options: 0 },
        &[8, 0, 0, 0, 0, 1, 0, 1],
    );
    let p = one(f);
    assert_eq!(p.transport, Transport::Icmp { kind: 8, code: 0 });
}

#[test]
fn ipv6_tcp() {
    let mut f = eth(0x86dd);
    ipv6(&mut f, 0xb8, 0xabcde, 6, 255, &tcp(22, 60000, 0x02));
    let p = one(f);
    assert_eq!(p.ether_type, 0x86dd);
    assert_eq!(p.network, Network::Ip(v6_ip(6, 20, 0xb8, 255, 0xabcde)));
    assert_eq!(p.transport, Transport::Tcp { src_port: 22, dst_port: 60000, flags: 0x02 });
}

#[test]
fn ipv6_hop_by_hop_and_fragment_headers() {
    let mut payload = ext8(44); // hop-by-hop → fragment
    payload.extend(frag6(17, 0, true, 0x0102_0304)); // first fragment → UDP
    payload.extend(udp(5353, 5353, &[1, 2, 3, 4]));
    let mut f = eth(0x86dd);
    ipv6(&mut f, 0, 0, 0, 64, &payload);
    let p = one(f);
    let mut ip = v6_ip(17, payload.len() as u16, 0, 64, 0);
    ip.fragment = Some(Fragment { offset: 0, more: true });
    ip.id = Some(0x0304);
    assert_eq!(p.network, Network::Ip(ip));
    assert_eq!(p.transport, Transport::Udp { src_port: 5353, dst_port: 5353, length: 12 });
}

#[test]
fn ipv6_routing_destination_options_and_icmpv6() {
    let mut payload = ext8(43); // hop-by-hop → routing
    payload.extend(ext8(60)); // routing → destination options
    payload.extend(ext8(58)); // → ICMPv6
    payload.extend([128, 0, 0, 0, 0, 1, 0, 1]);
    let mut f = eth(0x86dd);
    ipv6(&mut f, 0, 7, 0, 1, &payload);
    let p = one(f);
    assert_eq!(p.network, Network::Ip(v6_ip(58, payload.len() as u16, 0, 1, 7)));
    assert_eq!(p.transport, Transport::Icmpv6 { kind: 128, code: 0 });
}

#[test]
fn ipv6_non_first_fragment_has_no_ports() {
    let mut payload = frag6(6, 1448, false, 9);
    payload.extend([0u8; 32]);
    let mut f = eth(0x86dd);
    ipv6(&mut f, 0, 0, 44, 64, &payload);
    let p = one(f);
    let mut ip = v6_ip(6, payload.len() as u16, 0, 64, 0);
    ip.fragment = Some(Fragment { offset: 1448, more: false });
    ip.id = Some(9);
    assert_eq!(p.network, Network::Ip(ip));
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn ipv6_extension_chain_longer_than_the_walk_bound() {
    // Seven destination-options headers: one more than the walk follows.
    let mut payload = Vec::new();
    for _ in 0..7 {
        payload.extend(ext8(60));
    }
    payload.extend(udp(1, 2, &[]));
    let last = payload.len() - 8 - 8;
    payload[last] = 17;
    let mut f = eth(0x86dd);
    ipv6(&mut f, 0, 0, 60, 64, &payload);
    let p = one(f);
    assert!(p.walk_limited);
    let Network::Ip(ip) = p.network else { panic!("IPv6 header itself is complete") };
    assert_eq!(ip.protocol, 60, "the header where the walk stopped, not a guess");
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn dot1q_and_qinq() {
    let mut single = eth_tagged(&[(0x8100, (5 << 13) | 100)], 0x0800);
    ipv4(&mut single, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 9, proto: 17, options: 0 }, &udp(7, 8, &[]));
    let mut double = eth_tagged(&[(0x88a8, (3 << 13) | 0x1000 | 4000), (0x8100, (1 << 13) | 20)], 0x0800);
    ipv4(&mut double, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 9, proto: 17, options: 0 }, &udp(7, 8, &[]));
    let r = run(&[single, double]);
    assert_eq!(r[0].packet.vlans, [Some(Vlan { tpid: 0x8100, vid: 100, pcp: 5, dei: false }), None]);
    assert_eq!(r[0].packet.transport, Transport::Udp { src_port: 7, dst_port: 8, length: 8 });
    assert_eq!(
        r[1].packet.vlans,
        [
            Some(Vlan { tpid: 0x88a8, vid: 4000, pcp: 3, dei: true }),
            Some(Vlan { tpid: 0x8100, vid: 20, pcp: 1, dei: false })
        ]
    );
    assert_eq!(r[1].packet.ether_type, 0x0800);
    assert_eq!(r[1].packet.network, Network::Ip(v4_ip(17, 28, 0, 9, 1)));
}

#[test]
fn three_vlan_tags_stop_at_l2() {
    let mut f = eth_tagged(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], 0x0800);
    ipv4(&mut f, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 9, proto: 17, options: 0 }, &udp(7, 8, &[]));
    let p = one(f);
    assert!(p.walk_limited);
    assert_eq!(p.vlans[0].map(|v| v.vid), Some(1));
    assert_eq!(p.vlans[1].map(|v| v.vid), Some(2));
    assert_eq!(p.ether_type, 0x8100, "the third tag's TPID, not a guessed payload type");
    assert_eq!(p.network, Network::None);
}

#[test]
fn arp_request() {
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    let p = one(f);
    assert_eq!(
        p.network,
        Network::Arp(Arp {
            operation: 1,
            sender_mac: Mac(SRC),
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_mac: Mac([0; 6]),
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        })
    );
    assert_eq!(p.transport, Transport::None);
}

/// Cut a frame one byte short of each layer and exactly at it.
///
/// BPF_PROG_TEST_RUN refuses IPv4/IPv6 frames shorter than their L3 header
/// (it checks by EtherType), so the truncated IP frames carry an 802.1Q tag,
/// which it does not check; the dissector walks the tag like any other.
#[test]
fn truncation_at_every_layer_boundary_yields_only_complete_layers() {
    let mut v4 = eth_tagged(&[(0x8100, 100)], 0x0800); // 18 bytes of L2
    ipv4(&mut v4, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 64, proto: 17, options: 0 }, &udp(1, 2, &[9; 4]));
    let cuts = [14, 17, 18, 37, 38, 45, 46, v4.len()];
    let frames: Vec<Vec<u8>> = cuts.iter().map(|&n| v4[..n].to_vec()).collect();
    let r = run(&frames);
    for (rec, &n) in r.iter().zip(&cuts) {
        let p = rec.packet;
        assert_eq!(p.ethernet, ethernet(), "cut {n}");
        assert_eq!(p.vlans[0].is_some(), n >= 18, "cut {n}: the tag needs 4 bytes");
        assert_eq!(p.ether_type, if n >= 18 { 0x0800 } else { 0x8100 }, "cut {n}");
        assert_eq!(matches!(p.network, Network::Ip(_)), n >= 38, "cut {n}: IPv4 needs 20 bytes");
        assert_eq!(matches!(p.transport, Transport::Udp { .. }), n >= 46, "cut {n}: UDP needs 8 bytes");
    }

    let mut v6 = eth_tagged(&[(0x8100, 100)], 0x86dd);
    let mut payload = ext8(17);
    payload.extend(udp(1, 2, &[]));
    ipv6(&mut v6, 0, 0, 0, 64, &payload);
    // Inside the hop-by-hop header: before its two fixed bytes, with just
    // them (its next-header byte says 17), one byte short of its end.
    let cuts = [18 + 39, 18 + 40, 18 + 41, 18 + 42, 18 + 47, 18 + 48, 18 + 55, 18 + 56];
    let frames: Vec<Vec<u8>> = cuts.iter().map(|&n| v6[..n].to_vec()).collect();
    let r = run(&frames);
    assert_eq!(r[0].packet.network, Network::None, "39 bytes of IPv6 header");
    for (rec, (&n, expected_proto)) in r.iter().zip(cuts.iter().zip([0, 0, 0, 0, 0, 17, 17, 17])).skip(1) {
        let Network::Ip(ip) = rec.packet.network else { panic!("cut {n}: IPv6 header complete") };
        // Until all 8 bytes of the hop-by-hop header are captured the walk
        // stops at it (protocol 0), even where its next-header byte is there.
        assert_eq!(ip.protocol, expected_proto, "cut {n}");
        assert_eq!(matches!(rec.packet.transport, Transport::Udp { .. }), n == 18 + 56, "cut {n}");
        assert!(!rec.packet.walk_limited, "cut {n}: a cut is not the walk limit");
    }
}

/// Extension headers whose length runs past the captured bytes: a whole
/// frame longer than the snapshot, and frames whose header claims more bytes
/// than the frame has. The walk stops at such a header; it does not name the
/// protocol its next-header byte claims.
#[test]
fn ipv6_extension_header_longer_than_the_capture_ends_the_walk() {
    // Destination options of 256 bytes (31 + 1 words): 14 + 40 + 256 > 256 captured.
    let mut long_opts = vec![17, 31];
    long_opts.resize(256, 0);
    long_opts.extend(udp(7, 8, &[]));
    let mut snapped = eth(0x86dd);
    ipv6(&mut snapped, 0, 0, 60, 64, &long_opts);

    // Hop-by-hop claiming 64 bytes (7 + 1 words) in a frame that ends 24 bytes into it.
    let mut short_hbh = vec![17, 7, 1, 4, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0];
    short_hbh.extend(udp(7, 8, &[]));
    let mut lying = eth(0x86dd);
    ipv6(&mut lying, 0, 0, 0, 64, &short_hbh);

    // Authentication header claiming (10 + 2) * 4 = 48 bytes, 24 present.
    let mut short_ah = vec![17, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    short_ah.extend(udp(7, 8, &[]));
    let mut lying_ah = eth(0x86dd);
    ipv6(&mut lying_ah, 0, 0, 51, 64, &short_ah);

    let r = dissect_frames(&[&snapped, &lying, &lying_ah]).expect("BPF_PROG_TEST_RUN");
    for (rec, (what, stopped_at)) in r.iter().zip([
        ("256-byte options, snapped", 60),
        ("hop-by-hop past the end", 0),
        ("AH past the end", 51),
    ]) {
        let Network::Ip(ip) = rec.packet.network else { panic!("{what}: the IPv6 header is complete") };
        assert_eq!(ip.protocol, stopped_at, "{what}: the header where the walk stopped");
        assert_eq!(rec.packet.transport, Transport::None, "{what}: no transport header invented");
        assert!(!rec.packet.walk_limited, "{what}: not the walk limit");
    }
    assert_eq!(r[0].packet.captured, 256);
    assert_eq!(r[0].packet.len as usize, snapped.len());
}

/// dissect copies a frame's first 102 bytes (two tags, IPv4 with 40 bytes
/// of options, TCP), and later ones only for an IPv6 extension walk: headers
/// that end exactly at the first copy, ones past it, and cuts around them.
#[test]
fn headers_past_the_first_copy() {
    let mut segment = tcp(443, 51000, 0x19);
    segment.extend([0; 1400]);
    let mut v4 = eth_tagged(&[(0x88a8, 1), (0x8100, 2)], 0x0800);
    ipv4(&mut v4, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 9, proto: 6, options: 40 }, &segment);

    // Hop-by-hop, then a 72-byte routing header (an SRv6 header with four
    // segments): UDP starts at 14 + 40 + 8 + 72 = 134.
    let mut routing = vec![17, 8, 4, 3];
    routing.resize(72, 0);
    let mut payload = ext8(43);
    payload.extend(routing);
    payload.extend(udp(7, 8, &[0; 1000]));
    let mut v6 = eth(0x86dd);
    ipv6(&mut v6, 0, 0, 0, 64, &payload);
    let udp_at = 134;

    let frames = [v4.clone(), v6.clone(), v6[..udp_at + 8].to_vec(), v6[..udp_at + 7].to_vec()];
    let r = run(&frames);
    assert_eq!(r[0].packet.network, Network::Ip(v4_ip(6, (v4.len() - 22) as u16, 0, 9, 1)));
    assert_eq!(r[0].packet.transport, Transport::Tcp { src_port: 443, dst_port: 51000, flags: 0x19 });
    for (rec, (what, udp)) in
        r[1..].iter().zip([("whole", true), ("cut after UDP", true), ("cut in UDP", false)])
    {
        let Network::Ip(ip) = rec.packet.network else { panic!("{what}: the IPv6 header is complete") };
        assert_eq!(ip.protocol, 17, "{what}: the walk reached UDP");
        assert_eq!(
            rec.packet.transport,
            if udp { Transport::Udp { src_port: 7, dst_port: 8, length: 1008 } } else { Transport::None },
            "{what}"
        );
    }
}

#[test]
fn frame_longer_than_the_snapshot_still_reports_its_length() {
    let mut f = eth(0x0800);
    ipv4(&mut f, V4 { tos: 0, id: 1, flags_frag: 0, ttl: 9, proto: 17, options: 0 }, &udp(7, 8, &[0; 1400]));
    let p = one(f);
    assert_eq!(p.captured, 256);
    assert_eq!(p.transport, Transport::Udp { src_port: 7, dst_port: 8, length: 1408 });
}

/// The test entry run as if each frame arrived on device `ifindex` of the
/// calling thread's namespace: BPF_PROG_TEST_RUN takes the device from
/// `__sk_buff.ifindex` and runs eth_type_trans() on it, so the frame's first
/// 14 bytes become the MAC header and skb->protocol whatever the device
/// (mac_len 14, as GRE in IP mode keeps its outer headers there). What that
/// cannot make is mac_header == network_header: tests/live_l3.rs does, with
/// real packets.
///
/// `capture::dissect_frames` has no device to give; this loads the same
/// object the skeleton embeds, with the same single program.
fn run_on_device(ifindex: u32, frames: &[Vec<u8>]) -> Vec<Record> {
    use libbpf_rs::{MapCore as _, ObjectBuilder, ProgramInput, RingBufferBuilder};
    use std::cell::RefCell;
    use std::rc::Rc;

    let mut open = ObjectBuilder::default()
        .open_file(concat!(env!("OUT_DIR"), "/trapstream.bpf.o"))
        .expect("open the BPF object");
    for mut prog in open.progs_mut() {
        let test_entry = prog.name() == "dissect_test_frame";
        prog.set_autoload(test_entry);
    }
    let obj = open.load().expect("load the test entry");
    let events = obj.maps().find(|m| m.name() == "events").expect("events map");
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&got);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&events, move |bytes: &[u8]| {
            sink.borrow_mut().push(trapstream::record::decode(bytes, 0).expect("decodable record"));
            0
        })
        .expect("ring buffer");
    let ring = builder.build().expect("ring buffer");
    let prog = obj.progs_mut().find(|p| p.name() == "dissect_test_frame").expect("test entry");

    // struct __sk_buff up to and including ifindex (offset 40); the kernel
    // zero-fills the rest.
    let mut records = Vec::new();
    for frame in frames {
        let mut ctx = [0u8; 44];
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
        let input = ProgramInput { context_in: Some(&mut ctx), data_in: Some(frame), ..Default::default() };
        prog.test_run(input).unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN on ifindex {ifindex}: {e}"));
        ring.consume().expect("consume");
        let mut one = got.borrow_mut();
        assert_eq!(one.len(), 1, "one record per run");
        records.push(one.remove(0));
    }
    records
}

/// A device that does not frame with Ethernet (tun, and tun claiming the types
/// of ipip, sit, GRE, ip6tnl, ip6gre, raw IP and PPP) gets no Ethernet layer
/// even with 14 bytes before its network header: the dissector starts at the
/// network header and takes the protocol from skb->protocol. The same tun
/// claiming ARPHRD_ETHER, and a veth, decode Ethernet: it is the type that
/// decides, not the driver.
#[test]
fn non_ethernet_devices_get_no_ethernet_layer() {
    use common::*;

    let ns = Netns::new("dt");
    let l3_types = [
        ("none", ARPHRD_NONE),
        ("tunnel", ARPHRD_TUNNEL),
        ("sit", ARPHRD_SIT),
        ("ipgre", ARPHRD_IPGRE),
        ("tunnel6", ARPHRD_TUNNEL6),
        ("ip6gre", ARPHRD_IP6GRE),
        ("rawip", ARPHRD_RAWIP),
        ("ppp", ARPHRD_PPP),
    ];
    let l3: Vec<Tun> = l3_types.iter().map(|(n, t)| Tun::create(&ns, &format!("l3{n}"), Some(*t))).collect();
    let as_ether = Tun::create(&ns, "l3ether", Some(ARPHRD_ETHER));
    ns.ip(&["link", "add", "dtveth0", "type", "veth", "peer", "name", "dtveth1"]);

    let v4 = v4_udp_frame();
    let mut v6 = eth(0x86dd);
    ipv6(&mut v6, 0x28, 0x12345, 17, 9, &udp(5000, 6000, &[7; 4]));
    let frames = vec![v4.clone(), v6.clone()];
    let mut ip4 = v4_ip(17, 40, 0, 64, 0x1234);
    ip4.dont_fragment = true;
    let ip6 = v6_ip(17, 12, 0x28, 9, 0x12345);

    ns.in_netns(|| {
        for (tun, (what, _)) in l3.iter().zip(&l3_types) {
            let ifindex = ns.ifindex(&tun.name);
            let r = run_on_device(ifindex, &frames);
            for (rec, frame) in r.iter().zip(&frames) {
                assert_eq!(rec.ingress.name.as_str(), tun.name, "{what}");
                assert_eq!(rec.ingress.ifindex, ifindex, "{what}");
                assert_eq!(rec.ingress.netns_ino, ns.ino(), "{what}");
                let p = rec.packet;
                assert_eq!(p.ethernet, None, "{what}: no Ethernet layer");
                assert_eq!(p.vlans, [None, None], "{what}");
                assert_eq!(p.len as usize, frame.len() - 14, "{what}: length from the network header");
                assert_eq!(p.captured as usize, frame.len() - 14, "{what}");
            }
            assert_eq!(r[0].packet.ether_type, 0x0800, "{what}: skb->protocol");
            assert_eq!(r[0].packet.network, Network::Ip(ip4), "{what}");
            assert_eq!(r[0].packet.transport, Transport::Udp { src_port: 40000, dst_port: 53, length: 20 });
            assert_eq!(r[1].packet.ether_type, 0x86dd, "{what}: skb->protocol");
            assert_eq!(r[1].packet.network, Network::Ip(ip6), "{what}");
            assert_eq!(r[1].packet.transport, Transport::Udp { src_port: 5000, dst_port: 6000, length: 12 });
        }

        for dev in [as_ether.name.as_str(), "dtveth0"] {
            let r = run_on_device(ns.ifindex(dev), &frames);
            for (rec, frame) in r.iter().zip(&frames) {
                assert_eq!(rec.ingress.name.as_str(), dev);
                let p = rec.packet;
                assert_eq!(p.ethernet, ethernet(), "{dev}: an Ethernet device decodes Ethernet");
                assert_eq!(p.len as usize, frame.len(), "{dev}: length from the MAC header");
            }
            assert_eq!(r[0].packet.network, Network::Ip(ip4), "{dev}");
            assert_eq!(r[1].packet.network, Network::Ip(ip6), "{dev}");
        }
    });
}
