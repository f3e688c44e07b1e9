//! The vendor-SDK path, on real kernels without the hardware: the test
//! kernels carry sdk_emu (tests/vm/sdk_emu.c), which reports packets through
//! the devlink_trap_report tracepoint the way NVIDIA's Switch SDK does on
//! SONiC and Cumulus hosts (a dummy devlink on the devlink_dummy bus, its own
//! trap names and groups, trap_type always 0, the copy freed with kfree_skb
//! right after). The -wjh kernels also carry SONiC's extended trap metadata.
//! tests/vm/guest-sdk.sh drives the emulator; the same binary must give
//! exact records on every kernel, the extended fields where the kernel has
//! them and nowhere else.
//! Needs root, qemu-system-x86 and the kernel build tools (.ci/setup).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use trapstream::taxonomy::{self, Kind};

mod common;

use common::counter;
use common::vm::{final_stats, per_trap, read, records, repo, run_guest};

/// (name, group) of every trap the SDK reports, from the reference table.
fn sdk_traps() -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(repo().join("tests/data/sdk-traps.tsv")).expect("sdk-traps.tsv");
    let traps: Vec<(String, String)> = tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("sdk_trap_name\t") && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap().to_string(), f.next().expect("a group column").to_string())
        })
        .collect();
    assert_eq!(traps.len(), 50, "sdk-traps.tsv lists the SDK's 50 names");
    traps
}

/// What the guest's ports are called and numbered.
fn ifindexes(dir: &Path) -> BTreeMap<&'static str, u64> {
    let numbers: Vec<u64> = read(dir, "ifindexes").split_whitespace().map(|n| n.parse().unwrap()).collect();
    ["swp1", "swp2", "swp3", "PortChannel1"].into_iter().zip(numbers).collect()
}

const EXTENDED: [&str; 9] = [
    "egressPort",
    "egressIfIndex",
    "egressLag",
    "egressLagIfIndex",
    "trafficClass",
    "tcOccupancyRaw",
    "tcOccupancyBytes",
    "latencyRaw",
    "latencyNs",
];

/// The frame sdk_emu was given, as decoded.
fn check_packet(r: &Value, udp_src: u64) {
    let p = &r["packet"];
    assert_eq!(p["packetType"], "TRANSPORT", "{r}");
    assert_eq!(p["length"], 42, "{r}");
    assert_eq!(p["ETHERNET"]["dstMac"], "24:8a:07:ca:22:59", "{r}");
    assert_eq!(p["ETHERNET"]["srcMac"], "0c:42:a1:a9:81:66", "{r}");
    assert_eq!(p["ETHERNET"]["etherType"], 0x0800, "{r}");
    assert_eq!(p["IP"]["srcIp"], "192.0.2.1", "{r}");
    assert_eq!(p["IP"]["dstIp"], "198.51.100.7", "{r}");
    assert_eq!(p["IP"]["ttl"], 64, "{r}");
    assert_eq!(p["IP"]["protocol"], 17, "{r}");
    assert_eq!(p["TRANSPORT"]["srcPort"], udp_src, "{r}");
    assert_eq!(p["TRANSPORT"]["dstPort"], 4789, "{r}");
}

/// Every field the SDK's report and the taxonomy determine.
fn check_sdk_record(r: &Value, group: &str, ports: &BTreeMap<&str, u64>) {
    let name = r["trapName"].as_str().unwrap();
    let (kind, taxon) = taxonomy::classify_sdk(name);
    assert!(taxonomy::lookup(name).is_some(), "{name} has no taxonomy entry");
    assert_eq!(r["source"], "devlink", "{r}");
    assert!(r.get("devlinkDevice").is_none(), "the SDK's dummy devlink is not a device: {r}");
    assert_eq!(r["trapGroup"], group, "{r}");
    let drop_type = match group {
        "router" => "l3",
        other => other,
    };
    assert_eq!(r["dropType"], drop_type, "{r}");
    assert_eq!(r["trapType"], kind.as_str(), "{r}");
    let message = match kind {
        Kind::Drop => "fwdDrop",
        Kind::Exception => "fwdException",
        Kind::Control => "fwdControl",
        Kind::Threshold => "fwdThreshold",
    };
    assert_eq!(r["message"], message, "{r}");
    assert_eq!(r["dropReason"], taxon.drop_reason, "{r}");
    assert_eq!(r["description"], taxon.description, "{r}");
    assert_eq!(r["severity"], taxon.severity, "{r}");
    assert_eq!(r["ingressPort"], "swp1", "{r}");
    assert_eq!(r["ingressIfIndex"], ports["swp1"], "{r}");
}

fn check_kernel(version: &str) {
    let traps = sdk_traps();
    let list = traps.iter().map(|(n, g)| format!("{n} {g}")).collect::<Vec<_>>().join(";");
    let dir = run_guest(version, "guest-sdk.sh", &[("TRAPSTREAM_GUEST_SDK_TRAPS", list)]);
    let kernel = read(&dir, "kernel");
    assert!(kernel.starts_with(version.trim_end_matches("-wjh")), "booted {kernel}, wanted {version}");
    let wjh = read(&dir, "wjh").trim() == "1";
    assert_eq!(wjh, version.ends_with("-wjh"), "{version}: SONiC's fields in the kernel's BTF: {wjh}");
    let ports = ifindexes(&dir);

    // 1. Every name, once, with its texts and types; ACL cookies decoded.
    let stats = final_stats(&dir, "names");
    let recs = records(&dir, "names");
    let group_of: BTreeMap<&str, &str> = traps.iter().map(|(n, g)| (n.as_str(), g.as_str())).collect();
    let expected: BTreeMap<String, u64> = traps.iter().map(|(n, _)| (n.clone(), 1)).collect();
    assert_eq!(per_trap(&recs), expected, "{version}: one record per SDK name; {stats}");
    assert_eq!(counter(&stats, "seen"), 50, "{stats}");
    assert_eq!(counter(&stats, "read"), 50, "{stats}");
    for r in &recs {
        let name = r["trapName"].as_str().unwrap();
        check_sdk_record(r, group_of[name], &ports);
        check_packet(r, 1234);
        for field in EXTENDED {
            assert!(r.get(field).is_none(), "{version}: {field} without a value: {r}");
        }
        let acl = match name {
            "ingress_flow_action_drop" => Some(("23010000", "ingress")),
            "egress_flow_action_drop" => Some(("23010400", "egress")),
            "flow_action_drop" => Some(("23010800", "multipoint")),
            _ => None,
        };
        match acl {
            Some((hex, direction)) => {
                assert_eq!(r["flowActionCookie"], hex, "{r}");
                assert_eq!(r["aclRuleValue"], 0x123, "{r}");
                assert_eq!(r["aclDirection"], direction, "{r}");
            }
            None => {
                assert!(r.get("flowActionCookie").is_none(), "{r}");
                assert!(r.get("aclRuleValue").is_none(), "{r}");
            }
        }
    }
    // The types the taxonomy gives where the SDK says 0, by hand.
    let type_of = |n: &str| recs.iter().find(|r| r["trapName"] == n).unwrap()["trapType"].clone();
    assert_eq!(type_of("blackhole_route"), "drop");
    assert_eq!(type_of("unresolved_neigh"), "exception");
    assert_eq!(type_of("ttl_value_is_too_small"), "exception");
    assert_eq!(type_of("congestion_thresh_crossed"), "threshold");
    assert_eq!(type_of("latency_thresh_crossed"), "threshold");
    assert_eq!(type_of("tail_drop"), "drop");
    // Shared with devlink, with devlink's type: not a drop (control types are asked for here).
    assert_eq!(type_of("uc_loopback"), "control");

    // 2. --trap-types drop: the exception, the threshold crossing and the control trap stop in the kernel.
    let stats = final_stats(&dir, "types");
    assert_eq!(per_trap(&records(&dir, "types")), [("blackhole_route".to_string(), 1)].into(), "{stats}");
    assert_eq!(counter(&stats, "filtered"), 3, "{stats}");

    // 3. SONiC's extended metadata: each value only when present and valid.
    let stats = final_stats(&dir, "wjh");
    let recs = records(&dir, "wjh");
    assert_eq!(recs.len(), 4, "{stats}");
    let rec = |n: &str| recs.iter().find(|r| r["trapName"] == n).unwrap_or_else(|| panic!("no {n}"));
    if !wjh {
        for r in &recs {
            for field in EXTENDED {
                assert!(r.get(field).is_none(), "{version} has no extended metadata: {r}");
            }
        }
    } else {
        let all = rec("tail_drop");
        assert_eq!(all["egressPort"], "swp2", "{all}");
        assert_eq!(all["egressIfIndex"], ports["swp2"], "{all}");
        assert_eq!(all["egressLag"], "PortChannel1", "{all}");
        assert_eq!(all["egressLagIfIndex"], ports["PortChannel1"], "{all}");
        assert_eq!(all["trafficClass"], 3, "{all}");
        assert_eq!(all["tcOccupancyRaw"], 100, "{all}");
        assert_eq!(all["tcOccupancyBytes"], 100 << 13, "{all}");
        assert_eq!(all["latencyRaw"], 2000, "{all}");
        assert_eq!(all["latencyNs"], 2000 << 6, "{all}");
        let none = rec("early_drop");
        assert_eq!(none["egressPort"], "swp2", "{none}");
        assert_eq!(none["egressLag"], "PortChannel1", "{none}");
        for field in ["trafficClass", "tcOccupancyRaw", "tcOccupancyBytes", "latencyRaw", "latencyNs"] {
            assert!(none.get(field).is_none(), "invalid {field} reported: {none}");
        }
        let some = rec("congestion_thresh_crossed");
        assert_eq!(some["egressPort"], "swp2", "{some}");
        assert!(some.get("egressLag").is_none(), "{some}");
        assert_eq!(some["trafficClass"], 6, "{some}");
        assert!(some.get("tcOccupancyRaw").is_none(), "{some}");
        assert_eq!(some["latencyRaw"], 12, "{some}");
        assert_eq!(some["latencyNs"], 12 << 6, "{some}");
        let occ = rec("latency_thresh_crossed");
        assert_eq!(occ["egressPort"], "swp3", "{occ}");
        assert_eq!(occ["egressIfIndex"], ports["swp3"], "{occ}");
        assert!(occ.get("trafficClass").is_none(), "{occ}");
        assert_eq!(occ["tcOccupancyRaw"], 4096, "{occ}");
        assert_eq!(occ["tcOccupancyBytes"], 4096u64 << 13, "{occ}");
        assert!(occ.get("latencyRaw").is_none(), "{occ}");
    }

    // 4. Both sources: twenty trap records and not one kernel drop for the
    // SDK's frees; with the skb source alone the same frees are drops.
    let stats = final_stats(&dir, "all");
    let recs = records(&dir, "all");
    assert_eq!(recs.len(), 20, "{stats}");
    assert!(recs.iter().all(|r| r["source"] == "devlink"), "a kernel-drop record of an SDK copy");
    assert_eq!(counter(&stats, "sdk_frees"), 20, "{stats}");
    assert_eq!(counter(&stats, "seen"), 20 + counter(&stats, "filtered"), "{stats}");
    let stats = final_stats(&dir, "skbonly");
    let recs = records(&dir, "skbonly");
    assert_eq!(recs.len(), 20, "the control: 20 frees on swp1 are kernel drops; {stats}");
    // Freed by the host with no ingress recorded (skb_iif 0), such a drop reads as leaving by swp1.
    assert!(recs.iter().all(|r| r["source"] == "skb" && r["egressPort"] == "swp1"), "{recs:?}");
    assert_eq!(counter(&stats, "sdk_frees"), 0, "{stats}");

    // 5. -u: exact counts per {trap, flow} and, where the kernel says it, egress port.
    let stats = final_stats(&dir, "agg");
    let recs = records(&dir, "agg");
    assert_eq!(counter(&stats, "aggregated"), 115, "{stats}");
    assert_eq!(counter(&stats, "overflow"), 0, "{stats}");
    let mut counts: BTreeMap<(String, u64, String), u64> = BTreeMap::new();
    for r in &recs {
        for field in ["trafficClass", "tcOccupancyRaw", "tcOccupancyBytes", "latencyRaw", "latencyNs"] {
            assert!(r.get(field).is_none(), "a per-packet measurement in an aggregate: {r}");
        }
        let key = (
            r["trapName"].as_str().unwrap().to_string(),
            r["packet"]["TRANSPORT"]["srcPort"].as_u64().unwrap(),
            r.get("egressPort").and_then(Value::as_str).unwrap_or("-").to_string(),
        );
        *counts.entry(key).or_default() += r["count"].as_u64().expect("count");
    }
    let k = |t: &str, sport: u64, out: &str| (t.to_string(), sport, out.to_string());
    let expected: BTreeMap<_, u64> = if wjh {
        [
            (k("tail_drop", 1234, "swp2"), 50),
            (k("tail_drop", 1234, "swp3"), 20),
            (k("tail_drop", 1235, "swp2"), 10),
            (k("blackhole_route", 1234, "-"), 35),
        ]
        .into()
    } else {
        [
            (k("tail_drop", 1234, "-"), 70),
            (k("tail_drop", 1235, "-"), 10),
            (k("blackhole_route", 1234, "-"), 35),
        ]
        .into()
    };
    assert_eq!(counts, expected, "{version}: -u counts; {stats}");

    // 6. What a driver could get wrong: one record each, nothing invented.
    let stats = final_stats(&dir, "bad");
    let recs = records(&dir, "bad");
    assert_eq!(recs.len(), 9, "{version}: one record per bad report; {stats}");
    assert_eq!(counter(&stats, "decode_errors"), 0, "{stats}");
    let (_, unknown) = taxonomy::classify_sdk("not_a_known_sdk_trap");
    let r = &recs[0];
    assert_eq!(r["trapName"], "not_a_known_sdk_trap", "{r}");
    assert_eq!(
        (&r["trapType"], &r["message"], &r["severity"]),
        (&"drop".into(), &"fwdDrop".into(), &"Error".into())
    );
    assert_eq!(r["dropReason"], "not_a_known_sdk_trap", "{r}");
    assert_eq!(r["description"], unknown.description, "{r}");
    assert_eq!(r["dropType"], "l3", "{r}");
    let r = &recs[1];
    assert_eq!(r["trapName"], "", "an empty name stays empty: {r}");
    assert_eq!(r["dropReason"], "N/A", "{r}");
    assert_eq!(r["dropType"], "l2", "{r}");
    // Names and groups are kept to 47 and 31 bytes, as the ABI says.
    let r = &recs[2];
    assert_eq!(
        r["trapName"],
        &"abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefgh"[..47],
        "{r}"
    );
    assert_eq!(r["description"], unknown.description, "{r}");
    let r = &recs[3];
    assert_eq!(r["trapName"], "blackhole_neigh", "{r}");
    assert_eq!(r["trapGroup"], "", "a NULL group is no group: {r}");
    assert_eq!(r["dropType"], "l3", "the table knows blackhole_neigh's group: {r}");
    let r = &recs[4];
    assert_eq!((&r["trapGroup"], &r["dropType"]), (&"no_such_group".into(), &"no_such_group".into()), "{r}");
    let r = &recs[5];
    assert_eq!(r["trapGroup"], &"group_of_forty_characters_abcdefghijklm"[..31], "{r}");
    let r = &recs[6];
    assert_eq!(r["trapName"], "ingress_flow_action_drop", "{r}");
    for field in ["flowActionCookie", "flowActionCookieLength", "aclRuleValue", "aclDirection"] {
        assert!(r.get(field).is_none(), "a cookie of no bytes is no cookie: {r}");
    }
    let r = &recs[7];
    let first32: String = (0..32).map(|b| format!("{b:02x}")).collect();
    assert_eq!(r["flowActionCookie"], first32.as_str(), "{r}");
    assert_eq!(r["flowActionCookieLength"], 64, "{r}");
    assert!(
        r.get("aclRuleValue").is_none() && r.get("aclDirection").is_none(),
        "not an SDK rule cookie: {r}"
    );
    let r = &recs[8];
    for field in EXTENDED {
        assert!(r.get(field).is_none(), "no egress device, nothing valid: {r}");
    }
    for r in &recs {
        check_packet(r, 1234);
        assert_eq!(r["ingressPort"], "swp1", "{r}");
    }
}

#[test]
fn sdk_traps_on_linux_5_10() {
    check_kernel("5.10");
}

#[test]
fn sdk_traps_on_linux_6_1() {
    check_kernel("6.1");
}

#[test]
fn sdk_traps_on_linux_6_1_with_sonic_metadata() {
    check_kernel("6.1-wjh");
}

#[test]
fn sdk_traps_on_linux_6_12() {
    check_kernel("6.12");
}

#[test]
fn sdk_traps_on_linux_6_12_with_sonic_metadata() {
    check_kernel("6.12-wjh");
}
