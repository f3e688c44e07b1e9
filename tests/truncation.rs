//! Every prefix of realistic frames through the real BPF dissector
//! (BPF_PROG_TEST_RUN): a cut frame must never fail, must only ever lose
//! layers from the end, and must never report a value the whole frame does not
//! carry. Needs root and a 6.2+ kernel, like tests/dissector.rs.
//!
//! BPF_PROG_TEST_RUN takes no frame shorter than an Ethernet header, and
//! checks IPv4/IPv6 frames by EtherType (34 and 54 bytes at least); a frame
//! behind an 802.1Q tag is not checked, so every IP frame is also run tagged
//! to reach the cuts inside its IP header.

use std::net::Ipv6Addr;

use trapstream::capture::dissect_frames;
use trapstream::record::{Ip, Network, Origin, Packet, Record, Transport};

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const ETH_HLEN: usize = 14;
/// The shortest frames BPF_PROG_TEST_RUN accepts, by EtherType.
const MIN_L2: usize = ETH_HLEN;
const MIN_IPV4: usize = ETH_HLEN + 20;
const MIN_IPV6: usize = ETH_HLEN + 40;

fn eth(ether_type: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
}

/// `frame` with a tag inserted after the MAC addresses.
fn tagged(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

fn ipv4(f: &mut Vec<u8>, id: u16, flags_frag: u16, proto: u8, options: &[u8], payload: &[u8]) {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    f.push(0x40 | ihl as u8);
    f.push(0x28); // DSCP AF11, so that tos is not the zero a cut could fake
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flags_frag.to_be_bytes());
    f.push(64);
    f.push(proto);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.extend_from_slice(&[198, 51, 100, 1]);
    f.extend_from_slice(options);
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

fn ipv4_udp() -> Vec<u8> {
    let mut f = eth(0x0800);
    ipv4(&mut f, 0x1234, 0x4000, 17, &[], &udp(40000, 53, &[0xaa; 12]));
    f
}

/// A SYN as Linux sends it (MSS, SACK permitted, timestamps, window scale)
/// in an IPv4 header with a Router Alert option: the transport header sits
/// past both option blocks.
fn ipv4_tcp_options() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&51000u16.to_be_bytes());
    t.extend_from_slice(&443u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    t.push(10 << 4); // 40-byte header
    t.push(0x02);
    t.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
    let mut f = eth(0x0800);
    ipv4(&mut f, 7, 0x4000, 6, &[0x94, 4, 0, 0], &t);
    f
}

/// Hop-by-hop (router alert) → fragment header (first fragment) → UDP.
fn ipv6_hbh_frag_udp() -> Vec<u8> {
    let mut payload = vec![44, 0, 5, 2, 0, 0, 1, 0]; // hop-by-hop: router alert, PadN
    payload.extend_from_slice(&[17, 0, 0, 1]); // fragment: offset 0, M
    payload.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    payload.extend(udp(5353, 5353, &[1, 2, 3, 4]));
    let mut f = eth(0x86dd);
    let word = (6u32 << 28) | (0xb8 << 20) | 0xabcde;
    f.extend_from_slice(&word.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(0);
    f.push(64);
    f.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&"2001:db8:ff::2".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&payload);
    f
}

/// Where the headers of an IPv6 frame end, so that the walk position of
/// every cut is known exactly: a cut stops the walk at the first extension
/// header not wholly captured, and that header is the protocol reported.
struct Ipv6Walk {
    /// Offset of the IPv6 header in the frame.
    l3: usize,
    /// The extension headers in walk order: protocol number and end, from `l3`.
    headers: &'static [(u8, usize)],
    /// The upper layer: protocol number and where its header ends, from `l3`.
    upper: (u8, usize),
}

impl Ipv6Walk {
    /// The same frame behind `bytes` more bytes of L2 (an 802.1Q tag).
    fn shifted(&self, bytes: usize) -> Ipv6Walk {
        Ipv6Walk { l3: self.l3 + bytes, ..*self }
    }

    /// Protocol numbers in walk order, the upper layer last.
    fn chain(&self) -> Vec<u8> {
        self.headers.iter().map(|h| h.0).chain([self.upper.0]).collect()
    }

    /// Protocol and whether the transport header is there, for the first `n` bytes.
    fn at(&self, n: usize) -> Option<(u8, bool)> {
        let have = n.checked_sub(self.l3).filter(|&h| h >= 40)?;
        let stop = self.headers.iter().find(|&&(_, end)| end > have).map(|h| h.0);
        Some((stop.unwrap_or(self.upper.0), stop.is_none() && have >= self.upper.1))
    }
}

/// `ipv6_hbh_frag_udp`: hop-by-hop [40, 48), fragment [48, 56), UDP [56, 68).
const HBH_FRAG_UDP: Ipv6Walk = Ipv6Walk { l3: ETH_HLEN, headers: &[(0, 48), (44, 56)], upper: (17, 64) };

/// Destination options of 24 bytes (2 + 1 words) → AH of 24 bytes ((4 + 2)
/// words of 4) → UDP: headers longer than one unit, so that many cuts fall
/// inside a header whose length field is captured and runs past the cut.
fn ipv6_dstopts_ah_udp() -> Vec<u8> {
    let mut payload = vec![51, 2, 1, 20];
    payload.resize(24, 0); // PadN fills the options
    payload.extend_from_slice(&[17, 4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 1]); // AH: SPI, sequence
    payload.extend_from_slice(&[0xa5; 12]); // 96-bit ICV
    payload.extend(udp(4500, 4500, &[1, 2, 3, 4]));
    let mut f = eth(0x86dd);
    f.extend_from_slice(&(6u32 << 28).to_be_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(60);
    f.push(64);
    f.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&"2001:db8:ff::2".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&payload);
    f
}

const DSTOPTS_AH_UDP: Ipv6Walk = Ipv6Walk { l3: ETH_HLEN, headers: &[(60, 64), (51, 88)], upper: (17, 96) };

fn qinq_ipv4_icmp() -> Vec<u8> {
    let mut f = eth(0x0800);
    ipv4(&mut f, 1, 0, 1, &[], &[8, 0, 0xf7, 0xfe, 0, 1, 0, 1]);
    let inner = tagged(&f, 0x8100, (1 << 13) | 20);
    tagged(&inner, 0x88a8, (3 << 13) | 0x1000 | 4000)
}

fn arp_request() -> Vec<u8> {
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}

fn single_tag(frame: &[u8]) -> Vec<u8> {
    tagged(frame, 0x8100, (5 << 13) | 100)
}

/// Layers a record has, as bits: a cut may clear bits, never set one.
fn layers(p: &Packet) -> u32 {
    let mut bits = 0;
    let mut set = |bit: u32, on: bool| bits |= u32::from(on) << bit;
    set(0, p.ethernet.is_some());
    set(1, p.vlans[0].is_some());
    set(2, p.vlans[1].is_some());
    set(3, matches!(p.network, Network::Arp(_)));
    set(4, matches!(p.network, Network::Ip(_)));
    set(5, matches!(p.network, Network::Ip(Ip { fragment: Some(_), .. })));
    set(6, p.transport != Transport::None);
    bits
}

/// Runs every prefix of `frame` from `shortest` bytes on; the last is the
/// whole frame. One BPF load for all of them; on failure, finds the prefix.
fn every_prefix(frame: &[u8], shortest: usize) -> Vec<Record> {
    assert!(frame.len() < 256, "the test compares whole frames with what was captured");
    let prefixes: Vec<&[u8]> = (shortest..=frame.len()).map(|n| &frame[..n]).collect();
    match dissect_frames(&prefixes) {
        Ok(records) => {
            assert_eq!(records.len(), prefixes.len());
            records
        }
        Err(batch_err) => {
            for p in &prefixes {
                if let Err(e) = dissect_frames(&[p]) {
                    panic!("prefix of {} bytes of a {}-byte frame: {e}", p.len(), frame.len());
                }
            }
            panic!("a batch of prefixes failed but each alone did not: {batch_err}");
        }
    }
}

/// The IPv6 walk position a protocol number stands for (None: not in the chain).
fn chain_index(chain: &[u8], proto: u8) -> Option<usize> {
    chain.iter().position(|&p| p == proto)
}

/// What a prefix decoded must be what the whole frame decodes, layer by layer.
fn assert_nothing_invented(cut: &Packet, full: &Packet, n: usize, chain: &[u8]) {
    if cut.ethernet.is_some() {
        assert_eq!(cut.ethernet, full.ethernet, "{n}: ethernet");
    }
    for i in 0..2 {
        if cut.vlans[i].is_some() {
            assert_eq!(cut.vlans[i], full.vlans[i], "{n}: tag {i}");
        }
    }
    if cut.ethernet.is_some() {
        // Short of a tag, the EtherType is that tag's TPID: the last type read.
        let tags = cut.vlans.iter().filter(|v| v.is_some()).count();
        let expected = match full.vlans.get(tags).copied().flatten() {
            Some(missing) => missing.tpid,
            None => full.ether_type,
        };
        assert_eq!(cut.ether_type, expected, "{n}: EtherType after {tags} tags");
    } else {
        assert_eq!(cut.ether_type, 0, "{n}: EtherType without an Ethernet header");
    }
    match (&cut.network, &full.network) {
        (Network::None, _) => {}
        (Network::Arp(a), Network::Arp(b)) => assert_eq!(a, b, "{n}: ARP"),
        (Network::Ip(a), Network::Ip(b)) => {
            assert_eq!((a.src, a.dst, a.length, a.tos, a.ttl), (b.src, b.dst, b.length, b.tos, b.ttl), "{n}");
            assert_eq!((a.dont_fragment, a.flow_label), (b.dont_fragment, b.flow_label), "{n}");
            if a.fragment.is_some() || a.src.is_ipv4() {
                assert_eq!((a.fragment, a.id), (b.fragment, b.id), "{n}: fragment");
            } else {
                assert_eq!(a.id, None, "{n}: an IPv6 id without its fragment header");
            }
            if a.protocol != b.protocol {
                // Only an IPv6 walk cut short reports a header before the last.
                assert!(
                    a.src.is_ipv6() && chain_index(chain, a.protocol).is_some(),
                    "{n}: protocol {}",
                    a.protocol
                );
                assert_eq!(cut.transport, Transport::None, "{n}: transport before the walk's end");
            }
        }
        (a, b) => panic!("{n}: network {a:?}, whole frame {b:?}"),
    }
    if cut.transport != Transport::None {
        assert_eq!(cut.transport, full.transport, "{n}: transport");
    }
    assert!(!cut.walk_limited || full.walk_limited, "{n}: a cut is not a walk limit");
}

/// The whole story for one frame; `expect_full` pins what the whole frame
/// decodes to, so that the comparisons have a right answer to compare with.
/// For an IPv6 frame `walk` says where each header ends, and every cut's
/// protocol and transport are checked against it exactly.
fn check(frame: &[u8], shortest: usize, walk: Option<&Ipv6Walk>, expect_full: impl Fn(&Packet)) {
    let records = every_prefix(frame, shortest);
    let full = records.last().expect("at least the whole frame").packet;
    expect_full(&full);
    let chain = walk.map(Ipv6Walk::chain).unwrap_or_default();
    let mut previous: Option<(usize, u32, Option<usize>)> = None;
    for (rec, n) in records.iter().zip(shortest..) {
        let Origin::Skb(drop) = rec.origin else { panic!("{n}: not an skb record: {rec:?}") };
        assert!(drop.synthetic, "{n}");
        let p = &rec.packet;
        assert_eq!(p.captured as usize, n, "{n}: captured");
        assert_eq!(p.len as usize, n, "{n}: frame length");
        assert_nothing_invented(p, &full, n, &chain);
        if let Some(w) = walk {
            let got = match p.network {
                Network::Ip(ip) => Some((ip.protocol, p.transport != Transport::None)),
                _ => None,
            };
            assert_eq!(got, w.at(n), "{n}: IPv6 walk (protocol, transport) at {} bytes of L3", n - w.l3);
        }
        let bits = layers(p);
        let walk = match p.network {
            Network::Ip(ip) if ip.src.is_ipv6() => chain_index(&chain, ip.protocol),
            _ => None,
        };
        if let Some((m, before, before_walk)) = previous {
            assert_eq!(before & !bits, 0, "layers {before:#b} at {m} bytes, {bits:#b} at {n}: {p:?}");
            assert!(walk >= before_walk, "{n}: the IPv6 walk went back from {before_walk:?} to {walk:?}");
        }
        previous = Some((n, bits, walk));
    }
}

fn ip(p: &Packet) -> Ip {
    match p.network {
        Network::Ip(ip) => ip,
        other => panic!("whole frame: no IP layer: {other:?}"),
    }
}

fn expect_ipv4_udp(p: &Packet) {
    let ip = ip(p);
    assert_eq!((ip.protocol, ip.length, ip.tos, ip.id, ip.dont_fragment), (17, 40, 0x28, Some(0x1234), true));
    assert_eq!(p.transport, Transport::Udp { src_port: 40000, dst_port: 53, length: 20 });
}

fn expect_ipv4_tcp(p: &Packet) {
    let ip = ip(p);
    assert_eq!((ip.protocol, ip.length), (6, 64));
    assert_eq!(p.transport, Transport::Tcp { src_port: 51000, dst_port: 443, flags: 0x02 });
}

fn expect_ipv6(p: &Packet) {
    let ip = ip(p);
    assert_eq!((ip.protocol, ip.tos, ip.flow_label, ip.id), (17, 0xb8, Some(0xabcde), Some(0x0c0d)));
    assert!(ip.fragment.is_some_and(|f| f.offset == 0 && f.more));
    assert_eq!(p.transport, Transport::Udp { src_port: 5353, dst_port: 5353, length: 12 });
}

#[test]
fn ipv4_udp_every_prefix() {
    check(&ipv4_udp(), MIN_IPV4, None, expect_ipv4_udp);
    check(&single_tag(&ipv4_udp()), MIN_L2, None, expect_ipv4_udp);
}

#[test]
fn ipv4_tcp_with_options_every_prefix() {
    check(&ipv4_tcp_options(), MIN_IPV4, None, expect_ipv4_tcp);
    check(&single_tag(&ipv4_tcp_options()), MIN_L2, None, expect_ipv4_tcp);
}

#[test]
fn ipv6_hop_by_hop_fragment_udp_every_prefix() {
    check(&ipv6_hbh_frag_udp(), MIN_IPV6, Some(&HBH_FRAG_UDP), expect_ipv6);
    check(&single_tag(&ipv6_hbh_frag_udp()), MIN_L2, Some(&HBH_FRAG_UDP.shifted(4)), expect_ipv6);
}

#[test]
fn ipv6_destination_options_ah_udp_every_prefix() {
    let expect = |p: &Packet| {
        let ip = ip(p);
        assert_eq!((ip.protocol, ip.length, ip.id, ip.fragment), (17, 60, None, None));
        assert_eq!(p.transport, Transport::Udp { src_port: 4500, dst_port: 4500, length: 12 });
    };
    check(&ipv6_dstopts_ah_udp(), MIN_IPV6, Some(&DSTOPTS_AH_UDP), expect);
    check(&single_tag(&ipv6_dstopts_ah_udp()), MIN_L2, Some(&DSTOPTS_AH_UDP.shifted(4)), expect);
}

#[test]
fn qinq_ipv4_every_prefix() {
    check(&qinq_ipv4_icmp(), MIN_L2, None, |p| {
        assert_eq!(p.vlans.map(|v| v.map(|v| (v.tpid, v.vid))), [Some((0x88a8, 4000)), Some((0x8100, 20))]);
        assert_eq!(p.ether_type, 0x0800);
        assert_eq!(ip(p).protocol, 1);
        assert_eq!(p.transport, Transport::Icmp { kind: 8, code: 0 });
    });
}

#[test]
fn arp_every_prefix() {
    check(&arp_request(), MIN_L2, None, |p| {
        let Network::Arp(arp) = p.network else { panic!("whole frame: no ARP layer: {:?}", p.network) };
        assert_eq!(
            (arp.operation, arp.sender_ip.octets(), arp.target_ip.octets()),
            (1, [10, 0, 0, 1], [10, 0, 0, 2])
        );
    });
}
