//! The decoder on hand-built kernel records.

use super::*;
use std::net::IpAddr;

fn raw_bytes(raw: &abi::ts_event) -> Vec<u8> {
    // SAFETY: ts_event is a plain repr(C) struct with no padding (asserted
    // in record.rs against the C layout), so all of its bytes are initialised.
    unsafe { plain::as_bytes(raw) }.to_vec()
}

fn cstr<const N: usize>(s: &str) -> [i8; N] {
    let mut out = [0i8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b as i8;
    }
    out
}

#[test]
fn rejects_short_and_unknown_records() {
    assert!(matches!(decode(&[0u8; 10], 0), Err(Error::RecordSize { len: 10, .. })));
    assert!(matches!(decode(&[0u8; EVENT_SIZE], 0), Err(Error::RecordKind(0))));
    let mut raw = abi::ts_event { kind: TS_KIND_EVENT, source: 9, ..Default::default() };
    assert!(matches!(decode(&raw_bytes(&raw), 0), Err(Error::RecordKind(9))));
    raw.source = TS_SOURCE_SKB;
    assert!(decode(&raw_bytes(&raw), 0).is_ok());
}

#[test]
fn a_kernel_drop_record_is_the_leading_part_of_the_event() {
    let mut raw =
        abi::ts_event { kind: TS_KIND_EVENT, source: TS_SOURCE_SKB, ifindex: 4, ..Default::default() };
    raw.pkt.pkt_len = 98;
    let whole = raw_bytes(&raw);
    let rec = decode(&whole[..SKB_EVENT_SIZE], 0).unwrap();
    assert_eq!(rec, decode(&whole, 0).unwrap());
    assert_eq!(rec.packet.len, 98);
    assert!(matches!(
        decode(&whole[..SKB_EVENT_SIZE - 1], 0),
        Err(Error::RecordSize { len: 159, expected: SKB_EVENT_SIZE })
    ));
    // A devlink trap's record is never short: its names would be lost.
    raw.source = TS_SOURCE_DEVLINK;
    assert!(matches!(
        decode(&raw_bytes(&raw)[..SKB_EVENT_SIZE], 0),
        Err(Error::RecordSize { len: 160, expected: EVENT_SIZE })
    ));
}

#[test]
fn decodes_a_devlink_ipv4_udp_event() {
    let mut raw = abi::ts_event {
        kind: TS_KIND_EVENT,
        source: TS_SOURCE_DEVLINK,
        trap_type: 1,
        cookie_len: 3,
        time_ns: 5_000,
        ifindex: 7,
        ifname: cstr("swp1s0"),
        trap_name: cstr("ttl_value_is_too_small"),
        trap_group: cstr("l3_exceptions"),
        bus_name: cstr("netdevsim"),
        dev_name: cstr("netdevsim10"),
        ..Default::default()
    };
    raw.cookie[..3].copy_from_slice(&[0xde, 0xad, 0x01]);
    let p = &mut raw.pkt;
    p.layers = TS_L_ETH | TS_L_VLAN1 | TS_L_IPV4 | TS_L_UDP | TS_L_FRAG;
    p.vlan_tci[0] = (5 << 13) | 0x1000 | 100;
    p.vlan_tpid[0] = 0x8100;
    p.ip_src[..4].copy_from_slice(&[192, 0, 2, 1]);
    p.ip_dst[..4].copy_from_slice(&[198, 51, 100, 1]);
    p.frag_flags = TS_FRAG_MF | TS_FRAG_DF;
    p.ip_len = 128;
    p.ttl = 100;
    p.ip_proto = 17;
    p.sport = 1234;
    p.dport = 53;
    p.udp_len = 108;
    let rec = decode(&raw_bytes(&raw), 1_000_000_000).unwrap();
    assert_eq!(rec.time_ns, 1_000_005_000);
    assert_eq!(rec.ingress.name.as_str(), "swp1s0");
    let Origin::Devlink(trap) = rec.origin else { panic!("not devlink") };
    assert_eq!(trap.trap_name.as_str(), "ttl_value_is_too_small");
    assert_eq!(trap.trap_type, Kind::Exception);
    assert_eq!(trap.cookie.unwrap().captured(), &[0xde, 0xad, 0x01]);
    assert_eq!(rec.packet.vlans[0], Some(Vlan { tpid: 0x8100, vid: 100, pcp: 5, dei: true }));
    assert_eq!(rec.packet.vlans[1], None);
    let Network::Ip(ip) = rec.packet.network else { panic!("no IP") };
    assert_eq!(ip.src, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!((ip.length, ip.ttl, ip.protocol), (128, 100, 17));
    assert!(ip.dont_fragment);
    assert_eq!(ip.fragment, Some(Fragment { offset: 0, more: true }));
    assert_eq!(rec.packet.transport, Transport::Udp { src_port: 1234, dst_port: 53, length: 108 });
}

#[test]
fn a_packet_without_ethernet_header_decodes_no_ethernet_layer() {
    let mut raw = abi::ts_event { kind: TS_KIND_EVENT, source: TS_SOURCE_SKB, ..Default::default() };
    let p = &mut raw.pkt;
    // The BPF side never pairs a tag with TS_L_NO_MAC; the decoder does not either.
    p.layers = TS_L_NO_MAC | TS_L_VLAN1 | TS_L_IPV6;
    p.eth_proto = 0x86dd;
    p.src_mac = [2, 0, 0, 0, 0, 1];
    p.vlan_tci[0] = 100;
    p.pkt_len = 48;
    let rec = decode(&raw_bytes(&raw), 0).unwrap();
    assert_eq!(rec.packet.ethernet, None);
    assert_eq!(rec.packet.vlans, [None, None]);
    assert_eq!(rec.packet.ether_type, 0x86dd);
    assert_eq!(rec.packet.len, 48);
    assert!(matches!(rec.packet.network, Network::Ip(Ip { src: IpAddr::V6(_), .. })));
}

#[test]
fn long_cookie_is_marked_truncated() {
    let raw = abi::ts_event {
        kind: TS_KIND_EVENT,
        source: TS_SOURCE_DEVLINK,
        cookie_len: 40,
        ..Default::default()
    };
    let Origin::Devlink(trap) = decode(&raw_bytes(&raw), 0).unwrap().origin else { panic!() };
    let cookie = trap.cookie.unwrap();
    assert_eq!(cookie.captured().len(), 32);
    assert!(cookie.is_truncated());
}

#[test]
fn kernel_strings_that_are_not_utf8_are_made_safe() {
    let mut name = [0i8; 16];
    name[0] = b'e' as i8;
    name[1] = -1;
    let s = FixedStr::from_c(&name);
    assert_eq!(s.as_str(), "e?");
    assert_eq!(FixedStr::<4>::new("abcdef").as_str(), "abcd");
    assert_eq!(FixedStr::<4>::new("abcé").as_str(), "abc");
}

#[test]
fn kernel_strings_end_at_their_first_nul_wherever_it_is() {
    // Every length in each word, and the tail of an array that is not whole
    // words; bytes after the NUL (garbage in a kernel buffer) do not count.
    for len in 0..=20 {
        let mut name = [b'x' as i8; 20];
        if len < 20 {
            name[len] = 0;
        }
        let s = FixedStr::from_c(&name);
        assert_eq!(s.as_str(), "x".repeat(len), "{len}");
        let mut clean = [0i8; 20];
        clean[..len].fill(b'x' as i8);
        assert_eq!(s, FixedStr::from_c(&clean), "{len}");
    }
    // A byte of 0x80..0xff is not a NUL, however a word-wise search borrows.
    let mut name = [0i8; 16];
    name[..4].copy_from_slice(&[b'a' as i8, -128, -1, b'b' as i8]);
    assert_eq!(FixedStr::from_c(&name).as_str(), "a??b");
}

#[test]
fn trap_types_decode_to_the_taxonomy_kinds_and_unknown_ones_are_errors() {
    for (value, kind) in [(0, Kind::Drop), (1, Kind::Exception), (2, Kind::Control), (3, Kind::Threshold)] {
        let raw = abi::ts_event {
            kind: TS_KIND_EVENT,
            source: TS_SOURCE_DEVLINK,
            trap_type: value,
            ..Default::default()
        };
        let Origin::Devlink(trap) = decode(&raw_bytes(&raw), 0).unwrap().origin else { panic!() };
        assert_eq!(trap.trap_type, kind);
        assert_eq!(trap_type_value(kind), value);
    }
    // Not silently a control trap: the kernel side passes on no other value.
    for value in [4, 0xfe, 0xff] {
        let raw = abi::ts_event {
            kind: TS_KIND_EVENT,
            source: TS_SOURCE_DEVLINK,
            trap_type: value,
            ..Default::default()
        };
        assert!(matches!(decode(&raw_bytes(&raw), 0), Err(Error::TrapType(v)) if v == value));
    }
    // A kernel drop has no trap type (TS_TRAP_TYPE_NONE) and needs none.
    let raw =
        abi::ts_event { kind: TS_KIND_EVENT, source: TS_SOURCE_SKB, trap_type: 0xff, ..Default::default() };
    assert!(decode(&raw_bytes(&raw), 0).is_ok());
}

const WJH_FIELDS: u8 = 1;
const WJH_ALL_VALID: u8 = 1 | 2 | 4 | 8;

/// A vendor SDK report on a SONiC kernel, egress by swp2 (a member of bond1).
fn sdk_event(flags: u8) -> abi::ts_event {
    abi::ts_event {
        kind: TS_KIND_EVENT,
        source: TS_SOURCE_DEVLINK,
        trap_type: 3,
        ifindex: 7,
        ifname: cstr("swp1"),
        trap_name: cstr("congestion_thresh_crossed"),
        trap_group: cstr("buffer"),
        bus_name: cstr("devlink_dummy"),
        dev_name: cstr("devlink_dummy0"),
        wjh: abi::ts_wjh {
            tc_occupancy: 2,
            latency: 10,
            out_ifindex: 9,
            out_lag_ifindex: 20,
            out_tc: 3,
            flags,
            out_ifname: cstr("swp2"),
            out_lag_name: cstr("bond1"),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn trap_and_egress(raw: &abi::ts_event) -> (DevlinkTrap, Option<Egress>) {
    let rec = decode(&raw_bytes(raw), 0).unwrap();
    let Origin::Devlink(trap) = rec.origin else { panic!("not devlink") };
    (trap, rec.egress)
}

#[test]
fn sonic_metadata_all_valid() {
    let (trap, egress) = trap_and_egress(&sdk_event(WJH_ALL_VALID));
    assert_eq!(trap.trap_type, Kind::Threshold);
    assert_eq!(egress, Some(Egress { name: FixedStr::new("swp2"), ifindex: 9 }));
    let wjh = trap.wjh.unwrap();
    assert_eq!(wjh.egress_lag, Some(Egress { name: FixedStr::new("bond1"), ifindex: 20 }));
    assert_eq!(wjh.traffic_class, Some(3));
    // The SDK's units: occupancy in 8 KiB cells, latency in 64 ns steps.
    assert_eq!(wjh.occupancy.map(|o| (o.raw, o.bytes())), Some((2, Some(16_384))));
    assert_eq!(wjh.latency.map(|l| (l.raw, l.ns())), Some((10, Some(640))));
}

#[test]
fn sonic_metadata_partly_valid() {
    // Only the latency is valid; no LAG; the SDK's invalid markers stay unread.
    let mut raw = sdk_event(WJH_FIELDS | 8);
    raw.wjh.out_lag_ifindex = 0;
    raw.wjh.out_tc = 0x1f;
    raw.wjh.tc_occupancy = 0xffff;
    let (trap, egress) = trap_and_egress(&raw);
    assert_eq!(egress.map(|e| e.ifindex), Some(9), "a port without a LAG");
    let wjh = trap.wjh.unwrap();
    assert_eq!((wjh.egress_lag, wjh.traffic_class, wjh.occupancy), (None, None, None));
    assert_eq!(wjh.latency, Some(Latency { raw: 10 }));
    // Nothing valid at all: the kernel still has the fields, the record says nothing more.
    let mut raw = sdk_event(WJH_FIELDS);
    raw.wjh.out_ifindex = 0;
    raw.wjh.out_lag_ifindex = 0;
    let (trap, egress) = trap_and_egress(&raw);
    assert_eq!((trap.wjh, egress), (Some(Wjh::default()), None));
}

#[test]
fn sonic_metadata_absent_on_other_kernels() {
    // Without TS_WJH_FIELDS nothing is read, whatever the bytes say.
    let (trap, egress) = trap_and_egress(&sdk_event(WJH_ALL_VALID & !WJH_FIELDS));
    assert_eq!((trap.wjh, egress), (None, None));
    // A kernel drop's egress is still its own (the transmit path).
    let mut raw = sdk_event(WJH_ALL_VALID);
    raw.source = TS_SOURCE_SKB;
    raw.skb_iif = 0;
    let rec = decode(&raw_bytes(&raw), 0).unwrap();
    assert_eq!(rec.egress.map(|e| e.ifindex), Some(7));
}

#[test]
fn scaling_that_overflows_is_not_reported() {
    assert_eq!(Occupancy { raw: u64::MAX >> 13 }.bytes(), Some((u64::MAX >> 13) << 13));
    assert_eq!(Occupancy { raw: (u64::MAX >> 13) + 1 }.bytes(), None);
    assert_eq!(Latency { raw: u64::MAX >> 6 }.ns(), Some((u64::MAX >> 6) << 6));
    assert_eq!(Latency { raw: (u64::MAX >> 6) + 1 }.ns(), None);
}

#[test]
fn a_flow_record_keeps_the_ports_but_no_per_packet_measurement() {
    let flow =
        abi::ts_flow { packets: 5, bytes: 500, first_ns: 1, last_ns: 2, exemplar: sdk_event(WJH_ALL_VALID) };
    // SAFETY: ts_flow is plain data without padding.
    let bytes = unsafe { plain::as_bytes(&flow) }.to_vec();
    let rec = decode_flow(&bytes, 0).unwrap();
    assert_eq!(rec.egress.map(|e| e.ifindex), Some(9), "the egress port is in the flow key");
    let Origin::Devlink(trap) = rec.origin else { panic!() };
    let wjh = trap.wjh.unwrap();
    assert_eq!(wjh.egress_lag.map(|l| l.ifindex), Some(20));
    assert_eq!((wjh.traffic_class, wjh.occupancy, wjh.latency), (None, None, None));
    // A packet sent alone for want of table room is one packet: it keeps its own.
    let mut raw = sdk_event(WJH_ALL_VALID);
    raw.flags = TS_EV_AGG_OVERFLOW;
    let Origin::Devlink(trap) = decode(&raw_bytes(&raw), 0).unwrap().origin else { panic!() };
    assert_eq!(trap.wjh.and_then(|w| w.traffic_class), Some(3));
}

fn acl_event(bus: &str, trap: &str, cookie: &[u8], cookie_len: u16) -> Option<AclRule> {
    let mut raw = abi::ts_event {
        kind: TS_KIND_EVENT,
        source: TS_SOURCE_DEVLINK,
        cookie_len,
        trap_name: cstr(trap),
        trap_group: cstr("acl"),
        bus_name: cstr(bus),
        ..Default::default()
    };
    raw.cookie[..cookie.len()].copy_from_slice(cookie);
    let Origin::Devlink(t) = decode(&raw_bytes(&raw), 0).unwrap().origin else { panic!() };
    // The raw cookie is kept either way.
    assert_eq!(t.cookie.map(|c| c.captured().to_vec()), Some(cookie.to_vec()));
    t.acl
}

#[test]
fn sdk_acl_cookies_name_the_rule_and_its_direction() {
    let sdk = "devlink_dummy";
    let rule = |direction| Some(AclRule { value: 0x123, direction });
    // The reference's example: user value 0x40123 arrives as 23 01 04 00.
    #[cfg(target_endian = "little")]
    assert_eq!(
        acl_event(sdk, "egress_flow_action_drop", &[0x23, 0x01, 0x04, 0x00], 4),
        rule(AclDirection::Egress)
    );
    for (bits, direction) in [
        (0, AclDirection::Ingress),
        (1, AclDirection::Egress),
        (2, AclDirection::Multipoint),
        (3, AclDirection::Reserved),
    ] {
        let word = (bits << 18 | 0x123u32).to_ne_bytes();
        assert_eq!(acl_event(sdk, "flow_action_drop", &word, 4), rule(direction), "bits {bits}");
    }
    let word = 0x3_ffffu32.to_ne_bytes();
    let got = acl_event(sdk, "ingress_flow_action_drop", &word, 4);
    assert_eq!(got, Some(AclRule { value: 0x3_ffff, direction: AclDirection::Ingress }));
    assert_eq!(AclDirection::Reserved.as_str(), "reserved");
}

#[test]
fn other_cookies_are_left_opaque() {
    let word = 0x40123u32.to_ne_bytes();
    // mlxsw and netdevsim: a user's tc cookie, opaque even under the same trap name.
    assert_eq!(acl_event("pci", "ingress_flow_action_drop", &word, 4), None);
    assert_eq!(acl_event("netdevsim", "ingress_flow_action_drop", &word, 4), None);
    // The SDK: not one of its ACL traps, or not 4 bytes.
    assert_eq!(acl_event("devlink_dummy", "blackhole_route", &word, 4), None);
    assert_eq!(acl_event("devlink_dummy", "flow_action_drop", &[1, 2, 3], 3), None);
    assert_eq!(acl_event("devlink_dummy", "flow_action_drop", &[1, 2, 3, 4, 5, 6, 7, 8], 8), None);
}

/// A twin's compact key widens to the flow table's key of the same flow,
/// field by field as count_flow builds both (the bytes past an IPv4
/// address zero), and nothing but a whole compact key widens.
#[test]
fn compact_flow_keys_widen_to_the_flow_tables_key() {
    let compact = abi::ts_flow_key4 {
        trap_id: 0x1122_3344_5566_7788,
        ifindex: 7,
        netns_ino: 0x4000_0001,
        skb_iif: 9,
        out_ifindex: 11,
        source: 2,
        ip_proto: 17,
        eth_proto: 0x0008,
        vlan_id: [100, 200],
        src_mac: [1, 2, 3, 4, 5, 6],
        dst_mac: [7, 8, 9, 10, 11, 12],
        ip_src: [10, 0, 0, 1],
        ip_dst: [192, 0, 2, 77],
        sport: 0x409c,
        dport: 0x3500,
    };
    let mut ip_src = [0u8; 16];
    ip_src[..4].copy_from_slice(&compact.ip_src);
    let mut ip_dst = [0u8; 16];
    ip_dst[..4].copy_from_slice(&compact.ip_dst);
    let wide = abi::ts_flow_key {
        trap_id: compact.trap_id,
        ifindex: compact.ifindex,
        netns_ino: compact.netns_ino,
        skb_iif: compact.skb_iif,
        out_ifindex: compact.out_ifindex,
        source: compact.source,
        ip_proto: compact.ip_proto,
        eth_proto: compact.eth_proto,
        vlan_id: compact.vlan_id,
        src_mac: compact.src_mac,
        dst_mac: compact.dst_mac,
        ip_src,
        ip_dst,
        sport: compact.sport,
        dport: compact.dport,
    };
    // SAFETY: both keys are plain repr(C) structs without padding (their
    // sizes are asserted in record.rs against the C layout).
    let (compact, wide) = unsafe { (plain::as_bytes(&compact), plain::as_bytes(&wide)) };
    assert_eq!(widen_flow_key(compact).as_ref().map(|k| &k[..]), Some(wide));
    assert_eq!(widen_flow_key(&compact[1..]), None);
    assert_eq!(widen_flow_key(wide), None);
}
