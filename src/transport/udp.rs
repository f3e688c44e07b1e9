//! UDP datagrams to the collector through socket2, sent in batches.
//!
//! `send` holds each datagram; `flush` (the sender calls it when a batch
//! ends, as it did before batching) sends what is held with sendmmsg. Held
//! records are `queued` until then, so the ledger stays whole in between.
//!
//! `send_packed` (what the sender uses) holds a datagram where the packer
//! built it instead of copying it: the packer keeps its buffer's earlier
//! datagrams in place while it says so (`Datagram::retained`), and the held
//! ones go out, from that buffer, with the first datagram it does not
//! retain (its flush at the end of every batch).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::mmsg::{self, Held};
use super::{Datagram, Delivery, Sink};

/// How long one send may wait for room in the socket's send buffer. The
/// buffer drains as fast as the path to the collector does, which can be
/// never (a stalled device, a shaper): past this the datagram is counted
/// lost rather than the sender thread stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes held before a flush is forced whatever the batch: a few big
/// datagrams (`--max-datagram 65000`) should not pile up in memory.
const MAX_HELD_BYTES: usize = 256 << 10;

pub struct UdpSink {
    socket: Socket,
    /// Records in the last datagram sent: the one an ECONNREFUSED is about.
    last_records: usize,
    /// Datagrams `send` copied, end to end.
    copied: Vec<u8>,
    /// Datagrams waiting: in `copied`, or in the packer's buffer if `in_place`.
    held: Vec<Held>,
    in_place: bool,
    held_records: u64,
}

impl UdpSink {
    pub fn connect(collector: SocketAddr) -> io::Result<UdpSink> {
        let socket = Socket::new(Domain::for_address(collector), Type::DGRAM, Some(Protocol::UDP))?;
        // Bursts of drops come in bursts of datagrams: a larger send buffer
        // absorbs them instead of failing with ENOBUFS.
        let _ = socket.set_send_buffer_size(4 << 20);
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        // Connected, so that an ICMP port unreachable from a missing collector
        // surfaces as ECONNREFUSED and is counted, rather than vanishing.
        socket.connect(&SockAddr::from(collector))?;
        Ok(UdpSink {
            socket,
            last_records: 0,
            copied: Vec::with_capacity(64 << 10),
            held: Vec::with_capacity(mmsg::MAX_BATCH),
            in_place: false,
            held_records: 0,
        })
    }

    /// The local address datagrams leave from.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "UDP socket without an IP address"))
    }

    /// Counts datagram `i` after one attempt to send it, as an unbatched
    /// send counted it: sent; or, on ECONNREFUSED, the records of the
    /// datagram before it refused and this one tried once more; or lost.
    fn settle(&mut self, buffer: &[u8], i: usize, attempt: io::Result<()>, d: &mut Delivery) {
        let records = self.held[i].records;
        match attempt {
            Ok(()) => self.sent(records, d),
            // The collector's host answered an earlier datagram with ICMP
            // port unreachable: that datagram's records never arrived. The
            // error is cleared by being reported and this datagram was not
            // sent, so send it again. (ICMP is rate limited by the kernel:
            // not every refused datagram is reported; TCP is the transport
            // for a collector whose absence must be counted in full.)
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                Self::refused(self.last_records, e.kind(), d);
                // The refusal is news about records already sent: it is
                // counted whatever becomes of this datagram.
                match mmsg::send_one(&self.socket, buffer, &self.held[i]) {
                    Ok(_) => self.sent(records, d),
                    Err(e) => {
                        Self::lost(records, e.kind(), d);
                        // The refused datagram has been reported and this
                        // one never left: none is waiting for an answer.
                        self.last_records = 0;
                    }
                }
            }
            Err(e) => Self::lost(records, e.kind(), d),
        }
    }

    /// sendmmsg sent datagrams up to `i` and stopped at `i` without saying
    /// why. If the call ran into the send timeout, `i` is lost as an
    /// unbatched send would have lost it. Otherwise `i` is tried alone: if
    /// it now goes out at once, what stopped it was an error the socket was
    /// holding, which the failed attempt cleared — an ICMP error about an
    /// earlier datagram (port, protocol or host refused), counted as the
    /// refusal an unbatched send would have reported.
    fn settle_stopped(&mut self, buffer: &[u8], i: usize, took: Duration, d: &mut Delivery) {
        // The kernel's timeout counts whole jiffies: it can end a tick early.
        if took + Duration::from_millis(100) >= SEND_TIMEOUT {
            Self::lost(self.held[i].records, io::ErrorKind::WouldBlock, d);
            return;
        }
        let before = self.last_records;
        match mmsg::send_one(&self.socket, buffer, &self.held[i]) {
            Ok(_) => {
                Self::refused(before, io::ErrorKind::ConnectionRefused, d);
                self.sent(self.held[i].records, d);
            }
            Err(e) => self.settle(buffer, i, Err(e), d),
        }
    }

    /// Sends every held datagram from `buffer` and counts each exactly:
    /// sent, refused (the one before it), or lost.
    fn send_held(&mut self, buffer: &[u8]) -> Delivery {
        let mut d = Delivery::default();
        let mut i = 0;
        while i < self.held.len() {
            let batch = (self.held.len() - i).min(mmsg::MAX_BATCH);
            let began = Instant::now();
            match mmsg::send(&self.socket, buffer, &self.held[i..i + batch]) {
                Ok(n) => {
                    for k in i..i + n {
                        self.sent(self.held[k].records, &mut d);
                    }
                    i += n;
                    if n < batch {
                        self.settle_stopped(buffer, i, began.elapsed(), &mut d);
                        i += 1;
                    }
                }
                // The first datagram of the call failed: the error is its own.
                Err(e) => {
                    self.settle(buffer, i, Err(e), &mut d);
                    i += 1;
                }
            }
        }
        self.held.clear();
        self.held_records = 0;
        self.in_place = false;
        d
    }

    fn hold(&mut self, start: usize, bytes: &[u8], records: usize) {
        self.held.push(Held { start, end: start + bytes.len(), last: bytes.last().copied(), records });
        self.held_records += records as u64;
    }

    /// Held datagrams in a packer's buffer that is not at hand: the packer
    /// always hands it over again (a datagram it does not retain) before
    /// anything else reaches the sink, so this does not happen; if it did,
    /// they would be counted lost, never sent from stale offsets.
    fn drop_in_place(&mut self) -> Delivery {
        let mut d = Delivery::default();
        if self.in_place && !self.held.is_empty() {
            let records = self.held.iter().map(|h| h.records).sum();
            Self::lost(records, io::ErrorKind::InvalidInput, &mut d);
            self.held.clear();
            self.held_records = 0;
        }
        self.in_place = false;
        d
    }

    fn sent(&mut self, records: usize, d: &mut Delivery) {
        d.sent += records as u64;
        d.writes += 1;
        self.last_records = records;
    }

    fn refused(records: usize, kind: io::ErrorKind, d: &mut Delivery) {
        d.refused += records as u64;
        d.errors += 1;
        d.last_error = Some(kind);
    }

    fn lost(records: usize, kind: io::ErrorKind, d: &mut Delivery) {
        d.lost += records as u64;
        d.errors += 1;
        d.last_error = Some(kind);
    }
}

impl Sink for UdpSink {
    /// Holds the datagram for `flush`; sends what is held first if the
    /// batch is full. Never an error: a failure is counted in the delivery.
    fn send(&mut self, datagram: &[u8], records: usize) -> io::Result<Delivery> {
        let mut delivery = self.drop_in_place();
        if self.held.len() == mmsg::MAX_BATCH
            || (!self.held.is_empty() && self.copied.len() + datagram.len() > MAX_HELD_BYTES)
        {
            delivery.add(self.flush()?);
        }
        let start = self.copied.len();
        self.copied.extend_from_slice(datagram);
        self.hold(start, datagram, records);
        Ok(delivery)
    }

    /// Holds the datagram where the packer built it, uncopied; sends what
    /// is held when the packer will not keep its buffer as it is (or the
    /// batch is full). Never an error: a failure is counted in the delivery.
    fn send_packed(&mut self, d: &Datagram<'_>, records: usize) -> io::Result<Delivery> {
        let mut delivery = Delivery::default();
        if !self.in_place && !self.held.is_empty() {
            delivery = self.flush()?;
        }
        self.in_place = true;
        self.hold(d.offset, d.bytes, records);
        if !d.retained || self.held.len() == mmsg::MAX_BATCH {
            delivery.add(self.send_held(d.buffer));
        }
        Ok(delivery)
    }

    /// Sends every held datagram and counts each exactly: sent, refused
    /// (the one before it), or lost.
    fn flush(&mut self) -> io::Result<Delivery> {
        if self.in_place {
            return Ok(self.drop_in_place());
        }
        let copied = std::mem::take(&mut self.copied);
        let d = self.send_held(&copied);
        self.copied = copied;
        self.copied.clear();
        Ok(d)
    }

    fn queued(&self) -> u64 {
        self.held_records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn collector() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a collector");
        socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        socket
    }

    /// `n` datagrams of 1 to `max` bytes, each of one repeated letter.
    fn datagrams(n: usize, max: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![b'a' + (i % 26) as u8; 1 + (i * 37) % max]).collect()
    }

    #[test]
    fn held_datagrams_are_queued_until_flushed_then_arrive_whole_in_order() {
        let rx = collector();
        let mut sink = UdpSink::connect(rx.local_addr().unwrap()).expect("socket");
        let sent = datagrams(7, 1400);
        for (i, d) in sent.iter().enumerate() {
            assert_eq!(sink.send(d, i + 1).expect("held"), Delivery::default());
        }
        assert_eq!(sink.queued(), 28);
        let d = sink.flush().expect("flush");
        assert_eq!((d.sent, d.writes, d.lost, d.errors), (28, 7, 0, 0), "{d:?}");
        assert_eq!(sink.queued(), 0);
        let mut buf = vec![0u8; 2048];
        for want in &sent {
            let n = rx.recv(&mut buf).expect("every datagram arrives");
            assert_eq!(&buf[..n], &want[..]);
        }
        assert_eq!(sink.flush().expect("nothing held"), Delivery::default());
    }

    #[test]
    fn a_full_batch_is_sent_by_the_next_send_and_every_record_counted() {
        let rx = collector();
        let mut sink = UdpSink::connect(rx.local_addr().unwrap()).expect("socket");
        // Small, so that all of them fit in the collector's receive buffer.
        let sent = datagrams(2 * mmsg::MAX_BATCH + 5, 100);
        let mut total = Delivery::default();
        for d in &sent {
            total.add(sink.send(d, 2).expect("send"));
            assert!(sink.queued() <= 2 * mmsg::MAX_BATCH as u64);
        }
        total.add(sink.flush().expect("flush"));
        assert_eq!((total.sent, total.writes, total.errors), (2 * sent.len() as u64, sent.len() as u64, 0));
        let mut buf = vec![0u8; 2048];
        for want in &sent {
            let n = rx.recv(&mut buf).expect("every datagram arrives");
            assert_eq!(&buf[..n], &want[..]);
        }
    }

    /// The packer's datagrams, held where it built them: each arrives whole
    /// and in order, with the bytes the packer showed when it handed it over
    /// (a JSON datagram's closing bracket too, which the packer overwrites
    /// after), across full batches, the packer's moves of its buffer and
    /// oversize records, and every record is counted once.
    #[test]
    fn packed_datagrams_held_in_place_arrive_as_the_packer_made_them() {
        use crate::transport::{Framing, Packer};
        for (framing, max, batch) in
            [(Framing::JsonArray, 300, 20), (Framing::Lines, 300, 200), (Framing::JsonArray, 1400, 1000)]
        {
            let rx = collector();
            let mut received = Vec::new();
            let mut sink = UdpSink::connect(rx.local_addr().unwrap()).expect("socket");
            let mut packer = Packer::new(framing, max);
            let (mut expected, mut total) = (Vec::new(), Delivery::default());
            let mut queued_max = 0;
            for i in 0..1500usize {
                // 1 to 399 bytes: some records alone over 300, most several a datagram.
                let record = vec![b'a' + (i % 26) as u8; 1 + (i * 37) % 399];
                let mut emit = |d: Datagram<'_>| {
                    expected.push(d.bytes.to_vec());
                    total.add(sink.send_packed(&d, d.records)?);
                    Ok(())
                };
                packer.push(&record, &mut emit).expect("push");
                if i % batch == batch - 1 {
                    packer.flush(&mut emit).expect("flush");
                    total.add(sink.flush().expect("flush"));
                }
                queued_max = queued_max.max(sink.queued());
                // Loopback has queued what was sent: at most a batch waits.
                drain(&rx, &mut received);
            }
            packer
                .flush(|d| {
                    expected.push(d.bytes.to_vec());
                    total.add(sink.send_packed(&d, d.records)?);
                    Ok(())
                })
                .expect("flush");
            total.add(sink.flush().expect("flush"));
            assert_eq!((total.sent, total.lost, total.errors), (1500, 0, 0), "{framing:?} {max}: {total:?}");
            assert_eq!(total.writes, expected.len() as u64);
            assert!(queued_max > 0, "datagrams were held between pushes");
            assert_eq!(sink.queued(), 0);
            drain(&rx, &mut received);
            assert_eq!(received.len(), expected.len(), "{framing:?} {max}: every datagram arrives");
            for (i, (got, want)) in received.iter().zip(&expected).enumerate() {
                assert_eq!(got, want, "{framing:?} {max}: datagram {i}");
            }
        }
    }

    /// Every datagram waiting at the collector.
    fn drain(rx: &UdpSocket, into: &mut Vec<Vec<u8>>) {
        rx.set_nonblocking(true).expect("nonblocking");
        let mut buf = vec![0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            into.push(buf[..n].to_vec());
        }
        rx.set_nonblocking(false).expect("blocking");
    }

    /// To a closed port on loopback the kernel's ICMP answer is back before
    /// the next datagram: inside a batch the refusal stops sendmmsg without
    /// an error, after the first it is sendmmsg's error. Either way the
    /// records of the datagram before are refused, and every datagram is sent.
    #[test]
    fn refusals_inside_and_at_the_head_of_a_batch_are_counted() {
        let port = collector().local_addr().unwrap();
        let mut sink = UdpSink::connect(port).expect("socket");
        for (i, d) in datagrams(3, 1400).iter().enumerate() {
            sink.send(d, i + 1).expect("held");
        }
        let first = sink.flush().expect("flush");
        assert_eq!((first.sent, first.writes, first.lost), (6, 3, 0), "{first:?}");
        assert_eq!(first.refused, 1 + 2, "datagrams 1 and 2 were refused: {first:?}");
        assert_eq!(first.last_error, Some(io::ErrorKind::ConnectionRefused));
        sink.send(b"x", 4).expect("held");
        let second = sink.flush().expect("flush");
        assert_eq!((second.sent, second.refused, second.lost, second.errors), (4, 3, 0, 1), "{second:?}");
    }
}
