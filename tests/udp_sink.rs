//! The UDP sink on a real kernel path that can stall: between two network
//! namespaces whose links are shaped with tbf, so that the socket's send
//! buffer fills and the collector's ICMP port unreachable arrives late.
//! Needs root.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Hosts, MAC_A, MAC_B};
use trapstream::transport::{Delivery, Sink, UdpSink};

fn run(cmd: &[&str]) {
    let status = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// A's link to B holds what it cannot send at 1 KB/s (up to 20 MB), so a
/// socket in A that sends faster than that fills its send buffer. Neighbours
/// are static: no ARP waits behind the shaper.
fn shape_a(hosts: &Hosts) {
    run(&["ip", "-n", &hosts.ns_a, "neigh", "replace", &hosts.v4_b, "lladdr", MAC_B, "dev", &hosts.dev_a]);
    run(&["ip", "-n", &hosts.ns_b, "neigh", "replace", &hosts.v4_a, "lladdr", MAC_A, "dev", &hosts.dev_b]);
    run(&[
        "tc",
        "-n",
        &hosts.ns_a,
        "qdisc",
        "add",
        "dev",
        &hosts.dev_a,
        "root",
        "tbf",
        "rate",
        "8kbit",
        "burst",
        "1600",
        "limit",
        "20000000",
    ]);
}

/// B's answers (ICMP port unreachable) leave at 100 B/s, after a frame that
/// empties B's token bucket: the refusal of a datagram arrives about a
/// second after it, when A's send buffer is already full.
fn slow_down_b_answers(hosts: &Hosts) {
    let nowhere = hosts.v4_b.rsplit_once('.').map(|(net, _)| format!("{net}.3")).expect("v4 address");
    // A MAC nobody has: A's veth drops the frame, so it costs only B's tokens.
    run(&[
        "ip",
        "-n",
        &hosts.ns_b,
        "neigh",
        "replace",
        &nowhere,
        "lladdr",
        "02:00:5e:00:00:0c",
        "dev",
        &hosts.dev_b,
    ]);
    run(&[
        "tc",
        "-n",
        &hosts.ns_b,
        "qdisc",
        "add",
        "dev",
        &hosts.dev_b,
        "root",
        "tbf",
        "rate",
        "800bit",
        "burst",
        "1600",
        "limit",
        "100000",
    ]);
    let to: SocketAddr = format!("{nowhere}:9").parse().expect("address");
    Hosts::in_netns(&hosts.ns_b, || {
        UdpSocket::bind("0.0.0.0:0").expect("bind in B").send_to(&[0u8; 1400], to).expect("drain B's bucket")
    });
}

/// A sink in A to a port in B where nothing listens.
fn sink_in_a(hosts: &Hosts) -> UdpSink {
    let collector: SocketAddr = format!("{}:9", hosts.v4_b).parse().expect("address");
    Hosts::in_netns(&hosts.ns_a, || UdpSink::connect(collector).expect("UDP socket in A"))
}

/// Sends a batch of one `records`-record datagram the way the sender does
/// (held, then flushed), returning what it would account.
fn send(sink: &mut UdpSink, bytes: &[u8], records: usize) -> Delivery {
    send_batch(sink, &[bytes], records)
}

/// Sends datagrams of `records` records each as one batch: an error from
/// the sink means the datagram's records are lost.
fn send_batch(sink: &mut UdpSink, datagrams: &[&[u8]], records: usize) -> Delivery {
    let failed = |e: std::io::Error| Delivery {
        lost: records as u64,
        errors: 1,
        last_error: Some(e.kind()),
        ..Default::default()
    };
    let mut total = Delivery::default();
    for d in datagrams {
        total.add(sink.send(d, records).unwrap_or_else(failed));
    }
    total.add(sink.flush().unwrap_or_else(|e| Delivery {
        lost: sink.queued(),
        errors: 1,
        last_error: Some(e.kind()),
        ..Default::default()
    }));
    total
}

/// With nothing draining the send buffer, a send gives up after a bounded
/// wait and its datagram is counted lost; the sender thread is never stuck.
#[test]
fn a_full_send_buffer_costs_a_bounded_wait_and_is_counted() {
    let hosts = Hosts::new();
    shape_a(&hosts);
    let mut sink = sink_in_a(&hosts);
    // Datagrams of 41 fragments: a few hundred fill any send buffer the
    // kernel allows (net.core.wmem_max).
    let filler = vec![b'f'; 60_000];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut handed = 0u64;
        let mut total = Delivery::default();
        for _ in 0..2000 {
            let started = Instant::now();
            let d = send(&mut sink, &filler, 1);
            handed += 1;
            total.add(d);
            if d.lost > 0 {
                let _ = tx.send((handed, total, started.elapsed()));
                return;
            }
        }
    });
    let (handed, total, waited) =
        rx.recv_timeout(Duration::from_secs(30)).expect("a send into a full buffer never returned");
    assert_eq!(total.sent + total.lost, handed, "{total:?}");
    assert_eq!(total.lost, 1, "{total:?}");
    assert_eq!(total.last_error, Some(std::io::ErrorKind::WouldBlock), "{total:?}");
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "waited {waited:?}");
}

/// Batches into a send buffer that fills: the batch where it fills is sent
/// in part (sendmmsg stops at the datagram that timed out), and each of its
/// datagrams is counted once, sent or lost, each loss after one bounded wait.
#[test]
fn a_batch_cut_short_by_a_full_send_buffer_counts_every_datagram() {
    let hosts = Hosts::new();
    shape_a(&hosts);
    let mut sink = sink_in_a(&hosts);
    let filler = vec![b'f'; 60_000];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let batch: Vec<&[u8]> = vec![&filler; 4];
        let (mut handed, mut total) = (0u64, Delivery::default());
        for _ in 0..500 {
            let started = Instant::now();
            let d = send_batch(&mut sink, &batch, 1);
            handed += 4;
            total.add(d);
            if d.lost > 0 {
                let _ = tx.send((handed, total, d, started.elapsed()));
                return;
            }
        }
    });
    let (handed, total, last, waited) =
        rx.recv_timeout(Duration::from_secs(60)).expect("a batch into a full buffer never returned");
    eprintln!("the batch that met the full buffer: {last:?}, after {waited:?}");
    assert_eq!(total.sent + total.lost, handed, "{total:?}");
    assert_eq!(last.sent + last.lost, 4, "{last:?}");
    assert_eq!(last.errors, last.lost, "one error per lost datagram: {last:?}");
    assert_eq!(last.last_error, Some(std::io::ErrorKind::WouldBlock), "{last:?}");
    let most = Duration::from_millis(2500) * last.lost as u32;
    assert!(waited >= Duration::from_millis(1500) && waited < most, "waited {waited:?} for {last:?}");
}

/// The collector's host refuses a datagram (ICMP port unreachable); the next
/// send reports it and is retried, and the retry fails because the send
/// buffer is full. The refused records and the failed datagram's records
/// must both be counted.
#[test]
fn refused_records_stay_counted_when_the_retry_fails() {
    let hosts = Hosts::new();
    shape_a(&hosts);
    slow_down_b_answers(&hosts);
    let mut sink = sink_in_a(&hosts);
    // The only datagram that reaches B whole: the fillers behind it leave A
    // at 1 KB/s, a fragment at a time.
    let first = send(&mut sink, &[b'r'; 200], 5);
    assert_eq!((first.sent, first.lost), (5, 0), "{first:?}");
    let filler = vec![b'f'; 60_000];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut handed, mut total, mut last_sent) = (5u64, first, 5u64);
        while Instant::now() < deadline {
            let d = send(&mut sink, &filler, 1);
            handed += 1;
            total.add(d);
            if d.refused > 0 {
                let _ = tx.send(Some((handed, total, d, last_sent)));
                return;
            }
            if d.sent > 0 {
                last_sent = d.sent;
            }
        }
        let _ = tx.send(None);
    });
    let outcome = rx.recv_timeout(Duration::from_secs(40)).expect("the sink never returned");
    let (handed, total, refusal, last_sent) =
        outcome.expect("B's refusal of the first datagram was never counted");
    assert_eq!(refusal.refused, last_sent, "the refused datagram's records: {refusal:?}");
    assert_eq!(refusal.sent, 0, "the retry failed: {refusal:?}");
    assert_eq!(refusal.lost, 1, "the failed datagram is counted lost: {refusal:?}");
    assert_eq!(refusal.errors, 2, "the refusal and the failed retry: {refusal:?}");
    assert_eq!(total.sent + total.lost, handed, "{total:?}");
}
