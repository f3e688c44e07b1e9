//! TCP transport against a collector that is down, then up: a bounded
//! backlog whose overflow is counted, reconnection within the retry timeout,
//! delivery resumed, one JSON array per line. Needs root.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{counter, Hosts, TempConfig, Trapstream};
use serde_json::Value;

#[test]
fn collector_down_then_up_backlog_is_bounded_counted_and_delivered() {
    let hosts = Hosts::new();
    let only_b = TempConfig::only_no_socket_in(&hosts.ns_b);
    // A free port with nothing listening on it yet.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port_arg = port.to_string();
    // One record per batch, each a line of ~900 bytes: room for two while down.
    let ts = Trapstream::start(&[
        "--transport",
        "tcp",
        "-r",
        "0.5",
        "--tcp-backlog",
        "2000",
        "-b",
        "1",
        "-i",
        "0.05",
        "-c",
        only_b.arg(),
        "--source",
        "skb",
        "127.0.0.1",
        &port_arg,
    ]);
    let down_ports: Vec<u16> = (38000..38006).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &down_ports, 10);
    std::thread::sleep(Duration::from_millis(700));

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("collector comes up on the same port");
    let up_at = Instant::now();
    let (conn, _) = listener.accept().expect("trapstream reconnects");
    let reconnect = up_at.elapsed();
    assert!(reconnect < Duration::from_millis(1500), "reconnected after {reconnect:?}, retry is 0.5 s");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = BufReader::new(conn).lines();
    let mut ports = Vec::new();
    let mut next_record = |ports: &mut Vec<u64>| {
        let line = lines.next().expect("a line").expect("readable");
        let batch: Value = serde_json::from_str(&line).expect("each line is one JSON array");
        let records = batch.as_array().expect("array");
        assert_eq!(records.len(), 1, "-b 1");
        ports.push(records[0]["packet"]["TRANSPORT"]["dstPort"].as_u64().unwrap());
    };
    // The backlog: the two newest batches from while it was down.
    next_record(&mut ports);
    next_record(&mut ports);
    assert_eq!(ports, vec![38004, 38005], "oldest batches were pushed out of the full backlog");

    let up_ports: Vec<u16> = (38100..38103).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &up_ports, 10);
    for _ in &up_ports {
        next_record(&mut ports);
    }
    assert_eq!(&ports[2..], &[38100, 38101, 38102], "delivery resumed in order");

    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    assert_eq!(counter(&final_stats, "read"), 9, "{final_stats}");
    assert_eq!(counter(&final_stats, "sent"), 5, "{final_stats}");
    assert_eq!(counter(&final_stats, "send_lost"), 4, "overflow is counted, not silent: {final_stats}");
    assert!(counter(&final_stats, "send_errors") >= 1, "refused connections counted: {final_stats}");
    assert_eq!(counter(&final_stats, "queued"), 0, "{final_stats}");
}

/// A TCP collector that takes little at a time: a small receive buffer, and
/// an MSS of 536, from which Linux also sizes trapstream's send buffer (tens
/// of KB instead of MBs on loopback).
fn slow_collector() -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mss: libc::c_int = 536;
    // SAFETY: a valid socket fd; the option value is a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mss as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(4).unwrap();
    socket.into()
}

/// The JSON batches in whole lines (a line cut short by the end of its
/// connection is not one the collector takes), as objects.
fn objects(bytes: &[u8]) -> Vec<Value> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .lines()
        .flat_map(|l| {
            serde_json::from_str::<Value>(l).expect("a JSON line").as_array().expect("array").clone()
        })
        .collect()
}

/// Everything a connection delivers until it ends, cleanly or by a reset.
fn read_to_end(mut conn: TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A counter from a stats line, 0 when the line has no such counter.
fn named(stats: &str, name: &str) -> u64 {
    if stats.contains(&format!(" {name}=")) {
        counter(stats, name)
    } else {
        0
    }
}

/// Per record the collector took whole: no duplicates; what it took is
/// exactly `sent`, in the log and in the last trapstream_stats record;
/// everything read is sent or counted lost.
fn assert_delivered_exactly(objects: &[Value], final_stats: &str, read: u64) {
    let records: Vec<&Value> = objects.iter().filter(|o| o.get("measurement").is_none()).collect();
    let ports: BTreeSet<u64> =
        records.iter().map(|r| r["packet"]["TRANSPORT"]["dstPort"].as_u64().expect("dstPort")).collect();
    assert_eq!(ports.len(), records.len(), "a record arrived twice: {final_stats}");
    assert_eq!(counter(final_stats, "read"), read, "{final_stats}");
    assert_eq!(
        counter(final_stats, "sent"),
        records.len() as u64,
        "sent = records the collector took: {final_stats}"
    );
    common::assert_ledger(final_stats);
    assert_eq!(counter(final_stats, "queued"), 0, "{final_stats}");
    let last = objects.last().expect("something arrived");
    assert_eq!(last["measurement"], "trapstream_stats", "the final counters come last: {last}");
    for name in ["read", "sent", "send_lost", "unacked_lost", "channel_lost"] {
        assert_eq!(last[name].as_u64(), Some(named(final_stats, name)), "{name}: {last} vs {final_stats}");
    }
}

fn tcp_trapstream(port: u16, batch: &str, cfg: &TempConfig) -> Trapstream {
    Trapstream::start(&[
        "--transport",
        "tcp",
        "-r",
        "0.2",
        "-b",
        batch,
        "-i",
        "0.05",
        "-c",
        cfg.arg(),
        "--source",
        "skb",
        "127.0.0.1",
        &port.to_string(),
    ])
}

/// Reads whole connections after the first, in order, until trapstream ends.
fn later_connections(listener: TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("trapstream reconnects");
        read_to_end(conn)
    })
}

/// The collector stops reading, with lines still in trapstream's send
/// queue, and resets the connection. Lines its TCP acknowledged count as
/// sent, the others as unacked_lost; nothing arrives twice after the
/// reconnection. Before, every line written counted as sent.
#[test]
fn a_collector_reset_with_lines_in_flight_is_counted_exactly() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let listener = slow_collector();
    // A line per record (~900 bytes): the collector's window holds a few whole.
    let ts = tcp_trapstream(listener.local_addr().unwrap().port(), "1", &cfg);

    hosts.udp_to_closed_ports(&hosts.v4_b, &(40000..40006).collect::<Vec<_>>(), 10);
    let (conn, _) = listener.accept().expect("trapstream connects");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while objects(&got).len() < 6 {
        let n = (&conn).read(&mut buf).expect("the first records");
        got.extend_from_slice(&buf[..n]);
    }
    // The collector stops reading: ~18 KB, more than its window, less than
    // trapstream's send buffer, so no write waits.
    hosts.udp_to_closed_ports(&hosts.v4_b, &(40100..40120).collect::<Vec<_>>(), 10);
    std::thread::sleep(Duration::from_millis(800));
    // What its TCP holds (and acknowledged) counts as received; then it
    // goes away resetting, that queue with it.
    let mut held = vec![std::mem::MaybeUninit::<u8>::uninit(); 1 << 16];
    let n = socket2::SockRef::from(&conn).peek(&mut held).unwrap();
    // SAFETY: peek initialised the first n bytes.
    got.extend(held[..n].iter().map(|b| unsafe { b.assume_init() }));
    let cut = got.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    got.truncate(cut);
    assert!(objects(&got).len() > 6, "the collector's TCP took some lines it never read");
    socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO)).unwrap();
    drop(conn);
    let reader = later_connections(listener);
    std::thread::sleep(Duration::from_millis(800));

    hosts.udp_to_closed_ports(&hosts.v4_b, &(40200..40206).collect::<Vec<_>>(), 10);
    std::thread::sleep(Duration::from_millis(800));
    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    got.extend(reader.join().expect("reader"));
    assert!(named(&final_stats, "unacked_lost") > 0, "lines were in flight at the reset: {final_stats}");
    println!("{final_stats}");
    assert_delivered_exactly(&objects(&got), &final_stats, 32);
}

/// The collector stops reading until a write times out half-way through a
/// line: that line's beginning is never written again, on this connection
/// or the next; every record is sent or counted lost.
#[test]
fn a_line_cut_by_a_write_timeout_is_never_sent_twice() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let listener = slow_collector();
    // Lines of 3 records, so that the cut one holds several.
    let ts = tcp_trapstream(listener.local_addr().unwrap().port(), "3", &cfg);

    // ~90 KB: more than the collector's window and trapstream's send buffer.
    hosts.udp_to_closed_ports(&hosts.v4_b, &(41000..41100).collect::<Vec<_>>(), 10);
    let (first, _) = listener.accept().expect("trapstream connects");
    let reader = later_connections(listener);
    // Past the 2 s write timeout, trapstream has cut the connection.
    std::thread::sleep(Duration::from_secs(3));
    let mut got = read_to_end(first);
    let cut = got.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    got.truncate(cut);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    got.extend(reader.join().expect("reader"));
    assert!(
        named(&final_stats, "send_lost") + named(&final_stats, "unacked_lost") > 0,
        "the cut connection lost records: {final_stats}"
    );
    println!("{final_stats}");
    assert_delivered_exactly(&objects(&got), &final_stats, 100);
}
