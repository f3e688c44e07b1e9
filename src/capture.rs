//! Load the BPF object, attach the programs the configuration asks for, and
//! poll the ring buffer. The skeleton stays with its owner (the main thread);
//! only the `RingBuffer` moves to the poll thread.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libbpf_rs::btf::types::{Enum, FuncProto, Ptr, Typedef};
use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::config::Sources;
use crate::error::{Error, Result};

mod skel {
    #![allow(clippy::all, dead_code, unused_imports, non_camel_case_types, non_snake_case)]
    include!(concat!(env!("OUT_DIR"), "/trapstream.skel.rs"));
}

/// The kernel ABI types, as generated from the BPF object's BTF.
pub mod abi {
    pub use super::skel::types::{ts_event, ts_packet};

    // SAFETY: both are repr(C) structs of integers and integer arrays with no
    // padding (their sizes are asserted equal to the C layout in `record`),
    // so every byte pattern is a valid value.
    unsafe impl plain::Plain for ts_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for ts_packet {}
}

use skel::{TrapstreamSkel, TrapstreamSkelBuilder};

/// Per-CPU kernel counters (TS_CNT_* in include/trapstream.h), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Tracepoint hits for an enabled source.
    pub seen: u64,
    /// Hits skipped by a kernel-side filter (control traps, SKB_CONSUMED).
    pub filtered: u64,
    /// Events lost because the ring buffer was full.
    pub ring_lost: u64,
}

#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub sources: Sources,
    pub trap_type_mask: u32,
    pub ring_size: u32,
}

/// What the running kernel offers, read from its BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSupport {
    pub devlink_tracepoint: bool,
    /// kfree_skb carries an skb_drop_reason (5.17+).
    pub skb_drop_reason: bool,
}

impl KernelSupport {
    pub fn probe(btf: &Btf<'_>) -> KernelSupport {
        KernelSupport {
            devlink_tracepoint: btf.type_by_name::<Typedef>("btf_trace_devlink_trap_report").is_some(),
            skb_drop_reason: tracepoint_arg_count(btf, "btf_trace_kfree_skb").is_some_and(|n| n >= 3),
        }
    }
}

/// Number of tracepoint arguments (the BTF prototype has a leading `void *`).
fn tracepoint_arg_count(btf: &Btf<'_>, typedef: &str) -> Option<usize> {
    let ty: Typedef<'_> = btf.type_by_name(typedef)?;
    let ptr = Ptr::try_from(ty.next_type()?.skip_mods_and_typedefs()).ok()?;
    let proto = FuncProto::try_from(ptr.next_type()?.skip_mods_and_typedefs()).ok()?;
    Some(proto.len().saturating_sub(1))
}

/// A loaded BPF object with its attached programs.
pub struct Capture<'obj> {
    skel: TrapstreamSkel<'obj>,
    links: Vec<Link>,
}

impl<'obj> Capture<'obj> {
    /// Open, configure and load; attach nothing yet.
    pub fn load(
        cfg: &CaptureConfig,
        support: KernelSupport,
        storage: &'obj mut MaybeUninit<OpenObject>,
    ) -> Result<Capture<'obj>> {
        if cfg.sources.devlink && !support.devlink_tracepoint {
            return Err(Error::Usage(
                "this kernel has no devlink_trap_report tracepoint (no devlink, or older than 5.4); \
                 use --source skb to capture the kernel's own drops"
                    .into(),
            ));
        }
        let mut open =
            TrapstreamSkelBuilder::default().open(storage).map_err(Error::bpf("opening the BPF object"))?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| Error::Usage("BPF object has no .rodata".into()))?;
        rodata.trap_type_mask = cfg.trap_type_mask;
        open.maps.events.set_max_entries(cfg.ring_size).map_err(Error::bpf("sizing the ring buffer"))?;
        let progs = &mut open.progs;
        progs.handle_devlink_trap.set_autoload(cfg.sources.devlink);
        progs.handle_kfree_skb.set_autoload(cfg.sources.skb && support.skb_drop_reason);
        progs.handle_kfree_skb_noreason.set_autoload(cfg.sources.skb && !support.skb_drop_reason);
        progs.dissect_test_frame.set_autoload(false);
        let skel = open.load().map_err(Error::bpf("loading the BPF programs"))?;
        Ok(Capture { skel, links: Vec::new() })
    }

    pub fn attach(&mut self, cfg: &CaptureConfig, support: KernelSupport) -> Result<()> {
        let progs = &self.skel.progs;
        if cfg.sources.devlink {
            let link =
                progs.handle_devlink_trap.attach().map_err(Error::bpf("attaching to devlink_trap_report"))?;
            self.links.push(link);
        }
        if cfg.sources.skb {
            let prog = if support.skb_drop_reason {
                &progs.handle_kfree_skb
            } else {
                &progs.handle_kfree_skb_noreason
            };
            self.links.push(prog.attach().map_err(Error::bpf("attaching to skb:kfree_skb"))?);
        }
        Ok(())
    }

    /// Stop new events; what is already in the ring buffer stays to be drained.
    pub fn detach(&mut self) {
        self.links.clear();
    }

    /// A ring buffer that hands each raw record to `on_record`.
    pub fn ring_buffer<F>(&self, on_record: F) -> Result<RingBuffer<'static>>
    where
        F: FnMut(&[u8]) -> i32 + 'static,
    {
        let mut builder = RingBufferBuilder::new();
        builder.add(&self.skel.maps.events, on_record).map_err(Error::bpf("opening the ring buffer"))?;
        builder.build().map_err(Error::bpf("opening the ring buffer"))
    }

    pub fn kernel_counters(&self) -> Result<KernelCounters> {
        read_counters(&self.skel.maps.counters)
    }
}

fn read_counters(map: &dyn MapCore) -> Result<KernelCounters> {
    let mut sums = [0u64; 4];
    for (index, sum) in sums.iter_mut().enumerate() {
        let key = (index as u32).to_ne_bytes();
        let per_cpu = map
            .lookup_percpu(&key, MapFlags::ANY)
            .map_err(Error::bpf("reading the kernel counters"))?
            .unwrap_or_default();
        *sum = per_cpu
            .iter()
            .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_ne_bytes)
            .sum();
    }
    Ok(KernelCounters { seen: sums[0], filtered: sums[1], ring_lost: sums[2] })
}

/// Drain the ring buffer until `stop` is set (after the programs were
/// detached), then drain it to the end.
///
/// The BPF side submits with BPF_RB_NO_WAKEUP (a wakeup per event cost ~9x
/// the program's run time), so nothing wakes this thread: it consumes on a
/// short timer and goes straight back while records keep arriving.
pub fn poll(ring: &RingBuffer<'_>, stop: &AtomicBool, idle_sleep: Duration) -> Result<()> {
    let consume = || match ring.consume_raw() {
        n if n < 0 => Err(Error::Io {
            what: "consuming the ring buffer".into(),
            source: std::io::Error::from_raw_os_error(-n),
        }),
        n => Ok(n),
    };
    while !stop.load(Ordering::Acquire) {
        if consume()? == 0 {
            std::thread::sleep(idle_sleep);
        }
    }
    // A program that was running when its link went away may still submit:
    // give it a grace period, then drain until the buffer stays empty.
    loop {
        std::thread::sleep(idle_sleep);
        if consume()? == 0 {
            return Ok(());
        }
    }
}

/// skb drop reason names, read from the running kernel's BTF.
#[derive(Debug, Default, Clone)]
pub struct DropReasons {
    names: HashMap<u32, String>,
}

const SUBSYS_SHIFT: u32 = 16;

impl DropReasons {
    pub fn from_btf(btf: &Btf<'_>) -> DropReasons {
        let mut names = HashMap::new();
        if let Some(reasons) = btf.type_by_name::<Enum<'_>>("skb_drop_reason") {
            for m in reasons.iter() {
                if let Some(name) = m.name.and_then(|n| n.to_str()) {
                    let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(name);
                    names.insert(m.value as u32, short.to_string());
                }
            }
        }
        // Subsystem reasons (e.g. openvswitch, mac80211) carry the subsystem in
        // the high bits and are named in the subsystem's own enum: find every
        // enum whose values all sit in one known subsystem's range.
        let mut subsystems = HashMap::new();
        if let Some(subsys) = btf.type_by_name::<Enum<'_>>("skb_drop_reason_subsys") {
            for m in subsys.iter() {
                if let Some(name) = m.name.and_then(|n| n.to_str()) {
                    if let Some(short) = name.strip_prefix("SKB_DROP_REASON_SUBSYS_") {
                        if m.value > 0 && short != "NUM" {
                            subsystems.insert(m.value as u32, short.to_string());
                        }
                    }
                }
            }
        }
        if !subsystems.is_empty() {
            for e in btf.type_by_kind::<Enum<'_>>() {
                let first = e.iter().next().map(|m| (m.value as u32) >> SUBSYS_SHIFT);
                let Some(sub) = first.filter(|s| subsystems.contains_key(s)) else { continue };
                if e.name().is_some_and(|n| n == "skb_drop_reason_subsys")
                    || !e.iter().all(|m| (m.value as u32) >> SUBSYS_SHIFT == sub)
                {
                    continue;
                }
                for m in e.iter() {
                    if let Some(name) = m.name.and_then(|n| n.to_str()) {
                        names.entry(m.value as u32).or_insert_with(|| name.to_string());
                    }
                }
            }
        }
        let subsystems = subsystems;
        DropReasons { names: names.into_iter().chain(subsystem_fallbacks(&subsystems)).collect() }
    }

    /// The kernel's name for a reason, without the SKB_DROP_REASON_ prefix.
    pub fn name(&self, reason: Option<u32>) -> std::borrow::Cow<'_, str> {
        match reason {
            None => "UNKNOWN".into(),
            Some(r) => match self.names.get(&r) {
                Some(n) => n.as_str().into(),
                None => format!("UNKNOWN_{r}").into(),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The value for a name (for tests and filters).
    pub fn value(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(_, n)| n.as_str() == name).map(|(v, _)| *v)
    }
}

/// A subsystem's base value names the subsystem even when its enum is not in
/// vmlinux BTF (a module that is not loaded).
fn subsystem_fallbacks(subsystems: &HashMap<u32, String>) -> Vec<(u32, String)> {
    subsystems.iter().map(|(id, name)| (id << SUBSYS_SHIFT, format!("SUBSYS_{name}"))).collect()
}

/// Run the real dissector and skb handler on synthetic Ethernet frames through
/// BPF_PROG_TEST_RUN and return the records it emitted, in order. Needs a
/// kernel with bpf_cast_to_kern_ctx (6.2+).
pub fn dissect_frames(frames: &[&[u8]]) -> Result<Vec<crate::record::Record>> {
    use std::cell::RefCell;
    use std::rc::Rc;

    let mut storage = MaybeUninit::uninit();
    let mut open =
        TrapstreamSkelBuilder::default().open(&mut storage).map_err(Error::bpf("opening the BPF object"))?;
    open.progs.handle_devlink_trap.set_autoload(false);
    open.progs.handle_kfree_skb.set_autoload(false);
    open.progs.handle_kfree_skb_noreason.set_autoload(false);
    let skel = open.load().map_err(Error::bpf("loading the dissector test program"))?;

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
