use super::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::mpsc;

/// A collector that takes little at a time: a small receive buffer, and
/// an MSS of 536, from which Linux also sizes the sender's send buffer
/// (tens of KB instead of MBs on loopback), so both fill quickly.
fn slow_listener() -> TcpListener {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mss: libc::c_int = 536;
    // SAFETY: a valid socket fd; the option value is a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mss as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "TCP_MAXSEG: {}", io::Error::last_os_error());
    socket.bind(&SockAddr::from("127.0.0.1:0".parse::<SocketAddr>().unwrap())).unwrap();
    socket.listen(4).unwrap();
    socket.into()
}

/// Batch `n`: `records` line-protocol lines of 100 bytes, each named so
/// that a line arriving twice shows.
fn batch(n: usize, records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for r in 0..records {
        let line = format!("m,batch={n:05},record={r:03} f=1i ");
        out.extend_from_slice(format!("{line:x<99}\n").as_bytes());
    }
    out
}

/// The whole lines in what a collector received: a line cut short by
/// the end of a connection is not one it takes.
fn whole_lines(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).lines().map(str::to_string).collect()
}

/// Everything a connection delivers until it ends, cleanly or by a reset.
fn read_to_end(mut conn: TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn assert_no_duplicates(lines: &[String]) {
    let unique: HashSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "a line arrived twice");
}

fn lines_from(listener: &TcpListener, n: usize) -> Vec<String> {
    let (conn, _) = listener.accept().expect("accept");
    BufReader::new(conn).lines().take(n).map(|l| l.expect("line")).collect()
}

#[test]
fn batches_are_lines_on_one_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sink = TcpSink::new(listener.local_addr().unwrap(), Duration::from_millis(50), 1 << 20);
    let mut total = sink.send(b"[{\"a\":1},{\"a\":2}]", 2).unwrap();
    total.add(sink.send(b"m f=1i 1\nm f=2i 2\n", 2).unwrap());
    // Sent once the collector's TCP acknowledged them, by close at the latest.
    total.add(sink.close().unwrap());
    assert_eq!((total.sent, total.writes, total.lost + total.unacked_lost), (4, 2, 0));
    let got = lines_from(&listener, 3);
    assert_eq!(got, vec!["[{\"a\":1},{\"a\":2}]", "m f=1i 1", "m f=2i 2"]);
}

#[test]
fn backlog_while_down_is_bounded_counted_and_delivered_on_reconnect() {
    // A port with no listener: bind, learn the port, close.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Room for two 10-byte lines.
    let mut sink = TcpSink::new(addr, Duration::from_millis(100), 22);
    let mut total = Delivery::default();
    for i in 0..5 {
        total.add(sink.send(format!("batch-{i:03}").as_bytes(), 3).unwrap());
    }
    assert!(!sink.is_connected());
    assert_eq!(total.sent, 0);
    assert_eq!(total.lost, 9, "three oldest batches pushed out");
    assert_eq!(sink.queued(), 6);
    assert!(total.errors >= 1, "refused connection counted");

    let listener = TcpListener::bind(addr).expect("rebind the same port");
    std::thread::sleep(Duration::from_millis(150));
    let mut d = sink.tick();
    assert_eq!((d.writes, d.lost), (2, 0), "backlog written after the retry timeout");
    d.add(sink.close().unwrap());
    assert_eq!((d.sent, d.lost, d.unacked_lost), (6, 0, 0), "and acknowledged");
    assert_eq!(sink.queued(), 0);
    assert_eq!(lines_from(&listener, 2), vec!["batch-003", "batch-004"]);
}

#[test]
fn close_counts_what_could_not_be_delivered() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut sink =
        TcpSink::new(format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_secs(60), 1 << 20);
    sink.send(b"x", 4).unwrap();
    let d = sink.close().unwrap();
    assert_eq!((d.sent, d.lost), (0, 4));
    assert_eq!(sink.queued(), 0);
}

#[test]
fn records_end_where_the_collector_can_take_them_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut conn = Connection { stream, written: 100, in_flight: VecDeque::new(), in_flight_records: 0 };
    // Line protocol, a line per record: 7 bytes of 12 finish one record.
    assert_eq!(conn.note_lines(b"aaa\nbbb\nccc\n", 7, 3), 1);
    // JSON, one line for all records: none until the whole line is written.
    assert_eq!(conn.note_lines(b"[1,2,3]\n", 7, 3), 0);
    assert_eq!(conn.note_lines(b"[1,2,3]\n", 8, 3), 3);
    // A stats record is not an event: nothing to wait for.
    assert_eq!(conn.note_lines(b"trapstream_stats sent=1i\n", 25, 0), 0);
    assert_eq!(conn.in_flight, [(104, 1), (108, 3)]);
    assert_eq!(conn.in_flight_records, 4);
}

/// The collector stops reading; a batch's write times out half-way. The
/// part already written must never be written again (it would arrive
/// twice), and every record is sent (acknowledged) or counted lost.
#[test]
fn a_batch_cut_by_a_write_timeout_is_never_sent_again() {
    let listener = slow_listener();
    let addr = listener.local_addr().unwrap();
    let (go, start_reading) = mpsc::channel::<()>();
    let collector = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        start_reading.recv().unwrap();
        let mut got = whole_lines(&read_to_end(first));
        let (second, _) = listener.accept().unwrap();
        got.extend(whole_lines(&read_to_end(second)));
        got
    });
    let mut sink = TcpSink::new(addr, Duration::from_millis(50), 1 << 20);
    let (mut total, mut handed, mut n) = (Delivery::default(), 0u64, 0);
    while total.errors == 0 {
        assert!(n < 1000, "no write ever timed out: {total:?}");
        total.add(sink.send(&batch(n, 40), 40).unwrap());
        handed += 40;
        n += 1;
    }
    go.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    total.add(sink.send(&batch(n, 40), 40).unwrap());
    handed += 40;
    total.add(sink.close().unwrap());
    let queued = sink.queued();
    drop(sink);
    let lines = collector.join().unwrap();
    assert_no_duplicates(&lines);
    assert!(lines.iter().any(|l| l.starts_with(&format!("m,batch={n:05},"))), "delivery resumed");
    assert_eq!(lines.len() as u64, total.sent, "sent = lines the collector got: {total:?}");
    assert_eq!(queued, 0, "{total:?}");
    assert_eq!(handed, total.sent + total.lost + total.unacked_lost, "{total:?}");
}

/// Six batches of ten lines, 6 KB: more than the slow collector's window,
/// less than the send buffer, so that no write waits. Returns what the
/// sink reported and the records handed to it.
fn send_six_batches(sink: &mut TcpSink) -> (Delivery, u64) {
    let mut total = Delivery::default();
    for n in 0..6 {
        total.add(sink.send(&batch(n, 10), 10).unwrap());
    }
    (total, 60)
}

/// The collector's TCP holds some lines unread, more wait unacknowledged
/// in trapstream's send queue, and the collector resets the connection:
/// what it acknowledged was sent, the rest is lost, and both are counted.
#[test]
fn lines_unacknowledged_when_the_collector_resets_are_counted_lost() {
    let listener = slow_listener();
    let mut sink = TcpSink::new(listener.local_addr().unwrap(), Duration::from_millis(50), 1 << 20);
    let (mut total, handed) = send_six_batches(&mut sink);
    let (conn, _) = listener.accept().unwrap();
    // Long enough for the collector's TCP to acknowledge all it holds.
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 1 << 16];
    let held = socket2::SockRef::from(&conn).peek(&mut buf).unwrap();
    // SAFETY: peek initialised the first `held` bytes.
    let held: Vec<u8> = buf[..held].iter().map(|b| unsafe { b.assume_init() }).collect();
    let delivered = whole_lines(&held);
    assert!(!delivered.is_empty() && delivered.len() < 60, "{} lines held", delivered.len());
    // A collector that goes away resetting, its receive queue with it.
    socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO)).unwrap();
    drop(conn);
    std::thread::sleep(Duration::from_millis(50));
    total.add(sink.tick());
    assert_eq!(total.sent, delivered.len() as u64, "sent = lines the collector's TCP took: {total:?}");
    assert_eq!(total.unacked_lost, handed - total.sent, "the rest were never acknowledged: {total:?}");
    assert_eq!((total.lost, sink.queued()), (0, 0), "{total:?}");

    // The next batch goes on a new connection, and nothing twice.
    std::thread::sleep(Duration::from_millis(60));
    total.add(sink.send(&batch(6, 10), 10).unwrap());
    let (conn, _) = listener.accept().unwrap();
    total.add(sink.close().unwrap());
    drop(sink);
    let mut lines = delivered;
    lines.extend(whole_lines(&read_to_end(conn)));
    assert_no_duplicates(&lines);
    assert_eq!(total.sent, lines.len() as u64, "{total:?}");
}

/// At shutdown, lines the collector has not acknowledged within the
/// timeout are lost, and counted, not reported as sent.
#[test]
fn close_counts_what_the_collector_never_acknowledged() {
    let listener = slow_listener();
    let mut sink = TcpSink::new(listener.local_addr().unwrap(), Duration::from_millis(50), 1 << 20);
    let (mut total, handed) = send_six_batches(&mut sink);
    let (conn, _) = listener.accept().unwrap();
    total.add(sink.close().unwrap());
    assert_eq!(sink.queued(), 0);
    // Whatever the collector's TCP took is still there to read.
    let lines = whole_lines(&read_to_end(conn));
    assert!(lines.len() < 60, "the collector cannot have taken it all");
    assert_eq!(total.sent, lines.len() as u64, "{total:?}");
    assert_eq!(total.unacked_lost, handed - total.sent, "{total:?}");
    assert_eq!(total.lost, 0, "{total:?}");
}
