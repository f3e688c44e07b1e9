//! TCP to the collector, as the original tool did: newline-framed JSON arrays
//! or line-protocol lines on one connection, re-established every
//! `retry` while the collector is down.
//!
//! While disconnected, whole batches wait in a bounded backlog; when it is
//! full the oldest batch is dropped and its records counted as lost. Only the
//! sender thread ever waits on the network (a bounded write or connect
//! timeout); the poll thread never does.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use super::{Delivery, Sink};

/// How long one connection attempt or one write may take before the
/// collector counts as down.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub struct TcpSink {
    collector: SocketAddr,
    retry: Duration,
    stream: Option<TcpStream>,
    /// When the next connection attempt may be made.
    next_attempt: Instant,
    /// Batches waiting for a connection: (bytes, records).
    backlog: VecDeque<(Vec<u8>, usize)>,
    backlog_bytes: usize,
    backlog_records: u64,
    max_backlog_bytes: usize,
}

impl TcpSink {
    /// Does not connect yet: the first send (or tick) does, so a collector
    /// that is down at start-up is a backlog, not a failure.
    pub fn new(collector: SocketAddr, retry: Duration, max_backlog_bytes: usize) -> TcpSink {
        TcpSink {
            collector,
            retry,
            stream: None,
            next_attempt: Instant::now(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            backlog_records: 0,
            max_backlog_bytes,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(self.collector), Type::STREAM, Some(Protocol::TCP))?;
        // A collector that vanished without a FIN is noticed within a minute.
        let keepalive =
            TcpKeepalive::new().with_time(Duration::from_secs(30)).with_interval(Duration::from_secs(10));
        socket.set_tcp_keepalive(&keepalive)?;
        socket.set_tcp_nodelay(true)?;
        socket.connect_timeout(&SockAddr::from(self.collector), IO_TIMEOUT)?;
        socket.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(socket.into())
    }

    /// Connect if it is time to try; Ok(false) when still disconnected.
    fn ensure_connected(&mut self, delivery: &mut Delivery) -> bool {
        if self.stream.is_some() {
            return true;
        }
        if Instant::now() < self.next_attempt {
            return false;
        }
        self.next_attempt = Instant::now() + self.retry;
        match self.connect() {
            Ok(stream) => {
                tracing::info!("connected to {}", self.collector);
                self.stream = Some(stream);
                true
            }
            Err(e) => {
                delivery.errors += 1;
                delivery.last_error = Some(e.kind());
                false
            }
        }
    }

    /// Write one batch; on failure the connection is dropped (the collector
    /// may have part of a line, which it discards with the connection).
    fn write(&mut self, bytes: &[u8], delivery: &mut Delivery) -> bool {
        let Some(stream) = self.stream.as_mut() else { return false };
        match stream.write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("lost the connection to {}: {e}", self.collector);
                delivery.errors += 1;
                delivery.last_error = Some(e.kind());
                self.stream = None;
                self.next_attempt = Instant::now() + self.retry;
                false
            }
        }
    }

    fn flush_backlog(&mut self, delivery: &mut Delivery) {
        while let Some((bytes, records)) = self.backlog.pop_front() {
            if !self.write(&bytes, delivery) {
                self.backlog.push_front((bytes, records));
                return;
            }
            self.backlog_bytes -= bytes.len();
            self.backlog_records -= records as u64;
            delivery.sent += records as u64;
            delivery.writes += 1;
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
            if self.backlog.is_empty() && self.write(&line, &mut delivery) {
                delivery.sent += records as u64;
                delivery.writes += 1;
                return Ok(delivery);
            }
        }
        self.enqueue(line, records, &mut delivery);
        Ok(delivery)
    }

    fn tick(&mut self) -> Delivery {
        let mut delivery = Delivery::default();
        if !self.backlog.is_empty() && self.ensure_connected(&mut delivery) {
            self.flush_backlog(&mut delivery);
        }
        delivery
    }

    fn queued(&self) -> u64 {
        self.backlog_records
    }

    /// At shutdown: one last attempt to deliver the backlog; what remains is lost.
    fn close(&mut self) -> io::Result<Delivery> {
        let mut delivery = Delivery::default();
        if !self.backlog.is_empty() {
            self.next_attempt = Instant::now();
            if self.ensure_connected(&mut delivery) {
                self.flush_backlog(&mut delivery);
            }
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
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    fn lines_from(listener: &TcpListener, n: usize) -> Vec<String> {
        let (conn, _) = listener.accept().expect("accept");
        BufReader::new(conn).lines().take(n).map(|l| l.expect("line")).collect()
    }

    #[test]
    fn batches_are_lines_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sink = TcpSink::new(listener.local_addr().unwrap(), Duration::from_millis(50), 1 << 20);
        let d1 = sink.send(b"[{\"a\":1},{\"a\":2}]", 2).unwrap();
        let d2 = sink.send(b"m f=1i 1\nm f=2i 2\n", 2).unwrap();
        assert_eq!((d1.sent, d2.sent, d1.lost + d2.lost), (2, 2, 0));
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
        let d = sink.tick();
        assert_eq!((d.sent, d.lost), (6, 0), "backlog delivered after the retry timeout");
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
}
