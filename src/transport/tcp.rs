//! TCP to the collector, as the original tool did: newline-framed JSON arrays
//! or line-protocol lines on one connection, re-established every
//! `retry` while the collector is down.
//!
//! While disconnected, whole batches wait in a bounded backlog; when it is
//! full the oldest batch is dropped and its records counted as lost. Only the
//! sender thread ever waits on the network (a bounded write or connect
//! timeout); the poll thread never does.
//!
//! A record counts as sent once the collector's TCP has acknowledged the
//! last byte of its line: bytes the kernel accepted are only in trapstream's
//! send queue until then, and die with the connection. Lines written and not
//! yet acknowledged are held in a FIFO of (end offset, records); the send
//! queue's length (SIOCOUTQ) says how far the collector has acknowledged.
//! When a connection is given up, what it never acknowledged is counted in
//! `unacked_lost`, and the connection is reset, so that none of those bytes
//! can still arrive and the collector sees an aborted connection rather than
//! a clean end after a line cut short. A line is never written twice: a
//! batch cut short by a failed write loses the records whose lines it did
//! not finish, and is not sent again.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, TcpKeepalive, Type};

use super::{Delivery, Sink};

/// How long one connection attempt or one line's write may take before the
/// collector counts as down; also how long shutdown waits for the collector
/// to acknowledge what was written.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How often shutdown looks at the send queue while it waits.
const ACK_POLL: Duration = Duration::from_millis(5);

pub struct TcpSink {
    collector: SocketAddr,
    retry: Duration,
    io_timeout: Duration,
    conn: Option<Connection>,
    /// When the next connection attempt may be made.
    next_attempt: Instant,
    /// Batches waiting for a connection: (bytes, records).
    backlog: VecDeque<(Vec<u8>, usize)>,
    backlog_bytes: usize,
    backlog_records: u64,
    max_backlog_bytes: usize,
}

/// One connection, and the records written on it that its collector has not
/// yet acknowledged.
struct Connection {
    stream: TcpStream,
    /// Bytes written since the connection was made.
    written: u64,
    /// (offset just past the last byte of a line, records that end there),
    /// oldest first: the lines the collector would take whole.
    in_flight: VecDeque<(u64, u64)>,
    in_flight_records: u64,
}

/// What became of a line handed to `Connection::write_line`.
enum Written {
    Whole,
    /// Not a byte of it: it can go on another connection without arriving twice.
    Untouched(io::Error),
    /// Part of it: the records whose lines were not finished are lost.
    Cut(io::Error),
}

impl Connection {
    /// Bytes written that the collector has not acknowledged: SIOCOUTQ, the
    /// send queue, unsent and sent-but-unacknowledged bytes alike. It stays
    /// readable after a reset, frozen at the last acknowledgement.
    fn unacknowledged(&self) -> io::Result<u64> {
        let mut queued: libc::c_int = 0;
        // SAFETY: the fd belongs to self.stream, an open TCP socket, for the
        // whole call; TIOCOUTQ (SIOCOUTQ for sockets) stores one c_int
        // through the pointer, which points to a live, writable c_int.
        let rc = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        u64::try_from(queued).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative SIOCOUTQ"))
    }

    /// Lines whose last byte is within the first `acked` bytes were sent.
    fn settle_to(&mut self, acked: u64, delivery: &mut Delivery) {
        while let Some(&(end, records)) = self.in_flight.front() {
            if end > acked {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_records -= records;
            delivery.sent += records;
        }
    }

    fn settle(&mut self, delivery: &mut Delivery) -> io::Result<()> {
        if !self.in_flight.is_empty() {
            let acked = self.written.saturating_sub(self.unacknowledged()?);
            self.settle_to(acked, delivery);
        }
        Ok(())
    }

    /// Write one line of `records` records within `timeout`, noting where
    /// each finished record's line ends; records cut short are counted lost.
    fn write_line(
        &mut self,
        line: &[u8],
        records: usize,
        timeout: Duration,
        delivery: &mut Delivery,
    ) -> Written {
        let started = Instant::now();
        let mut done = 0;
        let error = loop {
            if done == line.len() {
                break None;
            }
            match self.stream.write(&line[done..]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    done += n;
                    // Each write may wait the socket's timeout; the line as
                    // a whole may not wait much longer than one.
                    if done < line.len() && started.elapsed() >= timeout {
                        break Some(io::Error::new(io::ErrorKind::TimedOut, "writing a line took too long"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        let finished = self.note_lines(line, done, records as u64);
        self.written += done as u64;
        match error {
            None => {
                delivery.writes += 1;
                Written::Whole
            }
            Some(e) if done == 0 => Written::Untouched(e),
            Some(e) => {
                delivery.lost += records as u64 - finished;
                Written::Cut(e)
            }
        }
    }

    /// Adds the records of `line` whose lines end within its first `done`
    /// bytes to the FIFO; returns how many. A line-protocol batch has a line
    /// per record; a JSON batch is one line holding all of its records.
    fn note_lines(&mut self, line: &[u8], done: usize, records: u64) -> u64 {
        if records == 0 {
            return 0;
        }
        let newlines = line.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut noted = 0;
        if newlines == records {
            for (i, _) in line[..done].iter().enumerate().filter(|(_, &b)| b == b'\n') {
                self.in_flight.push_back((self.written + i as u64 + 1, 1));
                noted += 1;
            }
        } else if done == line.len() {
            self.in_flight.push_back((self.written + done as u64, records));
            noted = records;
        }
        self.in_flight_records += noted;
        noted
    }
}

impl TcpSink {
    /// Does not connect yet: the first send (or tick) does, so a collector
    /// that is down at start-up is a backlog, not a failure.
    pub fn new(collector: SocketAddr, retry: Duration, max_backlog_bytes: usize) -> TcpSink {
        TcpSink {
            collector,
            retry,
            io_timeout: IO_TIMEOUT,
            conn: None,
            next_attempt: Instant::now(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            backlog_records: 0,
            max_backlog_bytes,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(self.collector), Type::STREAM, Some(Protocol::TCP))?;
        // A collector that vanished without a FIN is noticed within a minute.
        let keepalive =
            TcpKeepalive::new().with_time(Duration::from_secs(30)).with_interval(Duration::from_secs(10));
        socket.set_tcp_keepalive(&keepalive)?;
        socket.set_tcp_nodelay(true)?;
        socket.connect_timeout(&SockAddr::from(self.collector), self.io_timeout)?;
        socket.set_write_timeout(Some(self.io_timeout))?;
        Ok(socket.into())
    }

    /// Connect if it is time to try; false when still disconnected.
    fn ensure_connected(&mut self, delivery: &mut Delivery) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_attempt {
            return false;
        }
        self.next_attempt = Instant::now() + self.retry;
        match self.connect() {
            Ok(stream) => {
                tracing::info!("connected to {}", self.collector);
                self.conn =
                    Some(Connection { stream, written: 0, in_flight: VecDeque::new(), in_flight_records: 0 });
                true
            }
            Err(e) => {
                delivery.errors += 1;
                delivery.last_error = Some(e.kind());
                false
            }
        }
    }

    /// Give up on the connection. What the collector acknowledged was sent;
    /// what it did not is counted lost. The reset makes that count final: no
    /// byte of it can arrive later.
    fn abandon(&mut self, error: io::Error, delivery: &mut Delivery) {
        let Some(mut conn) = self.conn.take() else { return };
        tracing::warn!("lost the connection to {}: {error}", self.collector);
        delivery.errors += 1;
        delivery.last_error = Some(error.kind());
        // If the send queue cannot be read, no line in flight is known to
        // have arrived: all count as lost.
        if let Ok(unacked) = conn.unacknowledged() {
            conn.settle_to(conn.written.saturating_sub(unacked), delivery);
        }
        delivery.unacked_lost += conn.in_flight_records;
        let _ = SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
        self.next_attempt = Instant::now() + self.retry;
    }

    /// Count what the collector has acknowledged; a connection that has
    /// failed meanwhile (a reset while idle) is given up now.
    fn settle(&mut self, delivery: &mut Delivery) {
        let Some(conn) = self.conn.as_mut() else { return };
        let outcome = match conn.stream.take_error() {
            Ok(None) => conn.settle(delivery),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            self.abandon(e, delivery);
        }
    }

    /// Write one line; false if not a byte of it was written, so it may be
    /// sent on another connection.
    fn write(&mut self, line: &[u8], records: usize, delivery: &mut Delivery) -> bool {
        let Some(conn) = self.conn.as_mut() else { return false };
        match conn.write_line(line, records, self.io_timeout, delivery) {
            Written::Whole => true,
            Written::Untouched(e) => {
                self.abandon(e, delivery);
                false
            }
            Written::Cut(e) => {
                self.abandon(e, delivery);
                true
            }
        }
    }

    fn flush_backlog(&mut self, delivery: &mut Delivery) {
        while let Some((bytes, records)) = self.backlog.pop_front() {
            if !self.write(&bytes, records, delivery) {
                self.backlog.push_front((bytes, records));
                return;
            }
            self.backlog_bytes -= bytes.len();
            self.backlog_records -= records as u64;
        }
    }

    fn enqueue(&mut self, bytes: Vec<u8>, records: usize, delivery: &mut Delivery) {
        self.backlog_bytes += bytes.len();
        self.backlog_records += records as u64;
        self.backlog.push_back((bytes, records));
        while self.backlog_bytes > self.max_backlog_bytes {
            let Some((old, n)) = self.backlog.pop_front() else { break };
            self.backlog_bytes -= old.len();
            self.backlog_records -= n as u64;
            delivery.lost += n as u64;
        }
    }
}

impl Sink for TcpSink {
    fn send(&mut self, batch: &[u8], records: usize) -> io::Result<Delivery> {
        let mut delivery = Delivery::default();
        // One batch is one line: a JSON array, or line-protocol lines ending in '\n'.
        let mut line = Vec::with_capacity(batch.len() + 1);
        line.extend_from_slice(batch);
        if !batch.ends_with(b"\n") {
            line.push(b'\n');
        }
        if self.ensure_connected(&mut delivery) {
            self.flush_backlog(&mut delivery);
            if self.backlog.is_empty() && self.write(&line, records, &mut delivery) {
                self.settle(&mut delivery);
                return Ok(delivery);
            }
        }
        self.enqueue(line, records, &mut delivery);
        self.settle(&mut delivery);
        Ok(delivery)
    }

    fn tick(&mut self) -> Delivery {
        let mut delivery = Delivery::default();
        self.settle(&mut delivery);
        if !self.backlog.is_empty() && self.ensure_connected(&mut delivery) {
            self.flush_backlog(&mut delivery);
            self.settle(&mut delivery);
        }
        delivery
    }

    /// Records in the backlog, and written but not yet acknowledged.
    fn queued(&self) -> u64 {
        self.backlog_records + self.conn.as_ref().map_or(0, |c| c.in_flight_records)
    }

    /// At shutdown: one last attempt to deliver the backlog, and a bounded
    /// wait for the collector to acknowledge what was written; what remains
    /// is lost.
    fn close(&mut self) -> io::Result<Delivery> {
        let mut delivery = Delivery::default();
        if !self.backlog.is_empty() {
            self.next_attempt = Instant::now();
            if self.ensure_connected(&mut delivery) {
                self.flush_backlog(&mut delivery);
            }
        }
        let deadline = Instant::now() + self.io_timeout;
        loop {
            self.settle(&mut delivery);
            match &self.conn {
                Some(conn) if !conn.in_flight.is_empty() => {}
                _ => break,
            }
            if Instant::now() >= deadline {
                let e = io::Error::new(io::ErrorKind::TimedOut, "the collector did not acknowledge in time");
                self.abandon(e, &mut delivery);
                break;
            }
            std::thread::sleep(ACK_POLL);
        }
        delivery.lost += self.backlog_records;
        self.backlog.clear();
        self.backlog_bytes = 0;
        self.backlog_records = 0;
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
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
}
