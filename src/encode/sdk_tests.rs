//! Golden outputs of the vendor SDK's reports (SONiC, Cumulus-class hosts):
//! its names, groups and types, and what SONiC kernels add.

use super::tests::{encode, seed_ping};
use super::*;
use crate::record::{AclDirection, AclRule, DevlinkTrap, Egress, FixedStr, Latency, Occupancy, Wjh};
use crate::taxonomy::Kind;

/// The seed ping as NVIDIA's Switch SDK reports it (SONiC, Cumulus-class
/// hosts): its own trap and group names, trap_type always 0 (drop), and the
/// dummy devlink instance of sx_netdev.
fn sdk_report(trap_name: &str, group: &str) -> Record {
    let mut rec = seed_ping();
    rec.origin = Origin::Devlink(DevlinkTrap {
        trap_name: FixedStr::new(trap_name),
        trap_group: FixedStr::new(group),
        trap_type: Kind::Drop,
        bus_name: FixedStr::new("devlink_dummy"),
        device_name: FixedStr::new("devlink_dummy0"),
        cookie: None,
        acl: None,
        wjh: None,
    });
    rec
}

/// The measurement and tags of an Influx line are exactly `tags`.
fn assert_influx_tags(line: &str, tags: &str) {
    assert!(line.starts_with(&format!("{tags} ")), "\n  got: {line}\n want: {tags} ...");
}

#[test]
fn sdk_drop_golden() {
    let rec = sdk_report("blackhole_neigh", "router");
    let got = encode(Format::Json, &rec);
    let expected = concat!(
        r#"{"deviceIP":"10.5.1.101","ingressPort":"swp1s0","#,
        r#""description":"Validate ARP table for the next hop","severity":"Warning","#,
        r#""dropType":"l3","dropReason":"Blackhole ARP/neighbor","#,
        r#""timestamp":"1611931294.010481600","message":"fwdDrop","#,
        r#""packet":{"packetType":"IP","#,
        r#""ETHERNET":{"etherTypeName":"0x800","etherType":2048,"srcMac":"0c:42:a1:a9:81:66","dstMac":"24:8a:07:ca:22:59","vlanId":0,"pcp":0},"#,
        r#""IP":{"srcIp":"192.0.2.1","dstIp":"192.0.2.21","protocol":1,"protocolName":"1 (icmp)","length":84,"tos":0,"ttl":64,"version":4,"id":4660,"dontFragment":true},"#,
        r#""ICMP":{"type":8,"code":0},"length":98},"#,
        r#""source":"devlink","ingressIfIndex":12,"trapName":"blackhole_neigh","trapGroup":"router","#,
        r#""trapType":"drop"}"#
    );
    assert_eq!(got, expected);
    let got = encode(Format::Influx, &rec);
    let expected = concat!(
        r"DroppedPackets,description=Validate\ ARP\ table\ for\ the\ next\ hop,deviceIP=10.5.1.101,",
        r"dropReason=Blackhole\ ARP/neighbor,dropType=l3,ingressPort=swp1s0,",
        r"message=fwdDrop,packet_ethernet_dstMac=24:8a:07:ca:22:59,packet_ethernet_srcMac=0c:42:a1:a9:81:66,",
        r"packet_ip_srcIp=192.0.2.1,packet_packetType=ip,severity=Warning,source=devlink,trapGroup=router,",
        r"trapName=blackhole_neigh,trapType=drop ",
        r#"ingressIfIndex=12i,packet_ethernet_etherType=2048i,packet_ethernet_etherTypeName="0x800","#,
        r#"packet_icmp_code=0i,packet_icmp_type=8i,packet_ip_dontFragment=true,packet_ip_dstIp="192.0.2.21","#,
        r#"packet_ip_id=4660i,packet_ip_length=84i,packet_ip_protocol=1i,packet_ip_protocolName="1 (icmp)","#,
        r#"packet_ip_tos=0i,packet_ip_ttl=64i,packet_ip_version=4i,packet_length=98i,"#,
        r#"timestamp="1611931294.010481600" 1611931294010481600"#
    );
    assert_eq!(got, expected);
}

#[test]
fn sdk_exception_golden() {
    // The kernel says drop; the SDK's unresolved_neigh is an exception.
    let rec = sdk_report("unresolved_neigh", "router");
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["message"], "fwdException");
    assert_eq!(v["severity"], "Warning");
    assert_eq!(v["dropType"], "l3");
    assert_eq!(v["dropReason"], "Unresolved  neighbor /next-hop");
    assert_eq!(v["description"], "Validate ARP table for the neighbor/next hop");
    assert_eq!(v["trapType"], "exception");
    assert!(v.get("devlinkDevice").is_none(), "the dummy devlink instance names no device");
    let line = encode(Format::Influx, &rec);
    assert_influx_tags(
        &line,
        concat!(
            r"DroppedPackets,description=Validate\ ARP\ table\ for\ the\ neighbor/next\ hop,deviceIP=10.5.1.101,",
            r"dropReason=Unresolved\ \ neighbor\ /next-hop,dropType=l3,ingressPort=swp1s0,message=fwdException,",
            r"packet_ethernet_dstMac=24:8a:07:ca:22:59,packet_ethernet_srcMac=0c:42:a1:a9:81:66,",
            r"packet_ip_srcIp=192.0.2.1,packet_packetType=ip,severity=Warning,source=devlink,trapGroup=router,",
            r"trapName=unresolved_neigh,trapType=exception"
        ),
    );
}

#[test]
fn sdk_threshold_golden() {
    // Not a drop: the packet crossed a traffic-class threshold and was mirrored.
    let rec = sdk_report("congestion_thresh_crossed", "buffer");
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["message"], "fwdThreshold");
    assert_eq!(v["severity"], "Notice");
    assert_eq!(v["dropType"], "buffer");
    assert_eq!(v["dropReason"], "Port TC congestion threshold crossed");
    assert_eq!(v["description"], "Monitor network congestion");
    assert_eq!(v["trapType"], "threshold");
    assert!(v.get("devlinkDevice").is_none());
    let line = encode(Format::Influx, &rec);
    assert_influx_tags(
        &line,
        concat!(
            r"DroppedPackets,description=Monitor\ network\ congestion,deviceIP=10.5.1.101,",
            r"dropReason=Port\ TC\ congestion\ threshold\ crossed,dropType=buffer,ingressPort=swp1s0,",
            r"message=fwdThreshold,packet_ethernet_dstMac=24:8a:07:ca:22:59,packet_ethernet_srcMac=0c:42:a1:a9:81:66,",
            r"packet_ip_srcIp=192.0.2.1,packet_packetType=ip,severity=Notice,source=devlink,trapGroup=buffer,",
            r"trapName=congestion_thresh_crossed,trapType=threshold"
        ),
    );
    let text = encode(Format::Text, &rec);
    assert!(text.contains(" fwdThreshold congestion_thresh_crossed [Notice] "), "{text}");
}

#[test]
fn sdk_groups_map_to_the_seed_drop_types() {
    for (name, group, drop_type) in [
        ("port_isolation_filter", "l2", "l2"),
        ("sip_is_in_class_e", "router", "l3"),
        ("decap_error", "tunnel", "tunnel"),
        ("flow_action_drop", "acl", "acl"),
        ("tail_drop", "buffer", "buffer"),
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&encode(Format::Json, &sdk_report(name, group))).unwrap();
        assert_eq!(v["dropType"], drop_type, "{name}");
    }
    assert_eq!(sdk_drop_type("router"), "l3");
    assert_eq!(sdk_drop_type(""), "N/A");
    assert_eq!(sdk_drop_type("no_such_group"), "no_such_group");
}

#[test]
fn sdk_unknown_trap_points_away_from_devlink() {
    let v: serde_json::Value =
        serde_json::from_str(&encode(Format::Json, &sdk_report("some_future_trap", "router"))).unwrap();
    assert_eq!(v["message"], "fwdDrop");
    assert_eq!(v["severity"], "Error");
    assert_eq!(v["dropReason"], "some_future_trap");
    assert!(!v["description"].as_str().unwrap().contains("devlink trap show"), "{v}");
}

#[test]
fn only_the_sdk_bus_makes_a_report_an_sdk_report() {
    // A devlink driver's report keeps its kernel type, group prefix and handle,
    // even under an SDK trap or group name.
    let mut rec = sdk_report("unresolved_neigh", "router");
    if let Origin::Devlink(t) = &mut rec.origin {
        t.bus_name = FixedStr::new("pci");
        t.device_name = FixedStr::new("0000:03:00.0");
        assert!(!t.is_vendor_sdk());
    }
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["message"], "fwdDrop");
    assert_eq!(v["trapType"], "drop");
    assert_eq!(v["dropType"], "router");
    assert_eq!(v["devlinkDevice"], "pci/0000:03:00.0");
}

/// What a SONiC kernel adds to an SDK report, everything valid: egress by
/// swp2, a member of bond1, traffic class 3, two 8 KiB cells, 10 × 64 ns.
fn sonic_metadata() -> Wjh {
    Wjh {
        egress_lag: Some(Egress { name: FixedStr::new("bond1"), ifindex: 20 }),
        traffic_class: Some(3),
        occupancy: Some(Occupancy { raw: 2 }),
        latency: Some(Latency { raw: 10 }),
    }
}

fn sonic_report(trap_name: &str, group: &str, wjh: Wjh) -> Record {
    let mut rec = sdk_report(trap_name, group);
    if let Origin::Devlink(t) = &mut rec.origin {
        t.trap_type = crate::taxonomy::lookup(trap_name).map_or(Kind::Drop, |i| i.trap_type);
        t.wjh = Some(wjh);
    }
    rec.egress = Some(Egress { name: FixedStr::new("swp2"), ifindex: 9 });
    rec
}

#[test]
fn sonic_metadata_golden() {
    let rec = sonic_report("congestion_thresh_crossed", "buffer", sonic_metadata());
    assert_eq!(
        encode(Format::Json, &rec),
        concat!(
            r#"{"deviceIP":"10.5.1.101","ingressPort":"swp1s0","#,
            r#""description":"Monitor network congestion","severity":"Notice","#,
            r#""dropType":"buffer","dropReason":"Port TC congestion threshold crossed","#,
            r#""timestamp":"1611931294.010481600","message":"fwdThreshold","#,
            r#""packet":{"packetType":"IP","#,
            r#""ETHERNET":{"etherTypeName":"0x800","etherType":2048,"srcMac":"0c:42:a1:a9:81:66","dstMac":"24:8a:07:ca:22:59","vlanId":0,"pcp":0},"#,
            r#""IP":{"srcIp":"192.0.2.1","dstIp":"192.0.2.21","protocol":1,"protocolName":"1 (icmp)","length":84,"tos":0,"ttl":64,"version":4,"id":4660,"dontFragment":true},"#,
            r#""ICMP":{"type":8,"code":0},"length":98},"#,
            r#""source":"devlink","ingressIfIndex":12,"egressPort":"swp2","egressIfIndex":9,"#,
            r#""egressLag":"bond1","egressLagIfIndex":20,"#,
            r#""trapName":"congestion_thresh_crossed","trapGroup":"buffer","trapType":"threshold","#,
            r#""trafficClass":3,"tcOccupancyRaw":2,"tcOccupancyBytes":16384,"latencyRaw":10,"latencyNs":640}"#
        )
    );
    assert_eq!(
        encode(Format::Influx, &rec),
        concat!(
            r"DroppedPackets,description=Monitor\ network\ congestion,deviceIP=10.5.1.101,",
            r"dropReason=Port\ TC\ congestion\ threshold\ crossed,dropType=buffer,egressLag=bond1,egressPort=swp2,",
            r"ingressPort=swp1s0,message=fwdThreshold,packet_ethernet_dstMac=24:8a:07:ca:22:59,",
            r"packet_ethernet_srcMac=0c:42:a1:a9:81:66,packet_ip_srcIp=192.0.2.1,packet_packetType=ip,",
            r"severity=Notice,source=devlink,trafficClass=3,trapGroup=buffer,trapName=congestion_thresh_crossed,",
            r"trapType=threshold ",
            r#"egressIfIndex=9i,egressLagIfIndex=20i,ingressIfIndex=12i,latencyNs=640i,latencyRaw=10i,"#,
            r#"packet_ethernet_etherType=2048i,packet_ethernet_etherTypeName="0x800","#,
            r#"packet_icmp_code=0i,packet_icmp_type=8i,packet_ip_dontFragment=true,packet_ip_dstIp="192.0.2.21","#,
            r#"packet_ip_id=4660i,packet_ip_length=84i,packet_ip_protocol=1i,packet_ip_protocolName="1 (icmp)","#,
            r#"packet_ip_tos=0i,packet_ip_ttl=64i,packet_ip_version=4i,packet_length=98i,"#,
            r#"tcOccupancyBytes=16384i,tcOccupancyRaw=2i,timestamp="1611931294.010481600" 1611931294010481600"#
        )
    );
    assert_eq!(
        encode(Format::Text, &rec),
        "1611931294.010481600 swp1s0 out swp2 lag bond1 fwdThreshold congestion_thresh_crossed [Notice] \
         icmp 192.0.2.1 > 192.0.2.21 type 8 code 0 ttl 64 len 84 tc 3 occ 16384B lat 640ns"
    );
}

#[test]
fn sonic_metadata_partly_valid() {
    // A port without a LAG; only the latency valid (an older CQE format).
    let wjh = Wjh { latency: Some(Latency { raw: 10 }), ..Wjh::default() };
    let rec = sonic_report("latency_thresh_crossed", "buffer", wjh);
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!((v["egressPort"].as_str(), v["egressIfIndex"].as_u64()), (Some("swp2"), Some(9)));
    assert_eq!((v["latencyRaw"].as_u64(), v["latencyNs"].as_u64()), (Some(10), Some(640)));
    for absent in ["egressLag", "egressLagIfIndex", "trafficClass", "tcOccupancyRaw", "tcOccupancyBytes"] {
        assert!(v.get(absent).is_none(), "{absent} in {v}");
    }
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(",dropType=buffer,egressPort=swp2,ingressPort=swp1s0,"), "{line}");
    assert!(line.contains(",source=devlink,trapGroup=buffer,"), "no trafficClass tag: {line}");
    assert!(line.contains(" egressIfIndex=9i,ingressIfIndex=12i,latencyNs=640i,latencyRaw=10i,"), "{line}");
    assert!(!line.contains("tcOccupancy"), "{line}");
    let text = encode(Format::Text, &rec);
    assert!(text.starts_with("1611931294.010481600 swp1s0 out swp2 fwdThreshold "), "{text}");
    assert!(text.ends_with(" len 84 lat 640ns"), "{text}");

    // A LAG without its member port (the SDK can say either alone).
    let wjh = Wjh { egress_lag: sonic_metadata().egress_lag, ..Wjh::default() };
    let mut rec = sonic_report("tail_drop", "buffer", wjh);
    rec.egress = None;
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!((v["egressLag"].as_str(), v["egressLagIfIndex"].as_u64()), (Some("bond1"), Some(20)));
    assert!(v.get("egressPort").is_none(), "{v}");
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(",dropType=buffer,egressLag=bond1,ingressPort=swp1s0,"), "{line}");
    assert!(line.contains(" egressLagIfIndex=20i,ingressIfIndex=12i,"), "{line}");
    assert!(encode(Format::Text, &rec).contains(" swp1s0 lag bond1 fwdDrop tail_drop "));
}

#[test]
fn sonic_metadata_absent_changes_nothing() {
    // A SONiC kernel with nothing valid, and an upstream kernel: the same
    // bytes as before SONiC's fields existed (sdk_drop_golden).
    let plain = sdk_report("blackhole_neigh", "router");
    let empty = sonic_report("blackhole_neigh", "router", Wjh::default());
    let mut empty_no_port = empty;
    empty_no_port.egress = None;
    for format in [Format::Json, Format::Influx, Format::Text] {
        assert_eq!(encode(format, &empty_no_port), encode(format, &plain), "{format:?}");
    }
}

#[test]
fn sdk_acl_cookie_golden() {
    // The reference's example: user value 0x40123, an egress ACL's rule 0x123.
    let mut rec = sdk_report("egress_flow_action_drop", "acl");
    let cookie = crate::encode::tests::test_cookie(4, {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&[0x23, 0x01, 0x04, 0x00]);
        b
    });
    if let Origin::Devlink(t) = &mut rec.origin {
        t.cookie = Some(cookie);
        t.acl = Some(AclRule { value: 0x123, direction: AclDirection::Egress });
    }
    let got = encode(Format::Json, &rec);
    assert!(
        got.ends_with(concat!(
            r#""trapName":"egress_flow_action_drop","trapGroup":"acl","trapType":"drop","#,
            r#""flowActionCookie":"23010400","flowActionCookieLength":4,"aclRuleValue":291,"aclDirection":"egress"}"#
        )),
        "{got}"
    );
    let line = encode(Format::Influx, &rec);
    assert!(line.starts_with("DroppedPackets,aclDirection=egress,description="), "{line}");
    assert!(
        line.contains(
            r#" aclRuleValue=291i,flowActionCookie="23010400",flowActionCookieLength=4i,ingressIfIndex=12i,"#
        ),
        "{line}"
    );
    let text = encode(Format::Text, &rec);
    assert!(text.ends_with(" ttl 64 len 84 acl egress rule 0x123"), "{text}");

    // Direction 3 is not defined by the SDK: said so, not guessed.
    if let Origin::Devlink(t) = &mut rec.origin {
        t.acl = Some(AclRule { value: 7, direction: AclDirection::Reserved });
    }
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!((v["aclDirection"].as_str(), v["aclRuleValue"].as_u64()), (Some("reserved"), Some(7)));
}

/// A drained -u flow of SDK reports, through the decoder as the poll thread gets it.
fn sonic_flow_record() -> Record {
    let cstr = |s: &str, out: &mut [i8]| {
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b as i8;
        }
    };
    let mut e = crate::abi::ts_event { kind: 1, source: 1, trap_type: 3, ifindex: 12, ..Default::default() };
    cstr("swp1s0", &mut e.ifname);
    cstr("congestion_thresh_crossed", &mut e.trap_name);
    cstr("buffer", &mut e.trap_group);
    cstr("devlink_dummy", &mut e.bus_name);
    e.wjh = crate::abi::ts_wjh {
        tc_occupancy: 2,
        latency: 10,
        out_ifindex: 9,
        out_lag_ifindex: 20,
        out_tc: 3,
        flags: 1 | 2 | 4 | 8,
        ..Default::default()
    };
    cstr("swp2", &mut e.wjh.out_ifname);
    cstr("bond1", &mut e.wjh.out_lag_name);
    let flow = crate::abi::ts_flow { packets: 12, bytes: 1176, first_ns: 1, last_ns: 2, exemplar: e };
    // SAFETY: ts_flow is plain data without padding.
    let bytes = unsafe { plain::as_bytes(&flow) };
    crate::record::decode_flow(bytes, 0).unwrap()
}

#[test]
fn a_flow_record_carries_ports_but_no_per_packet_measurement() {
    let rec = sonic_flow_record();
    let v: serde_json::Value = serde_json::from_str(&encode(Format::Json, &rec)).unwrap();
    assert_eq!(v["count"], 12);
    assert_eq!((v["egressPort"].as_str(), v["egressLag"].as_str()), (Some("swp2"), Some("bond1")));
    assert_eq!(v["trapType"], "threshold");
    for absent in ["trafficClass", "tcOccupancyRaw", "tcOccupancyBytes", "latencyRaw", "latencyNs"] {
        assert!(v.get(absent).is_none(), "{absent} in a flow record: {v}");
    }
    let line = encode(Format::Influx, &rec);
    assert!(line.contains(",egressLag=bond1,egressPort=swp2,"), "{line}");
    for absent in ["trafficClass", "tcOccupancy", "latency"] {
        assert!(!line.contains(absent), "{absent} in a flow record: {line}");
    }
    let text = encode(Format::Text, &rec);
    assert!(
        text.contains(" out swp2 lag bond1 ") && !text.contains(" tc ") && !text.contains(" lat "),
        "{text}"
    );
}
