//! `--pcap`: the packets themselves, as pcapng for Wireshark and tshark.
//!
//! Runs on its own thread, fed by the poll thread through its own bounded
//! channel, so that a slow reader of the capture (a Wireshark pipe, a slow
//! disk) never holds up the records to the collector: a full channel is a
//! counted loss (`pcap_lost`), as is every packet a write could not take.
//! Blocks are written whenever the channel runs dry (at most `MAX_BATCH`
//! packets at a time), each batch one buffer of whole blocks.

mod block;
mod output;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::config::{PcapConfig, PcapPath};
use crate::encode::{pcap_comment, Context};
use crate::errlog::ErrorLog;
use crate::record::{Link, Origin, RawFrame, Record};
use crate::stats::Stats;
use output::{Output, Target};

/// Packets written in one go at most; the channel usually runs dry first.
const MAX_BATCH: usize = 256;
const IDLE: Duration = Duration::from_millis(200);

/// A packet for the capture: what the kernel said about it, and its bytes.
pub struct Frame {
    pub record: Record,
    pub raw: RawFrame,
}

/// An interface in the current file: one per ingress port and link type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PortKey {
    link: Link,
    devlink: Option<(String, String)>,
    netns: u32,
    ifindex: u32,
    name: String,
    /// Sent by this host: the port is the one it was leaving by.
    outbound: bool,
}

pub struct Writer {
    out: Output,
    snap_len: u32,
    /// Interface ids of the current file, and how many of them are on disk.
    ports: HashMap<PortKey, u32>,
    committed: u32,
    blocks: Vec<u8>,
    packets: u64,
    comment: String,
    dead: bool,
    errors: ErrorLog,
}

impl Writer {
    /// Opens the file (or takes standard output) before capture starts.
    pub fn open(cfg: &PcapConfig) -> std::io::Result<Writer> {
        let target = match &cfg.path {
            PcapPath::Stdout => Target::Stdout,
            PcapPath::File(path) => {
                Target::File { path: path.clone(), rotate_size: cfg.rotate_size, files: cfg.rotate_files }
            }
        };
        Ok(Writer {
            out: Output::open(target)?,
            snap_len: cfg.snap_len,
            ports: HashMap::new(),
            committed: 0,
            blocks: Vec::with_capacity(1 << 16),
            packets: 0,
            comment: String::new(),
            dead: false,
            errors: ErrorLog::new("pcap", "packets"),
        })
    }

    /// Write until the channel closes; every frame received is written or
    /// counted in `pcap_lost`. A stream whose reader left (EPIPE) takes no
    /// more: with no other output, `failed` is raised so that trapstream
    /// ends as `--stdout | head` does.
    /// `stop` is raised when trapstream shuts down: a stream then waits for
    /// its reader only briefly.
    pub fn run(
        mut self,
        rx: Receiver<Frame>,
        ctx: &Context,
        stats: &Stats,
        stop: &AtomicBool,
        failed: Option<&AtomicBool>,
    ) {
        loop {
            match rx.recv_timeout(IDLE) {
                Ok(frame) => self.add(ctx, stats, stop, &frame),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while self.packets < MAX_BATCH as u64 {
                match rx.try_recv() {
                    Ok(frame) => self.add(ctx, stats, stop, &frame),
                    Err(_) => break,
                }
            }
            self.flush(stats, stop);
            if self.dead {
                if let Some(failed) = failed {
                    failed.store(true, Ordering::Release);
                }
            }
        }
        self.flush(stats, stop);
    }

    fn add(&mut self, ctx: &Context, stats: &Stats, stop: &AtomicBool, frame: &Frame) {
        if self.dead {
            Stats::add(&stats.pcap_lost, 1);
            return;
        }
        self.comment.clear();
        pcap_comment(ctx, &frame.record, &mut self.comment);
        // An upper bound of what this packet adds, its interface included:
        // a file is rotated before it, never after it grew past the limit.
        let bound = 512 + frame.raw.bytes.len() as u64 + self.comment.len() as u64;
        if self.out.must_rotate(self.blocks.len() as u64 + bound) {
            self.flush(stats, stop);
            self.ports.clear();
            self.committed = 0;
            if let Err(e) = self.out.rotate() {
                self.errors.report(&format_args!("starting the next capture file: {e}"), 0);
            }
        }
        let key = port_key(&frame.record, frame.raw.link);
        let id = match self.ports.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.ports.len() as u32;
                let (link_type, snap) = match key.link {
                    // Room for a VLAN tag put back from skb metadata.
                    Link::Ethernet => (block::LINKTYPE_ETHERNET, self.snap_len + 4),
                    Link::Ip => (block::LINKTYPE_RAW, self.snap_len),
                };
                block::interface(&mut self.blocks, link_type, snap, &key.name, &describe(&key));
                self.ports.insert(key, id);
                id
            }
        };
        block::packet(
            &mut self.blocks,
            id,
            frame.record.time_ns,
            &frame.raw.bytes,
            frame.raw.orig_len,
            &self.comment,
        );
        self.packets += 1;
    }

    fn flush(&mut self, stats: &Stats, stop: &AtomicBool) {
        if self.blocks.is_empty() {
            return;
        }
        let packets = std::mem::take(&mut self.packets);
        let result = if self.out.written() == 0 && !self.dead {
            // A new file (or the stream's start): its Section Header first,
            // in the same write.
            let mut all = Vec::with_capacity(self.blocks.len() + 64);
            block::section_header(&mut all, concat!("trapstream ", env!("CARGO_PKG_VERSION")));
            all.extend_from_slice(&self.blocks);
            self.out.write(&all, packets, stop)
        } else {
            self.out.write(&self.blocks, packets, stop)
        };
        self.blocks.clear();
        match result {
            Ok(()) => {
                Stats::add(&stats.pcap_written, packets);
                self.committed = self.ports.len() as u32;
            }
            Err(e) => {
                Stats::add(&stats.pcap_lost, packets);
                // The interfaces described in the lost blocks are not in the file.
                let committed = self.committed;
                self.ports.retain(|_, id| *id < committed);
                if self.out.is_stream() {
                    // A stream cannot be cut back: after a failed write (the
                    // reader gone, or cut off mid-block at exit) nothing can
                    // follow that a reader could parse.
                    tracing::warn!("pcap: writing the capture: {e}: {packets} packets lost, no more written");
                    self.dead = true;
                } else {
                    self.errors.report(&format_args!("writing the capture: {e}"), packets);
                }
            }
        }
    }
}

/// The port a packet is filed under: where it came in, or for a packet this
/// host sent (no ingress) the device it was leaving by.
fn port_key(rec: &Record, link: Link) -> PortKey {
    let devlink = match &rec.origin {
        Origin::Devlink(t) => Some((t.bus_name.as_str().to_string(), t.device_name.as_str().to_string())),
        Origin::Skb(_) => None,
    };
    let (name, ifindex, outbound) = match &rec.egress {
        Some(e) if rec.ingress.ifindex == 0 => (e.name.as_str().to_string(), e.ifindex, true),
        _ => (rec.ingress.name.as_str().to_string(), rec.ingress.ifindex, false),
    };
    PortKey { link, devlink, netns: rec.ingress.netns_ino, ifindex, name, outbound }
}

/// `if_name` is the port's name; the rest goes in `if_description`.
fn describe(key: &PortKey) -> String {
    let mut text = match &key.devlink {
        Some((bus, dev)) if !dev.is_empty() => format!("devlink {bus}/{dev} trap reports"),
        Some(_) => "devlink trap reports".to_string(),
        None => "kernel drops (skb:kfree_skb)".to_string(),
    };
    if key.outbound {
        text.push_str(", sent by this host, leaving here");
    } else if key.name.is_empty() {
        text.push_str(if key.ifindex == 0 { ", sent by this host" } else { ", no device name" });
    }
    if key.ifindex != 0 {
        text.push_str(&format!(", ifindex {}", key.ifindex));
    }
    if key.netns != 0 {
        text.push_str(&format!(", netns {}", key.netns));
    }
    text
}

/// The poll thread's part: a per-packet record with its bytes goes to the
/// capture (a full channel is a counted loss, the poll thread never waits).
/// A per-packet record whose bytes the kernel could not locate is a loss
/// too; a record of counted packets (-u) has no bytes and is no packet.
pub fn route(tx: &crossbeam_channel::Sender<Frame>, rec: &Record, raw: Option<RawFrame>, stats: &Stats) {
    match raw {
        Some(raw) => {
            Stats::add(&stats.pcap_frames, 1);
            if tx.try_send(Frame { record: *rec, raw }).is_err() {
                Stats::add(&stats.pcap_lost, 1);
            }
        }
        None if rec.flow.is_none() => {
            Stats::add(&stats.pcap_frames, 1);
            Stats::add(&stats.pcap_lost, 1);
            tracing::debug!("pcap: the kernel could not locate the bytes of a packet");
        }
        None => {}
    }
}
