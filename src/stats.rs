//! Counters that account for every event: each one read from the kernel is
//! either sent or counted in exactly one loss counter.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-CPU kernel counters (TS_CNT_* in include/trapstream.h), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Tracepoint hits for an enabled source.
    pub seen: u64,
    /// Hits skipped by a kernel-side filter (control traps, SKB_CONSUMED).
    pub filtered: u64,
    /// Events lost because the ring buffer was full.
    pub ring_lost: u64,
    /// Packets counted into a flow table (-u).
    pub aggregated: u64,
    /// Packets sent alone because the flow table was full (-u).
    pub overflow: u64,
    /// Packets sent alone as the first of a new flow (-u --exemplars).
    pub exemplars: u64,
    /// Events suppressed by --rate-limit.
    pub rate_limited: u64,
    /// Tracepoint hits never handled because a trapstream program was
    /// already running on that CPU: those our programs turned away
    /// (TS_CNT_NESTED) plus those the kernel itself skipped (the programs'
    /// `recursion_misses`). Outside `seen`; part of `lost`.
    pub nested: u64,
    /// Kernel drops that were a vendor SDK freeing its copy of a packet it had
    /// just reported as a trap (TS_CNT_SDK_FREES): the packet was delivered
    /// as that trap, so these are neither seen nor lost, outside every identity.
    pub sdk_frees: u64,
}

/// A counter on a cache line of its own. The poll thread bumps `read` (and
/// with -u or --pcap a few more) for every record while the sender bumps
/// `sent` and `datagrams` for every datagram: sharing a line, each write
/// took it away from the other CPU (3.4 % of trapstream's CPU under the e2e
/// flood went to the sender's counter updates).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded(AtomicU64);

impl std::ops::Deref for Padded {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

#[derive(Debug)]
pub struct Stats {
    started: std::time::Instant,
    /// Records decoded from the kernel: ring buffer events and drained flow-table entries.
    pub read: Padded,
    /// Ring buffer records and flow-table entries that did not decode (counted, never skipped).
    pub decode_errors: AtomicU64,
    /// Records dropped because the channel to the sender was full.
    pub channel_lost: AtomicU64,
    /// Records handed to the transport in a datagram that was sent.
    pub sent: AtomicU64,
    /// Records in datagrams whose send failed.
    pub send_lost: AtomicU64,
    /// Records counted in `sent` whose datagram was then refused (ICMP port unreachable).
    pub refused: AtomicU64,
    /// Records written to a TCP connection that died before the collector
    /// acknowledged them (never counted in `sent`).
    pub unacked_lost: AtomicU64,
    pub datagrams: AtomicU64,
    pub send_errors: AtomicU64,
    /// Records larger than --max-datagram, sent alone.
    pub oversize: AtomicU64,
    /// Flow-table drains (-u), and those the kernel asked for early.
    pub flushes: AtomicU64,
    pub early_flushes: AtomicU64,
    /// Flow-table entries drained (each is then in `read` or `decode_errors`).
    pub flow_records: Padded,
    /// Packets those entries stand for.
    pub flow_packets: Padded,
    /// Packets in flow entries that did not decode or that the channel could not take.
    pub flow_packets_lost: AtomicU64,
    /// Records waiting in the transport's backlog (TCP while disconnected): a gauge.
    pub queued: AtomicU64,
    /// --pcap: per-packet records handed to the capture (each is then written
    /// or lost), packets written, and packets lost on the way (full channel,
    /// failed write, no bytes located, a reader gone).
    pub pcap_frames: Padded,
    pub pcap_written: AtomicU64,
    pub pcap_lost: AtomicU64,
    /// --pcap on: Some(true) when the capture is the only output (the
    /// records then go nowhere else, so `read` = `pcap_frames`).
    pub pcap: Option<bool>,
}

impl Default for Stats {
    fn default() -> Self {
        let zero = || AtomicU64::new(0);
        Stats {
            started: std::time::Instant::now(),
            read: Padded::default(),
            decode_errors: zero(),
            channel_lost: zero(),
            sent: zero(),
            send_lost: zero(),
            refused: zero(),
            unacked_lost: zero(),
            datagrams: zero(),
            send_errors: zero(),
            oversize: zero(),
            flushes: zero(),
            early_flushes: zero(),
            flow_records: Padded::default(),
            flow_packets: Padded::default(),
            flow_packets_lost: zero(),
            queued: zero(),
            pcap_frames: Padded::default(),
            pcap_written: zero(),
            pcap_lost: zero(),
            pcap: None,
        }
    }
}

impl Stats {
    /// `pcap`: see the field.
    pub fn with_pcap(pcap: Option<bool>) -> Stats {
        Stats { pcap, ..Default::default() }
    }

    /// Adding 0 writes nothing: most of a delivery's counters are 0, and a
    /// write would still take the cache line from the thread reading it.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self, kernel: KernelCounters) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            kernel,
            read: get(&self.read),
            decode_errors: get(&self.decode_errors),
            channel_lost: get(&self.channel_lost),
            sent: get(&self.sent),
            send_lost: get(&self.send_lost),
            refused: get(&self.refused),
            unacked_lost: get(&self.unacked_lost),
            datagrams: get(&self.datagrams),
            send_errors: get(&self.send_errors),
            oversize: get(&self.oversize),
            flushes: get(&self.flushes),
            early_flushes: get(&self.early_flushes),
            flow_records: get(&self.flow_records),
            flow_packets: get(&self.flow_packets),
            flow_packets_lost: get(&self.flow_packets_lost),
            queued: get(&self.queued),
            pcap_frames: get(&self.pcap_frames),
            pcap_written: get(&self.pcap_written),
            pcap_lost: get(&self.pcap_lost),
            pcap: self.pcap,
            time_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub kernel: KernelCounters,
    pub read: u64,
    pub decode_errors: u64,
    pub channel_lost: u64,
    pub sent: u64,
    pub send_lost: u64,
    pub refused: u64,
    pub unacked_lost: u64,
    pub datagrams: u64,
    pub send_errors: u64,
    pub oversize: u64,
    pub flushes: u64,
    pub early_flushes: u64,
    pub flow_records: u64,
    pub flow_packets: u64,
    pub flow_packets_lost: u64,
    pub queued: u64,
    pub pcap_frames: u64,
    pub pcap_written: u64,
    pub pcap_lost: u64,
    pub pcap: Option<bool>,
    /// When the snapshot was taken (Unix ns) and how long trapstream has run.
    pub time_ns: u64,
    pub uptime_seconds: u64,
}

impl Snapshot {
    /// Every counter by name, in a fixed order: what `trapstream_stats` carries.
    pub fn fields(&self) -> [(&'static str, u64); 31] {
        [
            ("seen", self.kernel.seen),
            ("nested", self.kernel.nested),
            ("sdk_frees", self.kernel.sdk_frees),
            ("filtered", self.kernel.filtered),
            ("ring_lost", self.kernel.ring_lost),
            ("rate_limited", self.kernel.rate_limited),
            ("aggregated", self.kernel.aggregated),
            ("overflow", self.kernel.overflow),
            ("exemplars", self.kernel.exemplars),
            ("read", self.read),
            ("decode_errors", self.decode_errors),
            ("channel_lost", self.channel_lost),
            ("sent", self.sent),
            ("send_lost", self.send_lost),
            ("refused", self.refused),
            ("unacked_lost", self.unacked_lost),
            ("datagrams", self.datagrams),
            ("send_errors", self.send_errors),
            ("oversize", self.oversize),
            ("queued", self.queued),
            ("flushes", self.flushes),
            ("early_flushes", self.early_flushes),
            ("flow_records", self.flow_records),
            ("flow_packets", self.flow_packets),
            ("flow_packets_lost", self.flow_packets_lost),
            ("pcap_frames", self.pcap_frames),
            ("pcap_written", self.pcap_written),
            ("pcap_lost", self.pcap_lost),
            // Every loss in one number, for an alert.
            (
                "lost",
                self.kernel.nested
                    + self.kernel.ring_lost
                    + self.decode_errors
                    + self.channel_lost
                    + self.send_lost
                    + self.unacked_lost
                    + self.refused
                    + self.pcap_lost,
            ),
            ("uptime_seconds", self.uptime_seconds),
            ("time_ns", self.time_ns),
        ]
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seen={} nested={} sdk_frees={} filtered={} ring_lost={} read={} decode_errors={} channel_lost={} \
             sent={} send_lost={} refused={} unacked_lost={} datagrams={} send_errors={} oversize={} queued={} \
             rate_limited={}",
            self.kernel.seen,
            self.kernel.nested,
            self.kernel.sdk_frees,
            self.kernel.filtered,
            self.kernel.ring_lost,
            self.read,
            self.decode_errors,
            self.channel_lost,
            self.sent,
            self.send_lost,
            self.refused,
            self.unacked_lost,
            self.datagrams,
            self.send_errors,
            self.oversize,
            self.queued,
            self.kernel.rate_limited
        )?;
        if self.flushes > 0 || self.kernel.aggregated > 0 {
            write!(
                f,
                " aggregated={} overflow={} exemplars={} flushes={} early_flushes={} flow_records={} \
                 flow_packets={} flow_packets_lost={}",
                self.kernel.aggregated,
                self.kernel.overflow,
                self.kernel.exemplars,
                self.flushes,
                self.early_flushes,
                self.flow_records,
                self.flow_packets,
                self.flow_packets_lost
            )?;
        }
        if let Some(only) = self.pcap {
            write!(
                f,
                " pcap_frames={} pcap_written={} pcap_lost={}{}",
                self.pcap_frames,
                self.pcap_written,
                self.pcap_lost,
                if only { " outputs=pcap" } else { "" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_frees_are_named_but_neither_seen_nor_lost() {
        let kernel = KernelCounters { seen: 10, nested: 1, sdk_frees: 7, ..Default::default() };
        let snapshot = Snapshot { kernel, ..Default::default() };
        let line = snapshot.to_string();
        assert!(line.starts_with("seen=10 nested=1 sdk_frees=7 filtered=0 "), "{line}");
        let fields = snapshot.fields();
        let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        assert_eq!(get("sdk_frees"), Some(7));
        assert_eq!(get("seen"), Some(10));
        assert_eq!(get("lost"), Some(1), "only nested of these is a loss");
    }
}
