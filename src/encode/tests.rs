//! Golden outputs: the seed README's ping, decoded correctly, in both formats.

use super::*;
use crate::record::{
    DevlinkTrap, Ethernet, FixedStr, FlowActionCookie, Fragment, Ingress, Ip, Mac, Packet, Record, SkbDrop,
    Vlan,
};
use crate::record::{FlowCount, FlowKind};
use crate::taxonomy::Kind;

pub(super) fn context() -> Context {
    Context {
        device_ip: "10.5.1.101".into(),
        netdb: NetDb::parse("domain 53/udp\nhttp 80/tcp\n", "icmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\n"),
        drop_reasons: DropReasons::default(),
        taxonomy: HashMap::new(),
    }
}

fn mac(s: &str) -> Mac {
    let mut m = [0u8; 6];
    for (o, part) in m.iter_mut().zip(s.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap();
    }
    Mac(m)
}

/// The packet behind the seed README's example: a ping, length 84, tos 0, ttl 64.
pub(super) fn seed_ping() -> Record {
    Record {
        time_ns: 1_611_931_294_010_481_600,
        boot_ns: 1,
        origin: Origin::Devlink(DevlinkTrap {
            trap_name: FixedStr::new("unresolved_neigh"),
            trap_group: FixedStr::new("l3_exceptions"),
            trap_type: Kind::Exception,
            bus_name: FixedStr::new("pci"),
            device_name: FixedStr::new("0000:03:00.0"),
            cookie: None,
            acl: None,
            wjh: None,
        }),
        ingress: Ingress { name: FixedStr::new("swp1s0"), ifindex: 12, netns_ino: 0 },
        egress: None,
        packet: Packet {
            len: 98,
            captured: 98,
            ethernet: Some(Ethernet { src: mac("0c:42:a1:a9:81:66"), dst: mac("24:8a:07:ca:22:59") }),
            vlans: [None, None],
            ether_type: 0x0800,
            network: Network::Ip(Ip {
                src: "192.0.2.1".parse().unwrap(),
                dst: "192.0.2.21".parse().unwrap(),
                protocol: 1,
                length: 84,
                tos: 0,
                ttl: 64,
                id: Some(0x1234),
                fragment: None,
                dont_fragment: true,
                flow_label: None,
            }),
            transport: Transport::Icmp { kind: 8, code: 0 },
            walk_limited: false,
        },
        flow: None,
    }
}

pub(super) fn encode(format: Format, rec: &Record) -> String {
    let mut out = Vec::new();
    Encoder::new(format).encode(&context(), rec, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn json_matches_the_seed_schema_with_correct_values() {
    let got = encode(Format::Json, &seed_ping());
    let expected = concat!(
        r#"{"deviceIP":"10.5.1.101","ingressPort":"swp1s0","#,
        r#""description":"Validate ARP table for the neighbor/next hop","severity":"Warning","#,
        r#""dropType":"l3","dropReason":"Unresolved  neighbor /next-hop","#,
        r#""timestamp":"1611931294.010481600","message":"fwdException","#,
        r#""packet":{"packetType":"IP","#,
        r#""ETHERNET":{"etherTypeName":"0x800","etherType":2048,"srcMac":"0c:42:a1:a9:81:66","dstMac":"24:8a:07:ca:22:59","vlanId":0,"pcp":0},"#,
        r#""IP":{"srcIp":"192.0.2.1","dstIp":"192.0.2.21","protocol":1,"protocolName":"1 (icmp)","length":84,"tos":0,"ttl":64,"version":4,"id":4660,"dontFragment":true},"#,
        r#""ICMP":{"type":8,"code":0},"length":98},"#,
        r#""source":"devlink","ingressIfIndex":12,"trapName":"unresolved_neigh","trapGroup":"l3_exceptions","#,
        r#""trapType":"exception","devlinkDevice":"pci/0000:03:00.0"}"#
    );
    assert_eq!(got, expected);
    // Key order of the seed's keys is part of the contract.
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["packet"]["IP"]["length"], 84);
}

#[test]
fn influx_matches_the_seed_schema_with_correct_values() {
    let got = encode(Format::Influx, &seed_ping());
    let expected = concat!(
        r"DroppedPackets,description=Validate\ ARP\ table\ for\ the\ neighbor/next\ hop,deviceIP=10.5.1.101,",
        r"devlinkDevice=pci/0000:03:00.0,dropReason=Unresolved\ \ neighbor\ /next-hop,dropType=l3,ingressPort=swp1s0,",
        r"message=fwdException,packet_ethernet_dstMac=24:8a:07:ca:22:59,packet_ethernet_srcMac=0c:42:a1:a9:81:66,",
        r"packet_ip_srcIp=192.0.2.1,packet_packetType=ip,severity=Warning,source=devlink,trapGroup=l3_exceptions,",
        r"trapName=unresolved_neigh,trapType=exception ",
        r#"ingressIfIndex=12i,packet_ethernet_etherType=2048i,packet_ethernet_etherTypeName="0x800","#,
        r#"packet_icmp_code=0i,packet_icmp_type=8i,packet_ip_dontFragment=true,packet_ip_dstIp="192.0.2.21","#,
        r#"packet_ip_id=4660i,packet_ip_length=84i,packet_ip_protocol=1i,packet_ip_protocolName="1 (icmp)","#,
        r#"packet_ip_tos=0i,packet_ip_ttl=64i,packet_ip_version=4i,packet_length=98i,"#,
        r#"timestamp="1611931294.010481600" 1611931294010481600"#
    );
    assert_eq!(got, expected);
}

fn udp_skb_drop() -> Record {
    let mut rec = seed_ping();
    rec.origin = Origin::Skb(SkbDrop { reason: Some(2), synthetic: false });
    rec.ingress = Ingress { name: FixedStr::new("veth0"), ifindex: 3, netns_ino: 4026532000 };
    if let Network::Ip(ip) = &mut rec.packet.network {
        ip.protocol = 17;
        ip.dont_fragment = false;
    }
    rec.packet.transport = Transport::Udp { src_port: 40000, dst_port: 53, length: 64 };
    rec.packet.vlans = [
        Some(Vlan { tpid: 0x88a8, vid: 100, pcp: 3, dei: false }),
        Some(Vlan { tpid: 0x8100, vid: 200, pcp: 5, dei: true }),
    ];
    rec
}

#[test]
fn skb_drop_with_transport_and_qinq() {
    let rec = udp_skb_drop();
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["message"], "kernelDrop");
    assert_eq!(v["dropType"], "kernel");
    assert_eq!(v["dropReason"], "UNKNOWN_2", "no BTF names in this context");
    assert_eq!(v["skbDropReason"], "UNKNOWN_2");
    assert_eq!(v["netnsIno"], 4026532000u32);
    assert_eq!(v["packet"]["packetType"], "TRANSPORT");
    let t = &v["packet"]["TRANSPORT"];
    assert_eq!(t["srcPort"], 40000);
    assert_eq!(t["dstPortName"], "53 (domain)");
    assert_eq!(t["srcPortName"], "40000 (unknown)");
    assert_eq!(t["udpLength"], 64);
    let e = &v["packet"]["ETHERNET"];
    assert_eq!((e["vlanId"].as_u64(), e["pcp"].as_u64(), e["dei"].as_u64()), (Some(100), Some(3), Some(0)));
    assert_eq!(e["vlanTpid"], "0x88a8");
    assert_eq!(
        (e["innerVlanId"].as_u64(), e["innerPcp"].as_u64(), e["innerDei"].as_u64()),
        (Some(200), Some(5), Some(1))
    );
    assert!(v.get("trapName").is_none());

    let line = encode(Format::Influx, &rec);
    assert!(line.contains(",packet_packetType=transport,packet_transport_dstPort=53,"), "{line}");
    assert!(line.contains(",skbDropReason=UNKNOWN_2,source=skb "), "{line}");
    assert!(line.contains(r#"packet_transport_dstPortName="53 (domain)",packet_transport_srcPort=40000i,packet_transport_srcPortName="40000 (unknown)",packet_transport_udpLength=64i,"#), "{line}");
    assert!(line.contains("packet_ethernet_innerVlanId=200i,packet_ethernet_pcp=3i,"), "{line}");
}

#[test]
fn ipv6_fragment_and_cookie() {
    let mut rec = seed_ping();
    if let Origin::Devlink(t) = &mut rec.origin {
        t.trap_name = FixedStr::new("ingress_flow_action_drop");
        t.trap_group = FixedStr::new("acl_drops");
        t.trap_type = Kind::Drop;
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        t.cookie = Some(test_cookie(4, bytes));
    }
    rec.packet.network = Network::Ip(Ip {
        src: "2001:db8::1".parse().unwrap(),
        dst: "2001:db8::2".parse().unwrap(),
        protocol: 6,
        length: 1000,
        tos: 0xb8,
        ttl: 63,
        id: Some(7),
        fragment: Some(Fragment { offset: 1448, more: true }),
        dont_fragment: false,
        flow_label: Some(0xabcde),
    });
    rec.packet.transport = Transport::None;
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["message"], "fwdDrop");
    assert_eq!(v["dropType"], "acl");
    assert_eq!(v["flowActionCookie"], "deadbeef");
    assert_eq!(v["flowActionCookieLength"], 4);
    let ip = &v["packet"]["IP"];
    assert_eq!(ip["srcIp"], "2001:db8::1");
    assert_eq!(
        (ip["tos"].as_u64(), ip["version"].as_u64(), ip["flowLabel"].as_u64()),
        (Some(0xb8), Some(6), Some(0xabcde))
    );
    assert_eq!((ip["fragOffset"].as_u64(), ip["moreFragments"].as_bool()), (Some(1448), Some(true)));
    assert!(ip.get("dontFragment").is_none(), "IPv6 has no DF bit");
    assert_eq!(v["packet"]["packetType"], "IP");
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(r#"flowActionCookie="deadbeef",flowActionCookieLength=4i,"#), "{line}");
    assert!(line.contains("packet_ip_flowLabel=703710i,packet_ip_fragOffset=1448i,"), "{line}");
}

pub(super) fn test_cookie(len: u16, bytes: [u8; 32]) -> FlowActionCookie {
    // Built through the decoder, the only place that constructs cookies.
    let mut raw =
        crate::abi::ts_event { kind: 1, source: 1, cookie_len: len, cookie: bytes, ..Default::default() };
    raw.trap_type = 0;
    // SAFETY: ts_event is plain data without padding.
    let bytes = unsafe { plain::as_bytes(&raw) }.to_vec();
    match crate::record::decode(&bytes, 0).unwrap().origin {
        Origin::Devlink(t) => t.cookie.unwrap(),
        Origin::Skb(_) => unreachable!(),
    }
}

#[test]
fn influx_escapes_each_position() {
    use super::influx::escape_for_test as esc;
    assert_eq!(esc(r#"a b,c=d"e\f"#, "measurement"), r#"a\ b\,c=d"e\\f"#);
    assert_eq!(esc(r#"a b,c=d"e\f"#, "key"), r#"a\ b\,c\=d"e\\f"#);
    assert_eq!(esc(r#"a b,c=d"e\f"#, "string"), r#"a b,c=d\"e\\f"#);
    assert_eq!(esc("naïve\nline", "key"), "naïve\\ line");
    assert_eq!(esc("ends\\", "key"), "ends\\\\");
}

#[test]
fn influx_escapes_hostile_names_in_a_record() {
    let mut rec = seed_ping();
    rec.ingress.name = FixedStr::new(r#"sw p,1="x"\"#);
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(r#",ingressPort=sw\ p\,1\="x"\\,"#), "{line}");
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["ingressPort"], r#"sw p,1="x"\"#);
}

#[test]
fn influx_points_never_share_a_timestamp() {
    let ctx = context();
    let mut enc = Encoder::new(Format::Influx);
    let rec = seed_ping();
    let mut stamps = Vec::new();
    for _ in 0..3 {
        let mut out = Vec::new();
        enc.encode(&ctx, &rec, &mut out);
        let line = String::from_utf8(out).unwrap();
        stamps.push(line.rsplit(' ').next().unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(stamps, vec![rec.time_ns, rec.time_ns + 1, rec.time_ns + 2]);
}

#[test]
fn influx_keeps_the_times_of_records_out_of_order() {
    // Drained flows come in hash order: an earlier time after a later one
    // must keep its own time, not be pushed past the later one.
    let ctx = context();
    let mut enc = Encoder::new(Format::Influx);
    let mut stamp = |t: u64| {
        let mut rec = seed_ping();
        rec.time_ns = t;
        let mut out = Vec::new();
        enc.encode(&ctx, &rec, &mut out);
        String::from_utf8(out).unwrap().rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(stamp(5_000_000_000), 5_000_000_000);
    assert_eq!(stamp(4_980_000_000), 4_980_000_000, "20 ms earlier stays 20 ms earlier");
    assert_eq!(stamp(5_000_000_000), 5_000_000_001, "an exact collision moves by 1 ns");
    assert_eq!(stamp(5_000_000_001), 5_000_000_002);
}

#[test]
fn unknown_traps_and_missing_ports_still_make_sense() {
    let mut rec = seed_ping();
    if let Origin::Devlink(t) = &mut rec.origin {
        t.trap_name = FixedStr::new("vendor_magic");
        t.trap_group = FixedStr::new("");
        t.trap_type = Kind::Drop;
    }
    rec.ingress.name = FixedStr::new("");
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["dropReason"], "vendor_magic");
    assert_eq!(v["severity"], "Error");
    assert_eq!(v["dropType"], "N/A");
    assert_eq!(v["ingressPort"], "N/A");
}

#[test]
fn text_line_is_compact() {
    let got = encode(Format::Text, &udp_skb_drop());
    assert_eq!(
        got,
        "1611931294.010481600 veth0 kernelDrop UNKNOWN_2 [Notice] vlan 100.200 udp 192.0.2.1:40000 > 192.0.2.21:53 ttl 64 len 84"
    );
}

#[test]
fn drop_type_is_the_group_prefix() {
    assert_eq!(drop_type("l3_exceptions"), "l3");
    assert_eq!(drop_type("buffer_drops"), "buffer");
    assert_eq!(drop_type("tunnel_drops"), "tunnel");
    assert_eq!(drop_type("stp"), "stp");
    assert_eq!(drop_type(""), "N/A");
}

#[test]
fn aggregated_records_carry_counts_in_both_formats() {
    let mut rec = seed_ping();
    rec.flow = Some(FlowCount {
        packets: 12,
        bytes: 1176,
        first_ns: 1_611_931_290_000_000_001,
        last_ns: 1_611_931_294_010_481_600,
        kind: FlowKind::Flow,
    });
    let json = encode(Format::Json, &rec);
    // The -u keys come last, after the seed's and the per-event additions.
    assert!(
        json.ends_with(r#","count":12,"bytes":1176,"firstSeen":"1611931290.000000001","lastSeen":"1611931294.010481600","aggregation":"flow"}"#),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["count"].as_u64(), v["bytes"].as_u64()), (Some(12), Some(1176)));
    assert_eq!(v["firstSeen"], "1611931290.000000001");
    assert_eq!(v["lastSeen"], "1611931294.010481600");
    assert!(v.get("aggregationOverflow").is_none());
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(r#" bytes=1176i,count=12i,firstSeen="1611931290.000000001",ingressIfIndex=12i,lastSeen="1611931294.010481600","#), "{line}");
    assert!(line.starts_with("DroppedPackets,aggregation=flow,description="), "{line}");

    rec.flow = Some(FlowCount { packets: 1, bytes: 98, first_ns: 1, last_ns: 1, kind: FlowKind::Overflow });
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!((v["count"].as_u64(), v["aggregationOverflow"].as_bool()), (Some(1), Some(true)));
    assert_eq!(v["aggregation"], "overflow");
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(" aggregationOverflow=true,bytes=98i,count=1i,"), "{line}");
    assert!(line.starts_with("DroppedPackets,aggregation=overflow,description="), "{line}");

    rec.flow = Some(FlowCount { packets: 1, bytes: 98, first_ns: 1, last_ns: 1, kind: FlowKind::Exemplar });
    let json = encode(Format::Json, &rec);
    assert!(json.ends_with(r#","count":1,"bytes":98,"firstSeen":"0.000000001","lastSeen":"0.000000001","aggregation":"exemplar"}"#), "{json}");
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(" bytes=98i,count=1i,"), "an exemplar is no overflow: {line}");
    assert!(line.starts_with("DroppedPackets,aggregation=exemplar,description="), "{line}");
    // Per-event records carry no counts and no kind: byte for byte as before -u existed.
    assert!(!encode(Format::Influx, &seed_ping()).contains("count="));
    assert!(!encode(Format::Influx, &seed_ping()).contains("aggregation"));
    assert!(!encode(Format::Json, &seed_ping()).contains("aggregation"));
}

#[test]
fn taxonomy_overrides_replace_the_built_in_texts() {
    let mut ctx = context();
    ctx.taxonomy.insert(
        "unresolved_neigh".into(),
        TaxonomyOverride {
            drop_reason: Some("ARP miss".into()),
            severity: Some("Critical".into()),
            message: Some("neighMiss".into()),
            description: None,
        },
    );
    let mut out = Vec::new();
    Encoder::new(Format::Json).encode(&ctx, &seed_ping(), &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["dropReason"], "ARP miss");
    assert_eq!(v["severity"], "Critical");
    assert_eq!(v["message"], "neighMiss");
    assert_eq!(v["description"], "Validate ARP table for the neighbor/next hop", "not overridden");
}

/// A kernel drop on a tun device (no Ethernet header): the record has no
/// Ethernet layer in any format, and its length counts from the IP header.
fn l3_udp_drop() -> Record {
    let mut rec = udp_skb_drop();
    rec.ingress = Ingress { name: FixedStr::new("tun0"), ifindex: 7, netns_ino: 4026532177 };
    rec.packet = Packet {
        len: 41,
        captured: 41,
        ethernet: None,
        vlans: [None, None],
        ether_type: 0x0800,
        network: Network::Ip(Ip {
            src: "10.99.1.2".parse().unwrap(),
            dst: "10.99.1.1".parse().unwrap(),
            protocol: 17,
            length: 41,
            tos: 0,
            ttl: 61,
            id: Some(0x1234),
            fragment: None,
            dont_fragment: true,
            flow_label: None,
        }),
        transport: Transport::Udp { src_port: 33333, dst_port: 41001, length: 21 },
        walk_limited: false,
    };
    rec
}

#[test]
fn records_without_an_ethernet_header_have_no_ethernet_layer() {
    let rec = l3_udp_drop();
    assert_eq!(
        encode(Format::Json, &rec),
        concat!(
            r#"{"deviceIP":"10.5.1.101","ingressPort":"tun0","#,
            r#""description":"Packet dropped by the Linux network stack; see skbDropReason (enum skb_drop_reason)","#,
            r#""severity":"Notice","dropType":"kernel","dropReason":"UNKNOWN_2","#,
            r#""timestamp":"1611931294.010481600","message":"kernelDrop","#,
            r#""packet":{"packetType":"TRANSPORT","#,
            r#""IP":{"srcIp":"10.99.1.2","dstIp":"10.99.1.1","protocol":17,"protocolName":"17 (udp)","length":41,"tos":0,"ttl":61,"version":4,"id":4660,"dontFragment":true},"#,
            r#""TRANSPORT":{"srcPort":33333,"dstPort":41001,"srcPortName":"33333 (unknown)","dstPortName":"41001 (unknown)","udpLength":21},"#,
            r#""length":41},"#,
            r#""source":"skb","ingressIfIndex":7,"netnsIno":4026532177,"skbDropReason":"UNKNOWN_2"}"#
        )
    );
    assert_eq!(
        encode(Format::Influx, &rec),
        concat!(
            r"DroppedPackets,description=Packet\ dropped\ by\ the\ Linux\ network\ stack;\ see\ skbDropReason\ (enum\ skb_drop_reason),",
            r"deviceIP=10.5.1.101,dropReason=UNKNOWN_2,dropType=kernel,ingressPort=tun0,message=kernelDrop,",
            r"packet_ip_srcIp=10.99.1.2,packet_packetType=transport,packet_transport_dstPort=41001,severity=Notice,",
            r"skbDropReason=UNKNOWN_2,source=skb ",
            r#"ingressIfIndex=7i,netnsIno=4026532177i,packet_ip_dontFragment=true,packet_ip_dstIp="10.99.1.1","#,
            r#"packet_ip_id=4660i,packet_ip_length=41i,packet_ip_protocol=17i,packet_ip_protocolName="17 (udp)","#,
            r#"packet_ip_tos=0i,packet_ip_ttl=61i,packet_ip_version=4i,packet_length=41i,"#,
            r#"packet_transport_dstPortName="41001 (unknown)",packet_transport_srcPort=33333i,"#,
            r#"packet_transport_srcPortName="33333 (unknown)",packet_transport_udpLength=21i,"#,
            r#"timestamp="1611931294.010481600" 1611931294010481600"#
        )
    );
    assert_eq!(
        encode(Format::Text, &rec),
        "1611931294.010481600 tun0 kernelDrop UNKNOWN_2 [Notice] udp 10.99.1.2:33333 > 10.99.1.1:41001 ttl 61 len 41"
    );

    // Nothing decodable after the network header's start: the type says so, not "ETHERNET".
    let mut bare = rec;
    bare.packet.network = Network::None;
    bare.packet.transport = Transport::None;
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &bare)).unwrap();
    assert_eq!(v["packet"], serde_json::json!({"packetType": "NONE", "length": 41}));
    assert!(!encode(Format::Influx, &bare).contains("packet_ethernet"));
}
