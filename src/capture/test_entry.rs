//! BPF_PROG_TEST_RUN entry: the real skb handler on synthetic frames, for
//! the dissector tests and the handler benchmark.

use std::mem::MaybeUninit;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{OpenObject, RingBufferBuilder};

use super::read_counters;
use crate::abi::skel::{self, TrapstreamSkel, TrapstreamSkelBuilder};
use crate::error::{Error, Result};

/// The object with only the tc test entry to load, configured by `configure`.
fn load_test_program<'obj>(
    storage: &'obj mut MaybeUninit<OpenObject>,
    configure: impl FnOnce(&mut skel::OpenTrapstreamSkel<'obj>) -> Result<()>,
) -> Result<TrapstreamSkel<'obj>> {
    let mut open =
        TrapstreamSkelBuilder::default().open(storage).map_err(Error::bpf("opening the BPF object"))?;
    open.progs.handle_devlink_trap.set_autoload(false);
    open.progs.handle_kfree_skb.set_autoload(false);
    open.progs.handle_kfree_skb_noreason.set_autoload(false);
    configure(&mut open)?;
    open.load().map_err(Error::bpf("loading the test program"))
}

/// Run the real dissector and skb handler on synthetic Ethernet frames through
/// BPF_PROG_TEST_RUN and return the records it emitted, in order. Needs a
/// kernel with bpf_cast_to_kern_ctx (6.2+).
pub fn dissect_frames(frames: &[&[u8]]) -> Result<Vec<crate::record::Record>> {
    use std::cell::RefCell;
    use std::rc::Rc;

    let mut storage = MaybeUninit::uninit();
    let skel = load_test_program(&mut storage, |_| Ok(()))?;

    let decoded = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&decoded);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, move |bytes: &[u8]| {
            sink.borrow_mut().push(crate::record::decode(bytes, 0));
            0
        })
        .map_err(Error::bpf("opening the ring buffer"))?;
    let ring = builder.build().map_err(Error::bpf("opening the ring buffer"))?;

    let mut records = Vec::with_capacity(frames.len());
    for frame in frames {
        let input = libbpf_rs::ProgramInput { data_in: Some(frame), ..Default::default() };
        skel.progs
            .dissect_test_frame
            .test_run(input)
            .map_err(Error::bpf(format!("BPF_PROG_TEST_RUN on a {}-byte frame", frame.len())))?;
        ring.consume().map_err(Error::bpf("consuming the ring buffer"))?;
        let mut got = decoded.borrow_mut();
        if got.len() != 1 {
            return Err(Error::Usage(format!("test run emitted {} records, expected 1", got.len())));
        }
        records.push(got.remove(0)?);
    }
    Ok(records)
}

/// Mean run time of the real skb handler on `frame`, over `repeat` runs in
/// the kernel (BPF_PROG_TEST_RUN), per event or counting into flow tables of
/// `flow_capacity` keys. For benchmarks: the ring buffer is sized so that a
/// per-event run of up to 100,000 repeats never finds it full.
pub fn time_handler(frame: &[u8], repeat: u32, flow_capacity: Option<u32>) -> Result<Duration> {
    if repeat == 0 || repeat > 100_000 {
        return Err(Error::Usage(format!("repeat must be 1..=100000, got {repeat}")));
    }
    let mut storage = MaybeUninit::uninit();
    let skel = load_test_program(&mut storage, |open| {
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| Error::Usage("BPF object has no .rodata".into()))?;
        rodata.aggregate = flow_capacity.is_some();
        rodata.flow_capacity = flow_capacity.unwrap_or(1);
        // 100,000 events of 328 bytes with their headers fit in 64 MiB.
        open.maps.events.set_max_entries(64 << 20).map_err(Error::bpf("sizing the ring buffer"))?;
        super::size_flow_tables(&mut open.maps, flow_capacity)?;
        Ok(())
    })?;
    let input = libbpf_rs::ProgramInput { data_in: Some(frame), repeat, ..Default::default() };
    let output =
        skel.progs.dissect_test_frame.test_run(input).map_err(Error::bpf("BPF_PROG_TEST_RUN with repeat"))?;
    let lost = read_counters(&skel.maps.counters)?.ring_lost;
    if lost > 0 {
        return Err(Error::Usage(format!(
            "{lost} events found the ring buffer full: the timing would be of the loss path"
        )));
    }
    Ok(output.duration)
}
