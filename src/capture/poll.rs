//! The poll thread: ring buffer records to the caller, flow tables drained
//! on their interval or when the kernel asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::RingBuffer;

use super::flows::{wait_for_running_programs, FlowTables};
use crate::error::{Error, Result};
use crate::stats::Stats;

/// Receives each drained flow-table value (a `struct ts_flow`).
pub type FlowSink<'a> = Box<dyn FnMut(&[u8]) + Send + 'a>;

/// Flow aggregation as the poll thread runs it: drain every `interval`, or
/// early when the kernel asks, and hand each flow's raw value to `on_flow`.
pub struct Aggregation<'a, 'obj> {
    pub tables: FlowTables<'obj>,
    pub interval: Duration,
    pub on_flow: FlowSink<'a>,
}

/// Drain the ring buffer (and the flow tables) until `stop` is set, which
/// happens after the programs were detached; then drain everything left.
///
/// The BPF side submits with BPF_RB_NO_WAKEUP (a wakeup per event cost ~9x
/// the program's run time), so nothing wakes this thread: it consumes on a
/// short timer and goes straight back while records keep arriving.
pub fn poll(
    ring: &RingBuffer<'_>,
    stop: &AtomicBool,
    idle_sleep: Duration,
    mut aggregation: Option<Aggregation<'_, '_>>,
    stats: &Stats,
) -> Result<()> {
    let consume = || match ring.consume_raw() {
        n if n < 0 => Err(Error::Io {
            what: "consuming the ring buffer".into(),
            source: std::io::Error::from_raw_os_error(-n),
        }),
        n => Ok(n),
    };
    let mut next_drain = aggregation.as_ref().map(|a| Instant::now() + a.interval);
    while !stop.load(Ordering::Acquire) {
        let consumed = consume()?;
        if let (Some(agg), Some(due)) = (aggregation.as_mut(), next_drain.as_mut()) {
            let early = agg.tables.flush_requested();
            if early || Instant::now() >= *due {
                let flows = agg.tables.drain_active(&mut agg.on_flow)?;
                Stats::add(&stats.flushes, 1);
                Stats::add(&stats.early_flushes, u64::from(early));
                Stats::add(&stats.flow_records, flows as u64);
                *due = Instant::now() + agg.interval;
            }
        }
        if consumed == 0 {
            std::thread::sleep(idle_sleep);
        }
    }
    // A program that was running when its link went away may still submit.
    wait_for_running_programs();
    while consume()? > 0 {}
    if let Some(agg) = aggregation.as_mut() {
        let flows = agg.tables.drain_all(&mut agg.on_flow)?;
        Stats::add(&stats.flushes, 1);
        Stats::add(&stats.flow_records, flows as u64);
    }
    Ok(())
}
