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
mod tests;
