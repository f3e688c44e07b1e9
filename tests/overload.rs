//! Overload and faults on real drops: every stage either delivers an event
//! or counts it as lost, exactly, when the ring buffer overflows, when the
//! queue to the sender overflows, when the UDP collector is absent, and when
//! trapstream is stopped in the middle of a flood. Needs root.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{counter, Collector, Hosts, TempConfig, Trapstream};
use serde_json::Value;

/// trapstream on this test's drops only, with `options`, sending JSON to
/// 127.0.0.1:`port`; the config file must outlive it.
fn start_to_udp(hosts: &Hosts, port: u16, options: &[&str]) -> (Trapstream, TempConfig) {
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let port = port.to_string();
    let mut args = vec!["--source", "skb", "-c", cfg.arg()];
    args.extend_from_slice(options);
    args.extend_from_slice(&["127.0.0.1", &port]);
    (Trapstream::start(&args), cfg)
}

/// Records (not trapstream's own counters) in JSON datagrams.
fn records(datagrams: &[Vec<u8>]) -> u64 {
    datagrams
        .iter()
        .flat_map(|d| {
            serde_json::from_slice::<Value>(d).expect("JSON datagram").as_array().expect("array").clone()
        })
        .filter(|r| r.get("measurement").is_none())
        .count() as u64
}

/// Per stage: the kernel saw it and filtered it, lost it in the ring, or it
/// was read; what was read was sent, lost at the queue, or lost sending.
fn assert_accounted(stats: &str, generated: u64, delivered: u64) {
    let seen = counter(stats, "seen") - counter(stats, "filtered");
    assert_eq!(seen, generated, "the program saw every drop of the flood: {stats}");
    let read = counter(stats, "read");
    assert_eq!(
        seen,
        read + counter(stats, "decode_errors") + counter(stats, "ring_lost") + counter(stats, "rate_limited"),
        "{stats}"
    );
    assert_eq!(
        read,
        counter(stats, "sent")
            + counter(stats, "channel_lost")
            + counter(stats, "send_lost")
            + counter(stats, "unacked_lost")
            + counter(stats, "queued"),
        "{stats}"
    );
    assert_eq!(
        delivered,
        counter(stats, "sent"),
        "the collector got exactly what was counted as sent: {stats}"
    );
}

/// 2000 drops to each port, then SIGTERM: checks the accounting of every
/// stage against what the collector received and returns the final counters.
fn flood_then_stop(hosts: &Hosts, ts: Trapstream, collector: &Collector, ports: &[u16]) -> String {
    let sock = hosts.socket_in_a();
    let generated = hosts.udp_flood(&sock, &hosts.v4_b, ports, 2000, 16, None);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, stats) = ts.stop();
    let mut datagrams = Vec::new();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0);
    assert_accounted(&stats, generated, records(&datagrams));
    stats
}

#[test]
fn ring_buffer_overflow_is_counted_exactly() {
    let hosts = Hosts::new();
    let collector = Collector::bind("127.0.0.1:0");
    // One page holds a dozen events; the poll thread sleeps 5 ms when idle.
    let options = ["--ring-size", "4096", "-b", "20", "--max-datagram", "65000", "-i", "0.05"];
    let (ts, _cfg) = start_to_udp(&hosts, collector.port(), &options);
    let stats = flood_then_stop(&hosts, ts, &collector, &[44000, 44001, 44002]);
    assert!(counter(&stats, "ring_lost") > 0, "a 4 KiB ring must overflow under this flood: {stats}");
}

/// A queue of one record in front of a sender making a datagram per record:
/// the poll thread waits for the sender while the ring buffer holds the
/// burst, so a flood the ring can hold is delivered whole.
#[test]
fn a_burst_beyond_the_queue_waits_in_the_ring() {
    let hosts = Hosts::new();
    let collector = Collector::bind("127.0.0.1:0");
    let (ts, _cfg) = start_to_udp(&hosts, collector.port(), &["--channel-depth", "1", "-b", "1"]);
    let stats = flood_then_stop(&hosts, ts, &collector, &[44100, 44101]);
    for lost in ["ring_lost", "channel_lost", "send_lost"] {
        assert_eq!(counter(&stats, lost), 0, "4000 drops fit the 4 MiB ring: {stats}");
    }
}

/// A sender stuck on a pipe nobody reads: after one bounded wait the poll
/// thread drops what the queue cannot take, counts it, and goes on reading
/// the ring; once the pipe is read, what was queued is written.
#[test]
fn a_stuck_sender_costs_one_wait_then_records_are_counted_lost() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg(), "--channel-depth", "1"]);
    // The pipe (64 KiB) takes about 75 records; nothing reads it until stop().
    let sock = hosts.socket_in_a();
    let generated = hosts.udp_flood(&sock, &hosts.v4_b, &[44200, 44201], 2000, 16, None);
    std::thread::sleep(Duration::from_millis(500));
    let (status, stdout, stats) = ts.stop();
    assert_eq!(status, 0, "{stats}");
    assert_eq!(counter(&stats, "seen") - counter(&stats, "filtered"), generated, "{stats}");
    assert!(counter(&stats, "channel_lost") > 0, "a sender stuck for 500 ms must shed: {stats}");
    let lines = stdout.lines().filter(|l| l.contains("\"NO_SOCKET\"")).count() as u64;
    assert_eq!(lines, counter(&stats, "sent"), "what was written is what was counted sent: {stats}");
}

#[test]
fn udp_collector_absent_then_back() {
    let hosts = Hosts::new();
    // A port with nothing behind it: the kernel answers each datagram with
    // ICMP port unreachable, which the next send reports as ECONNREFUSED.
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ts, _cfg) = start_to_udp(&hosts, port, &["-b", "1", "-i", "0.01"]);
    let sock = hosts.socket_in_a();
    let mut generated = 0;
    for _ in 0..10 {
        generated += hosts.udp_flood(&sock, &hosts.v4_b, &[44200], 1, 16, None);
        std::thread::sleep(Duration::from_millis(30));
    }
    let collector = Collector::bind(&format!("127.0.0.1:{port}"));
    std::thread::sleep(Duration::from_millis(100));
    let mut back = 0;
    for _ in 0..10 {
        back += hosts.udp_flood(&sock, &hosts.v4_b, &[44201], 1, 16, None);
        std::thread::sleep(Duration::from_millis(30));
    }
    generated += back;
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, stats) = ts.stop();
    let mut datagrams = Vec::new();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0, "a missing collector is never fatal");
    let refused = counter(&stats, "refused");
    assert!(counter(&stats, "send_errors") > 0 && refused > 0, "ICMP unreachable is counted: {stats}");
    let delivered = records(&datagrams);
    assert!(
        delivered >= back,
        "delivery resumed when the collector came back: {delivered} of {back}: {stats}"
    );
    // What was read is accounted for at every stage; of what was sent, the
    // refused datagrams are counted. ICMP is rate limited, so a few more may
    // have gone unanswered: never more delivered than sent minus refused.
    let sent = counter(&stats, "sent");
    assert_eq!(counter(&stats, "seen") - counter(&stats, "filtered"), generated, "{stats}");
    assert_eq!(counter(&stats, "read"), generated, "nothing lost before the sender: {stats}");
    assert_eq!(
        counter(&stats, "read"),
        sent + counter(&stats, "send_lost") + counter(&stats, "channel_lost"),
        "{stats}"
    );
    assert!(delivered <= sent - refused, "{stats}");
    assert!(sent - refused - delivered <= 2, "unreported refusals stay few at this rate: {stats}");
}

/// SIGTERM 80 ms into a flood of drops to `ports`, with big batches and a
/// long interval so that records are still queued and packed at the signal.
/// Returns the exit status, the final counters, what the collector got and
/// how many drops the flood made.
fn stop_mid_flood(hosts: &Hosts, ports: &[u16]) -> (i32, String, Vec<Vec<u8>>, u64) {
    let collector = Collector::bind("127.0.0.1:0");
    let options = ["-i", "30", "-b", "1000", "--max-datagram", "65000"];
    let (ts, _cfg) = start_to_udp(hosts, collector.port(), &options);
    let sock = hosts.socket_in_a();
    let (stopped, generated) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            let mut sent = 0;
            for _ in 0..30 {
                sent += hosts.udp_flood(&sock, &hosts.v4_b, ports, 20, 16, None);
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        });
        std::thread::sleep(Duration::from_millis(80));
        let stopped = ts.stop();
        (stopped, flood.join().unwrap())
    });
    let (status, _, stats) = stopped;
    let mut datagrams = Vec::new();
    collector.drain(&mut datagrams);
    (status, stats, datagrams, generated)
}

#[test]
fn sigterm_during_a_flood_delivers_everything_read() {
    let hosts = Hosts::new();
    let (status, stats, datagrams, generated) = stop_mid_flood(&hosts, &[44300, 44301]);
    assert_eq!(status, 0);
    let read = counter(&stats, "read");
    assert!(read > 0 && read < generated, "stopped mid-flood: read {read} of {generated}");
    // Everything read before the programs were detached was delivered.
    assert_eq!(counter(&stats, "sent"), read, "{stats}");
    assert_eq!(records(&datagrams), read, "{stats}");
    assert_eq!(
        counter(&stats, "seen") - counter(&stats, "filtered"),
        read + counter(&stats, "ring_lost"),
        "{stats}"
    );
}

/// The record streamed last is trapstream's final state: taken after the
/// queue and the sink were drained, so its `sent` is what the collector got
/// and the ledger's identities hold in it.
#[test]
fn the_last_stats_record_is_the_final_ledger() {
    let hosts = Hosts::new();
    let (status, _, datagrams, _) = stop_mid_flood(&hosts, &[44400, 44401]);
    assert_eq!(status, 0);
    let objects: Vec<Value> = datagrams
        .iter()
        .flat_map(|d| serde_json::from_slice::<Value>(d).expect("JSON").as_array().expect("array").clone())
        .collect();
    let last = objects.last().expect("something was streamed");
    assert_eq!(last["measurement"], "trapstream_stats", "the final counters come last: {last}");
    let n = |name: &str| last[name].as_u64().unwrap_or_else(|| panic!("no {name} in {last}"));
    let received = records(&datagrams);
    assert!(received > 0, "{last}");
    assert_eq!(n("sent"), received, "sent in the last record = records the collector got: {last}");
    assert_eq!(
        n("seen"),
        n("filtered") + n("rate_limited") + n("ring_lost") + n("read") + n("decode_errors"),
        "{last}"
    );
    assert_eq!(
        n("read"),
        n("channel_lost") + n("sent") + n("send_lost") + n("unacked_lost") + n("queued"),
        "{last}"
    );
    assert_eq!(
        n("lost"),
        n("nested")
            + n("ring_lost")
            + n("decode_errors")
            + n("channel_lost")
            + n("send_lost")
            + n("unacked_lost")
            + n("refused"),
        "{last}"
    );
}
