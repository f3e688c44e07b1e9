//! Aggregation (-u) on real kernel drops: per-flow packet and byte counts
//! are exact, and packets seen = sum of counts emitted + packets counted lost,
//! across flushes, a table smaller than the number of flows, shutdown in the
//! middle of traffic, and two CPUs counting into the same key; each with and
//! without --exemplars, whose records are part of those sums. Needs root.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::Duration;

use common::{counter, Collector, Hosts, TempConfig, Trapstream};
use serde_json::Value;

const PAYLOAD: usize = 18;
/// Ethernet + IPv4 + UDP + payload: the bytes a flow record counts per packet.
const FRAME: u64 = 14 + 20 + 8 + PAYLOAD as u64;
/// The same over IPv6.
const FRAME6: u64 = FRAME + 20;

/// A config file that keeps only this test's drops: its namespace, NO_SOCKET.
fn config_for(hosts: &Hosts, extra: &str) -> TempConfig {
    let ino = Hosts::netns_ino(&hosts.ns_b);
    TempConfig::new(&format!(
        "stdout = true\nsource = \"skb\"\n{extra}\n[filters]\ninclude_netns = [{ino}]\ninclude_reasons = [\"NO_SOCKET\"]\n"
    ))
}

/// What one flow (destination port) got, over every record of it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Flow {
    packets: u64,
    bytes: u64,
    exemplars: u64,
    /// The latest exemplar and the earliest packet in any other record, in ns.
    last_exemplar_ns: u128,
    first_other_ns: Option<u128>,
}

struct Flows {
    per_port: BTreeMap<u64, Flow>,
    records: usize,
    overflow_records: usize,
    exemplar_records: usize,
}

impl Flows {
    /// dst port → (packets, bytes), summed over every kind of record.
    fn sums(&self) -> BTreeMap<u64, (u64, u64)> {
        self.per_port.iter().map(|(&p, f)| (p, (f.packets, f.bytes))).collect()
    }

    fn emitted(&self) -> u64 {
        self.per_port.values().map(|f| f.packets).sum()
    }

    /// Each flow's exemplars came before every packet counted any other way.
    fn assert_exemplars_first(&self) {
        for (port, f) in &self.per_port {
            if let (true, Some(first)) = (f.exemplars > 0, f.first_other_ns) {
                assert!(
                    f.last_exemplar_ns <= first,
                    "port {port}: an exemplar after a counted packet: {f:?}"
                );
            }
        }
    }
}

/// "1611931294.010481600" → ns, exactly (an f64 would round to µs).
fn ns(text: &Value) -> u128 {
    let text = text.as_str().expect("a time string");
    let (s, frac) = text.split_once('.').expect("seconds.nanoseconds");
    s.parse::<u128>().unwrap() * 1_000_000_000 + frac.parse::<u128>().unwrap()
}

fn flows_in(stdout: &str, sport: u16) -> Flows {
    let values = stdout.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON line"));
    flows_of(values, sport)
}

fn flows_of(records: impl Iterator<Item = Value>, sport: u16) -> Flows {
    let mut flows = Flows { per_port: BTreeMap::new(), records: 0, overflow_records: 0, exemplar_records: 0 };
    for r in records {
        if r.get("measurement").is_some() {
            continue; // trapstream's own counters
        }
        assert_eq!(r["skbDropReason"], "NO_SOCKET", "the filters let only NO_SOCKET through: {r}");
        let t = &r["packet"]["TRANSPORT"];
        assert_eq!(t["srcPort"], sport, "{r}");
        let count = r["count"].as_u64().expect("every -u record has a count");
        let bytes = r["bytes"].as_u64().expect("and bytes");
        let frame = if r["packet"]["IP"]["version"] == 6 { FRAME6 } else { FRAME };
        assert_eq!(bytes, count * frame, "bytes are frame bytes: {r}");
        let (first, last) = (ns(&r["firstSeen"]), ns(&r["lastSeen"]));
        assert!(first <= last, "{r}");
        let kind = r["aggregation"].as_str().expect("every -u record says its kind");
        assert_eq!(r["aggregationOverflow"] == true, kind == "overflow", "{r}");
        let f = flows.per_port.entry(t["dstPort"].as_u64().unwrap()).or_default();
        f.packets += count;
        f.bytes += bytes;
        flows.records += 1;
        match kind {
            "flow" => {}
            "overflow" => {
                assert_eq!(count, 1, "an overflow packet goes alone: {r}");
                flows.overflow_records += 1;
            }
            "exemplar" => {
                assert_eq!(count, 1, "an exemplar goes alone: {r}");
                assert_eq!(first, ns(&r["timestamp"]), "an exemplar has its packet's own time: {r}");
                flows.exemplar_records += 1;
                f.exemplars += 1;
                f.last_exemplar_ns = f.last_exemplar_ns.max(last);
                continue;
            }
            other => panic!("unknown record kind {other}: {r}"),
        }
        f.first_other_ns = Some(f.first_other_ns.map_or(first, |n| n.min(first)));
    }
    flows
}

/// What the kernel saw for this test, from the final counters: every packet
/// that passed the filters was counted into a table, sent alone (table full
/// or an exemplar), or lost.
fn assert_conservation(final_stats: &str, flows: &Flows) {
    let seen = counter(final_stats, "seen");
    let filtered = counter(final_stats, "filtered");
    let ring_lost = counter(final_stats, "ring_lost");
    let aggregated = counter(final_stats, "aggregated");
    let overflow = counter(final_stats, "overflow");
    let exemplars = counter(final_stats, "exemplars");
    assert_eq!(seen - filtered, aggregated + overflow + exemplars + ring_lost, "{final_stats}");
    assert_eq!(
        counter(final_stats, "flow_packets"),
        aggregated,
        "every counted packet was drained: {final_stats}"
    );
    assert_eq!(flows.exemplar_records as u64, exemplars, "every exemplar counted was emitted: {final_stats}");
    let lost = ring_lost
        + counter(final_stats, "flow_packets_lost")
        + counter(final_stats, "channel_lost")
        + counter(final_stats, "send_lost");
    assert_eq!(lost, 0, "nothing lost at this rate: {final_stats}");
    assert_eq!(
        flows.emitted(),
        seen - filtered - lost,
        "sum of counts emitted = packets seen - lost: {final_stats}"
    );
}

/// `exemplars = N` in the config file, or nothing.
fn exemplars_line(exemplars: Option<u32>) -> String {
    exemplars.map_or(String::new(), |n| format!("\nexemplars = {n}"))
}

#[test]
fn counts_are_exact_across_flushes_and_a_table_smaller_than_the_flows() {
    flushes_and_a_small_table(None);
}

/// The same with the first 3 packets of each flow sent at once: 3 exemplars
/// per flow, before any of its counted packets, and the sums still exact.
#[test]
fn exemplars_keep_counts_exact_across_flushes_and_a_table_smaller_than_the_flows() {
    flushes_and_a_small_table(Some(3));
}

fn flushes_and_a_small_table(exemplars: Option<u32>) {
    let hosts = Hosts::new();
    // 6 flows into tables of 4 keys: the capacity path runs, and flushes
    // every 0.2 s fall inside the traffic.
    let cfg =
        config_for(&hosts, &format!("unique_interval = 0.2\nlru_size = 4{}", exemplars_line(exemplars)));
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
    assert_eq!(flows.sums(), expected, "per-flow packets and bytes, exactly");
    assert_eq!(sent, 240);
    // One sender: no two CPUs race on a new key, so exactly N each, and first.
    let n = u64::from(exemplars.unwrap_or(0));
    assert!(
        flows.per_port.values().all(|f| f.exemplars == n),
        "{n} exemplars per flow: {:?}",
        flows.per_port
    );
    flows.assert_exemplars_first();
    assert!(flows.overflow_records > 0, "6 flows in 4-key tables must overflow: {final_stats}");
    assert!(counter(&final_stats, "flushes") >= 3, "flushes inside the run: {final_stats}");
    assert!(
        counter(&final_stats, "early_flushes") >= 1,
        "a nearly full table asks for a flush: {final_stats}"
    );
    assert_conservation(&final_stats, &flows);
}

#[test]
fn shutdown_in_the_middle_of_traffic_flushes_everything_counted() {
    shutdown_mid_traffic(None);
}

#[test]
fn shutdown_in_the_middle_of_traffic_with_exemplars_flushes_everything_counted() {
    shutdown_mid_traffic(Some(2));
}

fn shutdown_mid_traffic(exemplars: Option<u32>) {
    let hosts = Hosts::new();
    let cfg =
        config_for(&hosts, &format!("unique_interval = 30\nlru_size = 64{}", exemplars_line(exemplars)));
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
    let emitted = flows.emitted();
    assert!(emitted > 0 && emitted < sent, "stopped mid-traffic: {emitted} of {sent}");
    assert_eq!(counter(&final_stats, "early_flushes"), 0);
    // 150 ms in, every port had its first 5 packets: its exemplars are out.
    let n = u64::from(exemplars.unwrap_or(0));
    assert_eq!(flows.per_port.len(), ports.len(), "{:?}", flows.per_port);
    assert!(
        flows.per_port.values().all(|f| f.exemplars == n),
        "{n} exemplars per flow: {:?}",
        flows.per_port
    );
    flows.assert_exemplars_first();
    assert_conservation(&final_stats, &flows);
}

#[test]
fn two_cpus_counting_into_one_key_lose_nothing() {
    two_cpus_one_key(None);
}

/// Two CPUs starting one new flow at once: each may send one exemplar more
/// than asked (README), and the sum is exact all the same.
#[test]
fn two_cpus_starting_one_flow_with_exemplars_lose_nothing() {
    two_cpus_one_key(Some(5));
}

fn two_cpus_one_key(exemplars: Option<u32>) {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        panic!("this test needs two CPUs");
    }
    let hosts = Hosts::new();
    let cfg =
        config_for(&hosts, &format!("unique_interval = 0.3\nlru_size = 16{}", exemplars_line(exemplars)));
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
    assert_eq!(flows.sums().get(&43000), Some(&(total, total * FRAME)), "{final_stats}");
    assert_eq!(flows.overflow_records, 0);
    let n = exemplars.unwrap_or(0) as usize;
    let extra = usize::from(n > 0);
    assert!(
        (n..=n + extra).contains(&flows.exemplar_records),
        "{n} exemplars, one more if the CPUs raced: {}",
        flows.exemplar_records
    );
    assert_conservation(&final_stats, &flows);
}

/// IPv4 flows are counted in the per-CPU twin with compact keys, IPv6 flows
/// in the one with whole keys, and the drain widens the compact keys to find
/// their flows: both families from two CPUs at once, across table flips,
/// come out exact (a compact key widened wrong would leave its packets
/// without a flow entry, and the sums short).
#[test]
fn ipv4_and_ipv6_flows_from_two_cpus_are_counted_exactly() {
    let hosts = Hosts::new();
    // One dual-stack socket: both families share the source port flows_in checks.
    let sock = Hosts::in_netns(&hosts.ns_a, || UdpSocket::bind("[::]:0").expect("bind in A"));
    let sport = sock.local_addr().unwrap().port();
    let v4 = format!("::ffff:{}", hosts.v4_b);
    // Neighbours resolved before the count starts, so that none of the
    // counted datagrams waits in (or falls out of) a resolution queue.
    for dst in [&v4, &hosts.v6_b] {
        hosts.udp_flood(&sock, dst, &[44000], 1, PAYLOAD, None);
    }
    std::thread::sleep(Duration::from_millis(200));
    let cfg = config_for(&hosts, "unique_interval = 0.2\nlru_size = 64");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    const ROUNDS: u32 = 10;
    const PER_ROUND: u32 = 200;
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let (hosts, sock, v4) = (&hosts, &sock, &v4);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    hosts.udp_flood(sock, v4, &[44004], PER_ROUND, PAYLOAD, Some(cpu));
                    hosts.udp_flood(sock, &hosts.v6_b, &[44006], PER_ROUND, PAYLOAD, Some(cpu));
                    std::thread::sleep(Duration::from_millis(30));
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let flows = flows_in(&stdout, sport);
    let total = u64::from(2 * ROUNDS * PER_ROUND);
    let expected = BTreeMap::from([(44004, (total, total * FRAME)), (44006, (total, total * FRAME6))]);
    assert_eq!(flows.sums(), expected, "{final_stats}");
    assert_eq!(flows.overflow_records, 0);
    assert!(counter(&final_stats, "flushes") >= 2, "table flips inside the run: {final_stats}");
    assert_conservation(&final_stats, &flows);
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

/// An exemplar that finds the ring buffer full is not lost: it is counted
/// into its flow instead. A one-page ring (ten events) and a burst of many
/// new flows make that happen; every flow's count is still exact and
/// ring_lost stays 0 (the table has room: no overflow packets).
#[test]
fn an_exemplar_that_finds_the_ring_full_is_counted_in_its_flow() {
    let hosts = Hosts::new();
    let cfg = config_for(&hosts, "unique_interval = 30\nlru_size = 1024\nring_size = 4096\nexemplars = 4");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let ports: Vec<u16> = (0..400).map(|i| 44000 + i).collect();
    let sent = hosts.udp_flood(&sock, &hosts.v4_b, &ports, 4, PAYLOAD, None);
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let c = |name: &str| counter(&final_stats, name);
    let flows = flows_in(&stdout, sock.local_addr().expect("addr").port());
    let expected: BTreeMap<u64, (u64, u64)> = ports.iter().map(|&p| (u64::from(p), (4, 4 * FRAME))).collect();
    assert_eq!(flows.sums(), expected, "per-flow packets and bytes, exactly: {final_stats}");
    assert_eq!(c("ring_lost"), 0, "{final_stats}");
    assert_eq!(c("overflow"), 0, "{final_stats}");
    assert!(
        c("exemplars") < sent && c("aggregated") > 0,
        "the ring must have been full for some exemplars: {final_stats}"
    );
    flows.assert_exemplars_first();
    assert_conservation(&final_stats, &flows);
}

/// The point of exemplars: with -u 30, a new flow is seen within a second or
/// two, not at the end of the interval. Its first 2 packets arrive at the
/// collector while the interval runs; the third is counted and comes with
/// the shutdown drain.
#[test]
fn a_new_flow_is_seen_at_once_under_a_long_interval() {
    let hosts = Hosts::new();
    let collector = Collector::bind("127.0.0.1:0");
    let ino = Hosts::netns_ino(&hosts.ns_b);
    let cfg = TempConfig::new(&format!(
        "source = \"skb\"\nunique_interval = 30\nexemplars = 2\ninterval = 0.1\n\
         [filters]\ninclude_netns = [{ino}]\ninclude_reasons = [\"NO_SOCKET\"]\n"
    ));
    let port = collector.port().to_string();
    let ts = Trapstream::start(&["--config", cfg.arg(), "127.0.0.1", &port]);
    let sock = hosts.socket_in_a();
    let sport = sock.local_addr().expect("addr").port();
    let ports = [45001u16, 45002];
    let started = std::time::Instant::now();
    hosts.udp_flood(&sock, &hosts.v4_b, &ports, 3, PAYLOAD, None);
    let parse = |datagrams: &[Vec<u8>]| -> Vec<Value> {
        datagrams
            .iter()
            .flat_map(|d| serde_json::from_slice::<Vec<Value>>(d).expect("a JSON array per datagram"))
            .filter(|r| r.get("measurement").is_none())
            .collect()
    };
    let early = collector.receive_until(Duration::from_secs(2), |got| parse(got).len() >= 4);
    let waited = started.elapsed();
    let early = parse(&early);
    assert_eq!(early.len(), 4, "2 exemplars of each new flow within 2 s (waited {waited:?}): {early:?}");
    assert!(early.iter().all(|r| r["aggregation"] == "exemplar"), "{early:?}");
    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let mut all = Vec::new();
    collector.drain(&mut all);
    let flows = flows_of(early.into_iter().chain(parse(&all)), sport);
    let expected: BTreeMap<u64, (u64, u64)> = ports.iter().map(|&p| (u64::from(p), (3, 3 * FRAME))).collect();
    assert_eq!(flows.sums(), expected, "{final_stats}");
    assert!(flows.per_port.values().all(|f| f.exemplars == 2), "{:?}", flows.per_port);
    assert_eq!(flows.records, 6, "4 exemplars, then one flow record each: {final_stats}");
    flows.assert_exemplars_first();
    assert_conservation(&final_stats, &flows);
}

/// An exemplar the rate limit would suppress is counted into its flow, not
/// suppressed: with --rate-limit 10 and 100 new flows at once, about ten go
/// out as exemplars, the rest are counted, nothing is rate_limited, and every
/// flow's count is exact.
#[test]
fn an_exemplar_over_the_rate_limit_is_counted_in_its_flow() {
    let hosts = Hosts::new();
    let cfg = config_for(&hosts, "unique_interval = 30\nlru_size = 1024\nexemplars = 2\nrate_limit = 10");
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let ports: Vec<u16> = (0..100).map(|i| 46000 + i).collect();
    let started = std::time::Instant::now();
    hosts.udp_flood(&sock, &hosts.v4_b, &ports, 2, PAYLOAD, None);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    let c = |name: &str| counter(&final_stats, name);
    let flows = flows_in(&stdout, sock.local_addr().expect("addr").port());
    let expected: BTreeMap<u64, (u64, u64)> = ports.iter().map(|&p| (u64::from(p), (2, 2 * FRAME))).collect();
    assert_eq!(flows.sums(), expected, "per-flow packets and bytes, exactly: {final_stats}");
    assert_eq!(c("rate_limited"), 0, "an exemplar is never suppressed, only counted: {final_stats}");
    // A burst of 10, then 10 a second for as long as the flood took.
    let allowed = 10 + 10 * took.as_secs() + 1;
    assert!(
        (1..=allowed).contains(&c("exemplars")) && c("aggregated") > 0,
        "the rate limit must have held exemplars back ({took:?}): {final_stats}"
    );
    flows.assert_exemplars_first();
    assert_conservation(&final_stats, &flows);
}
