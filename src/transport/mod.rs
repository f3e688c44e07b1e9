//! Encoded records → datagrams (or lines) on the wire.
//!
//! The packer puts whole records into datagrams of at most `max` bytes: a
//! record never straddles two datagrams, and one that is too big on its own
//! goes alone and is counted. A JSON datagram is exactly one JSON array; an
//! Influx datagram is newline-terminated lines.

mod mmsg;
mod stdout;
mod tcp;
mod udp;

pub use stdout::StdoutSink;
pub use tcp::TcpSink;
pub use udp::UdpSink;

use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `[rec,rec,...]`
    JsonArray,
    /// `rec\nrec\n`
    Lines,
}

/// A datagram ready to send, and how many records it carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    pub records: usize,
    /// One record alone that exceeds the size limit.
    pub oversize: bool,
    /// The packer's buffer, in which `bytes` starts at `offset`.
    pub buffer: &'a [u8],
    pub offset: usize,
    /// The packer keeps this datagram in its buffer, at `offset`, until it
    /// hands over its next one: all of it but the last byte (a JSON
    /// datagram's closing bracket becomes the next one's opening bracket).
    /// A sink may hold it until then, uncopied (`Sink::send_packed`).
    pub retained: bool,
}

/// Bytes of sent datagrams the packer keeps before the open one (or twice
/// `max`, if more), so that a sink can send them from where they lie.
const RETAINED_BYTES: usize = 64 << 10;

pub struct Packer {
    framing: Framing,
    max: usize,
    /// The open datagram is `buf[begin..]`. A record that did not fit is
    /// encoded right after the full datagram, which is sent from where it
    /// lies; the record then opens the next datagram in place, uncopied.
    buf: Vec<u8>,
    begin: usize,
    records: usize,
}

impl Packer {
    pub fn new(framing: Framing, max: usize) -> Packer {
        Packer { framing, max, buf: Vec::with_capacity(4 * max.min(1 << 16)), begin: 0, records: 0 }
    }

    pub fn pending_records(&self) -> usize {
        self.records
    }

    /// Add one encoded record. If it does not fit in the open datagram, that
    /// datagram is handed to `emit` first. The record is added even when
    /// `emit` fails, so that `pending_records` still counts it.
    pub fn push<E>(&mut self, record: &[u8], emit: E) -> io::Result<()>
    where
        E: FnMut(Datagram<'_>) -> io::Result<()>,
    {
        self.push_with(|buf| buf.extend_from_slice(record), emit)
    }

    /// As `push`, for a record that `encode` appends to the buffer it is
    /// given: it is encoded straight into the datagram, not copied there.
    /// `encode` must only append.
    pub fn push_with<E>(&mut self, encode: impl FnOnce(&mut Vec<u8>), mut emit: E) -> io::Result<()>
    where
        E: FnMut(Datagram<'_>) -> io::Result<()>,
    {
        if self.begin >= self.retain_below() {
            // Sent datagrams pile up before `begin` until a flush: bounded
            // by moving the open one to the front now and then, not per record.
            // The datagram that took `begin` here was not retained.
            self.buf.drain(..self.begin);
            self.begin = 0;
        }
        let closing = usize::from(self.framing == Framing::JsonArray);
        // Where the separator (or the opening bracket) goes.
        let at = self.buf.len();
        if self.framing == Framing::JsonArray {
            self.buf.push(if self.records == 0 { b'[' } else { b',' });
        }
        encode(&mut self.buf);
        if self.framing == Framing::Lines {
            self.buf.push(b'\n');
        }
        let mut emitted = Ok(());
        if self.records > 0 && self.buf.len() - self.begin + closing > self.max {
            // The open datagram ends before this record, whose separator
            // becomes its closing bracket; the record then opens the next.
            if self.framing == Framing::JsonArray {
                self.buf[at] = b']';
            }
            let buffer = &self.buf[..at + closing];
            emitted = emit(Datagram {
                bytes: &buffer[self.begin..],
                records: self.records,
                oversize: false,
                buffer,
                offset: self.begin,
                // The next push moves what lies before `at` away.
                retained: at < self.retain_below(),
            });
            if self.framing == Framing::JsonArray {
                self.buf[at] = b'[';
            }
            self.begin = at;
            self.records = 0;
        }
        self.records += 1;
        emitted?;
        if self.records == 1 && self.buf.len() - self.begin + closing > self.max {
            // Too big even alone: it goes by itself, now.
            self.flush_as(true, &mut emit)?;
        }
        Ok(())
    }

    /// Where sent datagrams stop being kept: past it, the next push moves
    /// the open one to the front of the buffer.
    fn retain_below(&self) -> usize {
        RETAINED_BYTES.max(2 * self.max)
    }

    /// Send the open datagram, if any.
    pub fn flush<E>(&mut self, emit: E) -> io::Result<()>
    where
        E: FnMut(Datagram<'_>) -> io::Result<()>,
    {
        self.flush_as(false, emit)
    }

    fn flush_as<E>(&mut self, oversize: bool, mut emit: E) -> io::Result<()>
    where
        E: FnMut(Datagram<'_>) -> io::Result<()>,
    {
        if self.records == 0 {
            return Ok(());
        }
        if self.framing == Framing::JsonArray {
            self.buf.push(b']');
        }
        let result = emit(Datagram {
            bytes: &self.buf[self.begin..],
            records: self.records,
            oversize,
            buffer: &self.buf,
            offset: self.begin,
            retained: false,
        });
        self.buf.clear();
        self.begin = 0;
        self.records = 0;
        result
    }
}

/// What became of records handed to a sink, possibly including records it
/// had queued earlier (TCP backlog).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Records written to the collector.
    pub sent: u64,
    /// Writes (datagrams or lines) that carried them.
    pub writes: u64,
    /// Records given up on: a failed datagram, or pushed out of a full backlog.
    pub lost: u64,
    /// Records counted as sent earlier whose datagram the collector's host
    /// refused (ICMP port unreachable, reported by the next send).
    pub refused: u64,
    /// Records written to a TCP connection that died before the collector
    /// acknowledged them.
    pub unacked_lost: u64,
    /// Failed attempts (send errors, refused connections).
    pub errors: u64,
    /// The last error, for the log.
    pub last_error: Option<io::ErrorKind>,
}

impl Delivery {
    pub fn sent(records: usize) -> Delivery {
        Delivery { sent: records as u64, writes: 1, ..Default::default() }
    }

    pub fn add(&mut self, other: Delivery) {
        self.sent += other.sent;
        self.writes += other.writes;
        self.lost += other.lost;
        self.refused += other.refused;
        self.unacked_lost += other.unacked_lost;
        self.errors += other.errors;
        self.last_error = other.last_error.or(self.last_error);
    }
}

/// Where datagrams go.
pub trait Sink {
    /// Send one datagram of `records` records. An error means none of them
    /// arrived and the sink keeps nothing of it; a failure that still
    /// delivered or reported something is an `Ok` with `last_error` set.
    /// A sink may hold the datagram until `flush` (UDP sends a batch's
    /// datagrams in one system call), counting its records in `queued`
    /// meanwhile and in the delivery `flush` returns.
    fn send(&mut self, datagram: &[u8], records: usize) -> io::Result<Delivery>;

    /// As `send`, for a datagram from the packer, which a sink may hold
    /// where it lies while the packer retains it (see `Datagram::retained`).
    fn send_packed(&mut self, datagram: &Datagram<'_>, records: usize) -> io::Result<Delivery> {
        self.send(datagram.bytes, records)
    }

    /// Called when the sender is idle: a chance to reconnect and flush a backlog.
    fn tick(&mut self) -> Delivery {
        Delivery::default()
    }

    /// Push out anything buffered. The sender calls it when a batch ends
    /// (full, or its interval past), after streaming its counters, and at
    /// shutdown (through `close`).
    fn flush(&mut self) -> io::Result<Delivery> {
        Ok(Delivery::default())
    }

    /// At shutdown: deliver what can be; what cannot is reported lost.
    fn close(&mut self) -> io::Result<Delivery> {
        self.flush()
    }

    /// Records held for later: TCP's backlog, and lines written but not yet
    /// acknowledged.
    fn queued(&self) -> u64 {
        0
    }

    /// Whether an error is the end of this sink rather than one lost datagram.
    fn is_fatal(&self, _kind: io::ErrorKind) -> bool {
        false
    }
}

/// No record output (`--pcap` alone): only the streamed counters come
/// here, and they go nowhere; no record is ever sent to it.
pub struct NullSink;

impl Sink for NullSink {
    fn send(&mut self, _datagram: &[u8], _records: usize) -> io::Result<Delivery> {
        Ok(Delivery::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(framing: Framing, max: usize, records: &[&str]) -> Vec<(String, usize, bool)> {
        let mut out = Vec::new();
        let mut packer = Packer::new(framing, max);
        let mut emit = |d: Datagram<'_>| {
            out.push((String::from_utf8(d.bytes.to_vec()).unwrap(), d.records, d.oversize));
            Ok(())
        };
        for r in records {
            packer.push(r.as_bytes(), &mut emit).unwrap();
        }
        packer.flush(&mut emit).unwrap();
        out
    }

    #[test]
    fn json_datagrams_are_arrays_of_whole_records_at_the_limit() {
        // "[aaaa,bbbb]" is 11 bytes: fits exactly at 11, splits at 10.
        let at = pack(Framing::JsonArray, 11, &["aaaa", "bbbb"]);
        assert_eq!(at, vec![("[aaaa,bbbb]".into(), 2, false)]);
        let below = pack(Framing::JsonArray, 10, &["aaaa", "bbbb"]);
        assert_eq!(below, vec![("[aaaa]".into(), 1, false), ("[bbbb]".into(), 1, false)]);
        for (datagram, _, _) in below.iter().chain(&at) {
            let parsed: serde_json::Value =
                serde_json::from_str(&datagram.replace(|c: char| c.is_alphabetic(), "1")).unwrap();
            assert!(parsed.is_array());
        }
    }

    #[test]
    fn lines_datagrams_end_in_newlines_at_the_limit() {
        assert_eq!(pack(Framing::Lines, 10, &["aaaa", "bbbb"]), vec![("aaaa\nbbbb\n".into(), 2, false)]);
        assert_eq!(
            pack(Framing::Lines, 9, &["aaaa", "bbbb", "cc"]),
            vec![("aaaa\n".into(), 1, false), ("bbbb\ncc\n".into(), 2, false)]
        );
    }

    #[test]
    fn an_oversize_record_goes_alone_and_is_marked() {
        let got = pack(Framing::JsonArray, 8, &["aa", "this-is-too-long", "bb", "cc"]);
        assert_eq!(
            got,
            vec![
                ("[aa]".into(), 1, false),
                ("[this-is-too-long]".into(), 1, true),
                ("[bb,cc]".into(), 2, false),
            ]
        );
        // Exactly at the limit alone is not oversize.
        assert_eq!(pack(Framing::Lines, 5, &["abcd"]), vec![("abcd\n".into(), 1, false)]);
        assert_eq!(pack(Framing::Lines, 4, &["abcd"]), vec![("abcd\n".into(), 1, true)]);
    }

    #[test]
    fn a_record_stays_pending_when_emitting_the_full_datagram_fails() {
        let mut packer = Packer::new(Framing::Lines, 10);
        packer.push(b"aaaa", |_| Ok(())).unwrap();
        let failed = packer.push(b"bbbbbbb", |_| Err(io::ErrorKind::BrokenPipe.into()));
        assert!(failed.is_err());
        assert_eq!(packer.pending_records(), 1, "the new record is held, to be counted");
    }

    #[test]
    fn every_record_is_in_exactly_one_datagram() {
        let records: Vec<String> = (0..500).map(|i| "x".repeat(1 + (i * 37) % 90)).collect();
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        for max in [16, 64, 100, 1400] {
            let got = pack(Framing::JsonArray, max, &refs);
            assert_eq!(got.iter().map(|d| d.1).sum::<usize>(), records.len());
            let mut joined = Vec::new();
            for (d, n, oversize) in &got {
                assert!(d.len() <= max || (*oversize && *n == 1), "{max}: {d}");
                let inner = &d[1..d.len() - 1];
                joined.extend(inner.split(',').map(str::to_string));
            }
            assert_eq!(joined, records);
        }
    }
}
