//! The assertions on tests/vm/guest-devlink.sh's results, shared by the x86
//! (tests/vm_devlink.rs) and arm64 (tests/vm_arm64.rs) runs, so that both
//! architectures are held to the same exact fields and counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use trapstream::taxonomy::{self, TrapType};

use super::counter;
use super::vm::{final_stats, per_trap, read, records};

const DEVICE: &str = "netdevsim/netdevsim10";

/// devlink's rx packet counter per trap of our device.
fn trap_counters(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    let v: Value = serde_json::from_str(&read(dir, file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    v["trap"][DEVICE]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no traps of {DEVICE}"))
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["stats"]["rx"]["packets"].as_u64().unwrap()))
        .collect()
}

/// What each trap reported while trapstream was attached: the counters after
/// minus before (the window is bracketed by the ports being down).
fn reported(dir: &Path, scenario: &str) -> BTreeMap<String, u64> {
    let before = trap_counters(dir, &format!("{scenario}.before.json"));
    let after = trap_counters(dir, &format!("{scenario}.after.json"));
    after
        .iter()
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// What was reported of the types trapstream reports by default (no control traps).
fn reported_by_default(dir: &Path, scenario: &str) -> BTreeMap<String, u64> {
    reported(dir, scenario).into_iter().filter(|(n, _)| trap_type(n) != TrapType::Control).collect()
}

fn trap_type(name: &str) -> TrapType {
    match name {
        "igmp_query" | "igmp_v1_report" => TrapType::Control,
        "ttl_value_is_too_small" | "fid_miss" => TrapType::Exception,
        _ => TrapType::Drop,
    }
}

/// Every field netdevsim and the taxonomy determine, for one record.
fn check_record(r: &Value, ports: &[String], group_of: &BTreeMap<&str, &str>) {
    let name = r["trapName"].as_str().unwrap();
    let t = trap_type(name);
    let taxon = taxonomy::classify(name, t);
    assert_eq!(r["source"], "devlink", "{r}");
    assert_eq!(r["devlinkDevice"], DEVICE, "{r}");
    assert_eq!(r["trapType"], t.as_str(), "{r}");
    assert_eq!(r["trapGroup"], group_of[name], "{r}");
    assert_eq!(r["dropType"], group_of[name].split('_').next().unwrap(), "{r}");
    assert_eq!(r["dropReason"], taxon.drop_reason, "{r}");
    assert_eq!(r["description"], taxon.description, "{r}");
    assert_eq!(r["severity"], taxon.severity, "{r}");
    let message = match t {
        TrapType::Drop => "fwdDrop",
        TrapType::Exception => "fwdException",
        TrapType::Control => "fwdControl",
    };
    assert_eq!(r["message"], message, "{r}");
    let port = r["ingressPort"].as_str().unwrap().to_string();
    assert!(ports.contains(&port), "ingressPort {port} is not a netdevsim port {ports:?}");
    // The packet as netdevsim builds it (nsim_dev_trap_skb_build).
    let p = &r["packet"];
    assert_eq!(p["packetType"], "TRANSPORT", "{r}");
    assert_eq!(p["ETHERNET"]["etherType"], 0x0800);
    assert_eq!(p["IP"]["srcIp"], "192.0.2.1");
    assert_eq!(p["IP"]["dstIp"], "198.51.100.1");
    assert_eq!(p["IP"]["protocol"], 17);
    assert_eq!(p["IP"]["ttl"], 100);
    assert_eq!(p["IP"]["length"], 128);
    assert_eq!(p["TRANSPORT"]["udpLength"], 108);
    assert_eq!(p["length"], 14 + 128);
}

/// Everything guest-devlink.sh left in `dir`, for the kernel `version`
/// (booted on any architecture), checked against devlink's own counters.
pub fn check_guest(version: &str, dir: &Path) {
    let kernel = read(dir, "kernel");
    assert!(kernel.starts_with(version), "booted {kernel}, wanted {version}");
    let ports: Vec<String> = read(dir, "ports").split_whitespace().map(str::to_string).collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    let group_of: BTreeMap<&str, &str> = [
        ("fid_miss", "l2_drops"),
        ("ttl_value_is_too_small", "l3_exceptions"),
        ("blackhole_route", "l3_drops"),
        ("ingress_flow_action_drop", "acl_drops"),
        ("igmp_query", "mc_snooping"),
        ("igmp_v1_report", "mc_snooping"),
    ]
    .into_iter()
    .collect();
    let control: BTreeSet<&str> = ["igmp_query", "igmp_v1_report"].into();

    // 1. Default types: every exception report is a record; control traps are
    // filtered in the kernel; the counts equal devlink's, trap by trap.
    let stats = final_stats(dir, "events");
    let recs = records(dir, "events");
    let devlink = reported(dir, "events");
    let expected: BTreeMap<String, u64> =
        devlink.iter().filter(|(n, _)| !control.contains(n.as_str())).map(|(n, c)| (n.clone(), *c)).collect();
    assert_eq!(
        expected.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["fid_miss", "ttl_value_is_too_small"],
        "{version}: traps netdevsim reported: {devlink:?}"
    );
    assert_eq!(per_trap(&recs), expected, "{version}: records per trap vs devlink's counters; {stats}");
    let lost = counter(&stats, "ring_lost") + counter(&stats, "channel_lost") + counter(&stats, "send_lost");
    assert_eq!(lost, 0, "{stats}");
    assert_eq!(counter(&stats, "read"), expected.values().sum::<u64>(), "{stats}");
    // Control reports reach the tracepoint on these kernels and stop in the kernel.
    let control_reports: u64 =
        devlink.iter().filter(|(n, _)| control.contains(n.as_str())).map(|(_, c)| c).sum();
    assert_eq!(counter(&stats, "filtered"), control_reports, "{stats}");
    assert_eq!(counter(&stats, "seen"), devlink.values().sum::<u64>(), "{stats}");
    for r in &recs {
        check_record(r, &ports, &group_of);
    }
    let sports: BTreeSet<u64> =
        recs.iter().map(|r| r["packet"]["TRANSPORT"]["srcPort"].as_u64().unwrap()).collect();
    assert!(
        sports.len() > recs.len() / 2,
        "UDP ports vary packet to packet: {} distinct of {}",
        sports.len(),
        recs.len()
    );

    // 2. Control traps when asked for.
    let recs = records(dir, "control");
    let counts = per_trap(&recs);
    for name in &control {
        assert!(counts.get(*name).copied().unwrap_or(0) > 0, "{version}: no {name} records: {counts:?}");
    }
    assert_eq!(counts, reported(dir, "control"), "{version}: control scenario");
    for r in &recs {
        check_record(r, &ports, &group_of);
    }

    // 3. Drop traps set to `trap`, and the flow-action cookie in hex.
    let recs = records(dir, "drops");
    assert_eq!(per_trap(&recs), reported_by_default(dir, "drops"), "{version}: drops scenario");
    let cookie = read(dir, "cookie").trim().to_string();
    let mut seen_drop = BTreeSet::new();
    for r in &recs {
        check_record(r, &ports, &group_of);
        let name = r["trapName"].as_str().unwrap();
        seen_drop.insert(name.to_string());
        if name == "ingress_flow_action_drop" {
            assert_eq!(r["flowActionCookie"], cookie.as_str(), "{r}");
            assert_eq!(r["flowActionCookieLength"], cookie.len() / 2, "{r}");
        } else {
            assert!(r.get("flowActionCookie").is_none(), "{r}");
        }
    }
    assert!(
        seen_drop.contains("blackhole_route") && seen_drop.contains("ingress_flow_action_drop"),
        "{seen_drop:?}"
    );

    // 4. UDP to a collector in the guest, JSON arrays and line protocol.
    let stats = final_stats(dir, "udp_json");
    let expected = reported_by_default(dir, "udp_json");
    let bytes = std::fs::read(dir.join("udp_json.udp")).expect("udp_json.udp");
    let mut got = Vec::new();
    for value in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
        let batch = value.expect("the collector received whole JSON arrays");
        let batch = batch.as_array().expect("each datagram is one JSON array").clone();
        assert!(batch.len() <= 5, "-b 5");
        got.extend(batch.into_iter().filter(|r| r.get("measurement").is_none()));
    }
    for r in &got {
        check_record(r, &ports, &group_of);
        assert_eq!(r["deviceIP"], "127.0.0.1");
    }
    assert_eq!(per_trap(&got), expected, "{stats}");
    let stats = final_stats(dir, "udp_influx");
    let lines: Vec<String> = read(dir, "udp_influx.udp")
        .lines()
        .filter(|l| l.starts_with("DroppedPackets,"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len() as u64, counter(&stats, "sent"), "{stats}");
    let expected: u64 = reported(dir, "udp_influx")
        .iter()
        .filter(|(n, _)| !control.contains(n.as_str()))
        .map(|(_, c)| c)
        .sum();
    assert_eq!(lines.len() as u64, expected, "{stats}");
    for l in &lines {
        for part in [
            ",devlinkDevice=netdevsim/netdevsim10,",
            ",packet_ip_srcIp=192.0.2.1,",
            "packet_ip_dstIp=\"198.51.100.1\"",
            "packet_ip_ttl=100i",
            "packet_ip_length=128i",
            ",trapType=exception",
        ] {
            assert!(l.contains(part), "{part} missing from {l}");
        }
    }

    // 5. Aggregation: the counts add up to devlink's, trap by trap.
    let stats = final_stats(dir, "aggregate");
    let recs = records(dir, "aggregate");
    let expected: BTreeMap<String, u64> =
        reported(dir, "aggregate").into_iter().filter(|(n, _)| !control.contains(n.as_str())).collect();
    assert_eq!(per_trap(&recs), expected, "{version}: aggregated counts; {stats}");
    assert_eq!(counter(&stats, "aggregated"), counter(&stats, "flow_packets"), "{stats}");
    for r in &recs {
        check_record(r, &ports, &group_of);
        assert_eq!(r["deviceIP"], "192.0.2.99");
        assert!(
            r["count"].as_u64().unwrap() >= 1
                && r["bytes"].as_u64().unwrap() == r["count"].as_u64().unwrap() * 142
        );
    }

    // 5b. Aggregation with exemplars: still devlink's counts, trap by trap,
    // over exemplar and flow records together. netdevsim gives every packet
    // random MACs and a random UDP source port, so each report is a new flow
    // and goes out as an exemplar, unless the ring was full for it (then it
    // is counted into its flow).
    let stats = final_stats(dir, "aggregate_exemplars");
    let recs = records(dir, "aggregate_exemplars");
    let expected: BTreeMap<String, u64> = reported(dir, "aggregate_exemplars")
        .into_iter()
        .filter(|(n, _)| !control.contains(n.as_str()))
        .collect();
    assert_eq!(per_trap(&recs), expected, "{version}: counts with exemplars; {stats}");
    let exemplars: Vec<&Value> = recs.iter().filter(|r| r["aggregation"] == "exemplar").collect();
    assert!(!exemplars.is_empty(), "{version}: every report is a new flow: {stats}");
    assert_eq!(exemplars.len() as u64, counter(&stats, "exemplars"), "{stats}");
    assert_eq!(counter(&stats, "aggregated"), counter(&stats, "flow_packets"), "{stats}");
    assert_eq!(
        counter(&stats, "aggregated") + counter(&stats, "exemplars"),
        expected.values().sum::<u64>(),
        "{version}: each report an exemplar or counted: {stats}"
    );
    for r in &recs {
        check_record(r, &ports, &group_of);
        let kind = r["aggregation"].as_str().expect("every -u record says its kind");
        assert!(kind == "exemplar" || kind == "flow", "{r}");
        if kind == "exemplar" {
            assert_eq!((r["count"].as_u64(), r["bytes"].as_u64()), (Some(1), Some(142)), "{r}");
            assert_eq!(r["firstSeen"], r["timestamp"], "an exemplar has its own time: {r}");
        }
    }
    // Each exemplar's packet is in the capture (trap and instant), and
    // nothing else is: the packets counted in the kernel have no bytes.
    let packets = super::tshark_file(
        &dir.join("aggregate_exemplars.pcapng"),
        &["frame.comment", "frame.time_epoch", "frame.len"],
    );
    let mut in_pcap: Vec<(String, String)> = packets
        .iter()
        .map(|p| {
            assert_eq!(p[2], "142", "{version}: netdevsim's whole frame: {p:?}");
            (trap_in_comment(&p[0]).to_string(), p[1].clone())
        })
        .collect();
    in_pcap.sort();
    assert_eq!(in_pcap, trap_and_instant(exemplars), "{version}: the exemplars' packets; {stats}");

    // 6. The kernel's own drops: a reason only where the tracepoint has one (5.17+).
    let recs: Vec<Value> = records(dir, "skb")
        .into_iter()
        .filter(|r| r["packet"]["TRANSPORT"]["dstPort"].as_u64().is_some_and(|p| (7001..=7003).contains(&p)))
        .collect();
    assert_eq!(recs.len(), 3, "{version}: three datagrams to closed ports");
    let expected_reason = if version == "5.10" { "UNKNOWN" } else { "NO_SOCKET" };
    for r in &recs {
        assert_eq!(r["skbDropReason"], expected_reason, "{version}: {r}");
        assert_eq!(r["ingressPort"], "lo", "{r}");
    }

    // 7. Filters with --source all: each kind judges the source it describes.
    let to_ports = |recs: &[Value], ports: std::ops::RangeInclusive<u64>| -> Vec<Value> {
        recs.iter()
            .filter(|r| r["source"] == "skb")
            .filter(|r| r["packet"]["TRANSPORT"]["dstPort"].as_u64().is_some_and(|p| ports.contains(&p)))
            .cloned()
            .collect()
    };
    let stats = final_stats(dir, "filter_groups");
    let recs = records(dir, "filter_groups");
    let traps: Vec<Value> = recs.iter().filter(|r| r["source"] == "devlink").cloned().collect();
    let expected: BTreeMap<String, u64> = reported(dir, "filter_groups")
        .into_iter()
        .filter(|(n, _)| group_of.get(n.as_str()) == Some(&"l3_exceptions"))
        .collect();
    assert!(!expected.is_empty(), "{version}: no l3_exceptions trap in the window");
    assert_eq!(per_trap(&traps), expected, "{version}: a trap-group list keeps its group; {stats}");
    assert_eq!(to_ports(&recs, 7101..=7103).len(), 3, "{version}: and every kernel drop; {stats}");

    let stats = final_stats(dir, "filter_ports");
    let recs = records(dir, "filter_ports");
    let port = read(dir, "filter_port").trim().to_string();
    let traps: Vec<&Value> = recs.iter().filter(|r| r["source"] == "devlink").collect();
    assert!(!traps.is_empty(), "{version}: traps of {port}; {stats}");
    assert!(traps.iter().all(|r| r["ingressPort"] == port.as_str()), "{version}: only {port}'s traps");
    // A kernel drop's device is its ingress port, or its egress port on the way out.
    let device = |r: &Value| r.get("egressPort").unwrap_or(&r["ingressPort"]).clone();
    let drops: Vec<&Value> = recs.iter().filter(|r| r["source"] == "skb").collect();
    assert!(
        drops.iter().all(|r| device(r) == "lo" || device(r) == port.as_str()),
        "{version}: only the kernel drops of lo and {port}: {drops:?}"
    );
    assert_eq!(to_ports(&recs, 7201..=7203).len(), 3, "{version}: {stats}");

    let stats = final_stats(dir, "filter_names");
    let recs = records(dir, "filter_names");
    let traps: Vec<Value> = recs.iter().filter(|r| r["source"] == "devlink").cloned().collect();
    let expected: BTreeMap<String, u64> = reported(dir, "filter_names")
        .into_iter()
        .filter(|(n, _)| n != "fid_miss" && !control.contains(n.as_str()))
        .collect();
    assert!(!expected.is_empty(), "{version}: traps besides fid_miss in the window");
    assert_eq!(per_trap(&traps), expected, "{version}: all but the excluded trap; {stats}");
    assert_eq!(to_ports(&recs, 7301..=7303).len(), 3, "{version}: every kernel drop; {stats}");

    // 8. The packets as pcapng next to the records: one packet per record,
    // each on its port's interface, named by its trap in the comment, at
    // the record's instant.
    let stats = final_stats(dir, "pcap");
    let recs = records(dir, "pcap");
    assert_eq!(per_trap(&recs), reported_by_default(dir, "pcap"), "{version}: pcap scenario; {stats}");
    assert!(per_trap(&recs).contains_key("blackhole_route"), "{version}: a drop trap in the window");
    let fields = [
        "frame.interface_name",
        "frame.interface_description",
        "frame.comment",
        "frame.time_epoch",
        "ip.proto",
    ];
    let packets = super::tshark_file(&dir.join("pcap.pcapng"), &fields);
    assert_eq!(packets.len() as u64, counter(&stats, "pcap_written"), "{version}: {stats}");
    assert_eq!(counter(&stats, "pcap_lost"), 0, "{version}: {stats}");
    let mut in_pcap: Vec<(String, String)> = Vec::new();
    for p in &packets {
        assert!(ports.contains(&p[0]), "{version}: interface {p:?} is one of {ports:?}");
        assert!(p[1].starts_with(&format!("devlink {DEVICE} trap reports")), "{version}: {p:?}");
        assert_eq!(p[4], "17", "{version}: netdevsim's packets are UDP: {p:?}");
        let trap = trap_in_comment(&p[2]);
        let group = group_of.get(trap).unwrap_or_else(|| panic!("{version}: unknown trap in {p:?}"));
        assert!(p[2].contains(&format!(" trapGroup={group} ")), "{version}: {p:?}");
        assert!(p[2].contains(&format!(" devlinkDevice={DEVICE}")), "{version}: {p:?}");
        in_pcap.push((trap.to_string(), p[3].clone()));
    }
    in_pcap.sort();
    assert_eq!(in_pcap, trap_and_instant(&recs), "{version}: the same packets, trap and instant");
}

/// The trap a packet's pcapng comment names (it starts `trapName=NAME `).
fn trap_in_comment(comment: &str) -> &str {
    comment.strip_prefix("trapName=").and_then(|c| c.split(' ').next()).expect("trapName first")
}

/// Each record's trap and timestamp, sorted: what its packets in a capture must show.
fn trap_and_instant<'a>(records: impl IntoIterator<Item = &'a Value>) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = records
        .into_iter()
        .map(|r| (r["trapName"].as_str().unwrap().to_string(), r["timestamp"].as_str().unwrap().to_string()))
        .collect();
    all.sort();
    all
}
