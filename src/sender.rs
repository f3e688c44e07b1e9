//! The formatter/sender thread: records from the channel → encoded → packed
//! into datagrams → sent. A batch holds at most `batch_size` records and is
//! sent when full or `batch_interval` after its first record.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::encode::{Context, Encoder};
use crate::errlog::ErrorLog;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::stats::{KernelCounters, Snapshot, Stats};
use crate::transport::{Datagram, Delivery, Packer, Sink};

/// What travels from the poll and main threads to the sender.
// Records travel by value so that none allocates; the channel's slots are
// the size of the largest variant either way.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Record(Record),
    /// trapstream's own counters, streamed like a record.
    Stats(Snapshot),
    /// The main thread's last word at shutdown: the kernel's counters once
    /// the programs are detached and the ring buffer drained. The sender
    /// streams the final counters itself, after everything queued before
    /// this was sent or counted lost, so that they are the final state.
    Final(KernelCounters),
}

pub struct SenderConfig {
    pub batch_size: usize,
    pub batch_interval: Duration,
    /// Send as soon as the channel runs dry (stdout: a person is watching).
    pub flush_when_idle: bool,
    pub verbose: bool,
}

/// How often an idle sender lets the transport reconnect and flush a backlog.
const IDLE_TICK: Duration = Duration::from_millis(500);

struct Output<'a> {
    sink: &'a mut dyn Sink,
    stats: &'a Stats,
    errors: ErrorLog,
}

impl Output<'_> {
    /// Counts what became of records; an error is the end of the sink.
    fn account(&mut self, d: Delivery) -> io::Result<()> {
        Stats::add(&self.stats.sent, d.sent);
        Stats::add(&self.stats.datagrams, d.writes);
        Stats::add(&self.stats.send_lost, d.lost);
        Stats::add(&self.stats.refused, d.refused);
        Stats::add(&self.stats.unacked_lost, d.unacked_lost);
        Stats::add(&self.stats.send_errors, d.errors);
        let queued = self.sink.queued();
        // A gauge that is 0 for UDP: storing it anyway would write the line every datagram.
        if self.stats.queued.load(Ordering::Relaxed) != queued {
            self.stats.queued.store(queued, Ordering::Relaxed);
        }
        match d.last_error {
            Some(kind) if self.sink.is_fatal(kind) => Err(kind.into()),
            Some(kind) => {
                self.errors.report(&io::Error::from(kind), d.lost + d.refused + d.unacked_lost);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A stats record is not an event: it is not counted as sent or lost.
    fn send_stats(&mut self, d: Datagram<'_>) -> io::Result<()> {
        match self.sink.send_packed(&d, 0) {
            Ok(delivery) => self.account(delivery),
            Err(e) if self.sink.is_fatal(e.kind()) => Err(e),
            Err(e) => {
                Stats::add(&self.stats.send_errors, 1);
                self.errors.report(&e, 0);
                Ok(())
            }
        }
    }

    fn send(&mut self, d: Datagram<'_>) -> io::Result<()> {
        if d.oversize {
            Stats::add(&self.stats.oversize, 1);
        }
        match self.sink.send_packed(&d, d.records) {
            Ok(delivery) => self.account(delivery),
            Err(e) => {
                Stats::add(&self.stats.send_errors, 1);
                Stats::add(&self.stats.send_lost, d.records as u64);
                if self.sink.is_fatal(e.kind()) {
                    return Err(e);
                }
                self.errors.report(&e, d.records as u64);
                Ok(())
            }
        }
    }
}

fn fatal(e: io::Error) -> Error {
    Error::Io { what: "writing records".into(), source: e }
}

/// Counters as a record of their own: the open batch goes first, so that a
/// batch never waits on them and they are never mixed into its count.
fn stream_stats(
    snapshot: &Snapshot,
    ctx: &Context,
    encoder: &mut Encoder,
    packer: &mut Packer,
    out: &mut Output<'_>,
    encoded: &mut Vec<u8>,
) -> io::Result<()> {
    encoded.clear();
    encoder.encode_stats(ctx, snapshot, encoded);
    packer.flush(|d| out.send(d))?;
    packer.push(encoded, |d| out.send_stats(d))?;
    packer.flush(|d| out.send_stats(d))?;
    // A sink that holds datagrams (UDP's batches) sends them now: the
    // counters are not held back until the next batch ends.
    let delivery = out.sink.flush()?;
    out.account(delivery)
}

/// Run until the channel is closed and drained; everything received is sent
/// or counted as lost before this returns.
///
/// If the output fails for good (`Sink::is_fatal`: stdout's reader is gone),
/// `failed` is raised so that main shuts down, and until the channel closes
/// every record still arriving is counted lost here rather than dropped with
/// the queue.
#[allow(clippy::too_many_arguments)]
pub fn run(
    rx: Receiver<Item>,
    ctx: &Context,
    encoder: Encoder,
    mut packer: Packer,
    sink: &mut dyn Sink,
    cfg: &SenderConfig,
    stats: &Stats,
    failed: &AtomicBool,
) -> Result<()> {
    let mut out = Output { sink, stats, errors: ErrorLog::new("send failed", "records") };
    let error = match pump(&rx, ctx, encoder, &mut packer, &mut out, cfg, stats) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    failed.store(true, Ordering::Release);
    Stats::add(&stats.send_lost, packer.pending_records() as u64);
    for item in rx.iter() {
        if let Item::Record(_) = item {
            Stats::add(&stats.send_lost, 1);
        }
    }
    Err(fatal(error))
}

fn pump(
    rx: &Receiver<Item>,
    ctx: &Context,
    mut encoder: Encoder,
    packer: &mut Packer,
    out: &mut Output<'_>,
    cfg: &SenderConfig,
    stats: &Stats,
) -> io::Result<()> {
    let mut encoded = Vec::with_capacity(4096);
    let mut deadline: Option<Instant> = None;
    let mut in_batch = 0usize;
    let mut final_kernel = None;

    loop {
        let wait_until = deadline.unwrap_or_else(|| Instant::now() + IDLE_TICK);
        let end_batch = match rx.recv_deadline(wait_until) {
            Ok(Item::Stats(snapshot)) => {
                stream_stats(&snapshot, ctx, &mut encoder, packer, out, &mut encoded)?;
                in_batch = 0;
                deadline = None;
                false
            }
            Ok(Item::Final(kernel)) => {
                final_kernel = Some(kernel);
                false
            }
            Ok(Item::Record(rec)) => {
                if cfg.verbose {
                    encoded.clear();
                    encoder.encode(ctx, &rec, &mut encoded);
                    tracing::info!("{}", String::from_utf8_lossy(&encoded));
                    packer.push(&encoded, |d| out.send(d))?;
                } else {
                    packer.push_with(|buf| encoder.encode(ctx, &rec, buf), |d| out.send(d))?;
                }
                in_batch += 1;
                if in_batch == 1 {
                    deadline = Some(Instant::now() + cfg.batch_interval);
                }
                in_batch >= cfg.batch_size || (cfg.flush_when_idle && rx.is_empty())
            }
            Err(RecvTimeoutError::Timeout) if deadline.is_none() => {
                let delivery = out.sink.tick();
                out.account(delivery)?;
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                packer.flush(|d| out.send(d))?;
                let delivery = out.sink.close()?;
                out.account(delivery)?;
                if let Some(kernel) = final_kernel {
                    // Every record is now sent or counted lost: only the
                    // write of this record itself can change a counter.
                    let snapshot = stats.snapshot(kernel);
                    stream_stats(&snapshot, ctx, &mut encoder, packer, out, &mut encoded)?;
                    let delivery = out.sink.flush()?;
                    out.account(delivery)?;
                }
                return Ok(());
            }
        };
        if end_batch {
            packer.flush(|d| out.send(d))?;
            let delivery = out.sink.flush()?;
            out.account(delivery)?;
            in_batch = 0;
            deadline = None;
        }
    }
}
