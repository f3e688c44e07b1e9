//! Aggregation (-u) on real kernel drops: per-flow packet and byte counts
//! are exact, and packets seen = sum of counts emitted + packets counted lost,
//! across flushes, a table smaller than the number of flows, shutdown in the
//! middle of traffic, and two CPUs counting into the same key. Needs root.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{counter, Hosts, TempConfig, Trapstream};
use serde_json::Value;

const PAYLOAD: usize = 18;
/// Ethernet + IPv4 + UDP + payload: the bytes a flow record counts per packet.
const FRAME: u64 = 14 + 20 + 8 + PAYLOAD as u64;

/// A config file that keeps only this test's drops: its namespace, NO_SOCKET.
fn config_for(hosts: &Hosts, extra: &str) -> TempConfig {
    let ino = Hosts::netns_ino(&hosts.ns_b);
    TempConfig::new(&format!(
        "stdout = true\nsource = \"skb\"\n{extra}\n[filters]\ninclude_netns = [{ino}]\ninclude_reasons = [\"NO_SOCKET\"]\n"
    ))
}

struct Flows {
    /// dst port → (packets, bytes)
    per_port: BTreeMap<u64, (u64, u64)>,
    records: usize,
    overflow_records: usize,
}

fn flows_in(stdout: &str, sport: u16) -> Flows {
    let mut flows = Flows { per_port: BTreeMap::new(), records: 0, overflow_records: 0 };
    for line in stdout.lines() {
        let r: Value = serde_json::from_str(line).expect("JSON line");
        if r.get("measurement").is_some() {
            continue; // trapstream's own counters
        }
        assert_eq!(r["skbDropReason"], "NO_SOCKET", "the filters let only NO_SOCKET through: {r}");
        let t = &r["packet"]["TRANSPORT"];
        assert_eq!(t["srcPort"], sport, "{r}");
        let count = r["count"].as_u64().expect("every -u record has a count");
        let bytes = r["bytes"].as_u64().expect("and bytes");
        assert_eq!(bytes, count * FRAME, "bytes are frame bytes: {r}");
        let first: f64 = r["firstSeen"].as_str().unwrap().parse().unwrap();
        let last: f64 = r["lastSeen"].as_str().unwrap().parse().unwrap();
        assert!(first <= last, "{r}");
        let e = flows.per_port.entry(t["dstPort"].as_u64().unwrap()).or_default();
        e.0 += count;
        e.1 += bytes;
        flows.records += 1;
        if r["aggregationOverflow"] == true {
            assert_eq!(count, 1, "an overflow packet goes alone: {r}");
            flows.overflow_records += 1;
        }
    }
    flows
}

/// What the kernel saw for this test, from the final counters: every packet
/// that passed the filters was counted into a table, sent alone, or lost.
fn assert_conservation(final_stats: &str, emitted: u64) {
    let seen = counter(final_stats, "seen");
    let filtered = counter(final_stats, "filtered");
    let ring_lost = counter(final_stats, "ring_lost");
    let aggregated = counter(final_stats, "aggregated");
    let overflow = counter(final_stats, "overflow");
    assert_eq!(seen - filtered, aggregated + overflow + ring_lost, "{final_stats}");
    assert_eq!(
        counter(final_stats, "flow_packets"),
        aggregated,
        "every counted packet was drained: {final_stats}"
    );
    let lost = ring_lost
        + counter(final_stats, "flow_packets_lost")
        + counter(final_stats, "channel_lost")
        + counter(final_stats, "send_lost");
    assert_eq!(lost, 0, "nothing lost at this rate: {final_stats}");
    assert_eq!(emitted, seen - filtered - lost, "sum of counts emitted = packets seen - lost: {final_stats}");
}

#[test]
fn counts_are_exact_across_flushes_and_a_table_smaller_than_the_flows() {
    let hosts = Hosts::new();
    // 6 flows into tables of 4 keys: the capacity path runs, and flushes
    // every 0.2 s fall inside the traffic.
    let cfg = config_for(&hosts, "unique_interval = 0.2\nlru_size = 4");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().unwrap().port();
    let ports: Vec<u16> = (41000..41006).collect();
    let mut sent = 0;
    for _ in 0..5 {
        sent += hosts.udp_flood(&sock, &hosts.v4_b, &ports, 8, PAYLOAD, None);
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);

    let flows = flows_in(&stdout, sport);
    let expected: BTreeMap<u64, (u64, u64)> =
        ports.iter().map(|&p| (u64::from(p), (40, 40 * FRAME))).collect();
    assert_eq!(flows.per_port, expected, "per-flow packets and bytes, exactly");
    assert_eq!(sent, 240);
    assert!(flows.overflow_records > 0, "6 flows in 4-key tables must overflow: {final_stats}");
    assert!(counter(&final_stats, "flushes") >= 3, "flushes inside the run: {final_stats}");
    assert!(
        counter(&final_stats, "early_flushes") >= 1,
        "a nearly full table asks for a flush: {final_stats}"
    );
    assert_conservation(&final_stats, flows.per_port.values().map(|v| v.0).sum());
}

#[test]
fn shutdown_in_the_middle_of_traffic_flushes_everything_counted() {
    let hosts = Hosts::new();
    let cfg = config_for(&hosts, "unique_interval = 30\nlru_size = 64");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().unwrap().port();
    let ports: Vec<u16> = (42000..42010).collect();
    let result = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut sent = 0;
            for _ in 0..40 {
                sent += hosts.udp_flood(&sock, &hosts.v4_b, &ports, 5, PAYLOAD, None);
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        });
        std::thread::sleep(Duration::from_millis(150));
        // The interval is 30 s: everything emitted comes from the shutdown flush.
        let stopped = ts.stop();
        (stopped, sender.join().unwrap())
    });
    let ((status, stdout, final_stats), sent) = result;
    assert_eq!(status, 0);
    let flows = flows_in(&stdout, sport);
    let emitted: u64 = flows.per_port.values().map(|v| v.0).sum();
    assert!(emitted > 0 && emitted < sent, "stopped mid-traffic: {emitted} of {sent}");
    assert_eq!(counter(&final_stats, "early_flushes"), 0);
    assert_conservation(&final_stats, emitted);
}

#[test]
fn two_cpus_counting_into_one_key_lose_nothing() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        panic!("this test needs two CPUs");
    }
    let hosts = Hosts::new();
    let cfg = config_for(&hosts, "unique_interval = 0.3\nlru_size = 16");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().unwrap().port();
    const PER_CPU: u32 = 3000;
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let (hosts, sock) = (&hosts, &sock);
            s.spawn(move || hosts.udp_flood(sock, &hosts.v4_b, &[43000], PER_CPU, PAYLOAD, Some(cpu)));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let flows = flows_in(&stdout, sport);
    let total = u64::from(2 * PER_CPU);
    assert_eq!(flows.per_port.get(&43000), Some(&(total, total * FRAME)), "{final_stats}");
    assert_eq!(flows.overflow_records, 0);
    assert_conservation(&final_stats, total);
}

/// A packet that finds no room in the table and then no room in the ring
/// buffer is lost once: counted in ring_lost, not also in overflow. A
/// four-key table and a one-page ring under a flood of many flows make both
/// happen; the identity seen - filtered = aggregated + overflow + ring_lost
/// + rate_limited (and the rest of the ledger, checked by stop()) holds.
#[test]
fn overflow_that_finds_the_ring_full_is_counted_once() {
    let hosts = Hosts::new();
    let cfg = config_for(&hosts, "unique_interval = 30\nlru_size = 4\nring_size = 4096");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let ports: Vec<u16> = (0..20).map(|i| 39500 + i).collect();
    let sent = hosts.udp_flood(&sock, &hosts.v4_b, &ports, 300, PAYLOAD, None);
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let c = |name: &str| counter(&final_stats, name);
    assert!(c("ring_lost") > 0 && c("overflow") > 0, "both must happen: {final_stats}");
    assert_eq!(c("seen") - c("filtered"), sent, "{final_stats}");
    assert_eq!(
        c("seen") - c("filtered"),
        c("aggregated") + c("overflow") + c("ring_lost") + c("rate_limited"),
        "{final_stats}"
    );
    let flows = flows_in(&stdout, sock.local_addr().expect("addr").port());
    assert_eq!(
        flows.overflow_records as u64,
        c("overflow"),
        "every overflow counted was emitted: {final_stats}"
    );
}
