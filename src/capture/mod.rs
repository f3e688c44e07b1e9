//! Applies a configuration to the kernel: loads the BPF object, attaches the
//! programs the sources ask for, and reads the counters. The skeleton stays
//! with its owner (the main thread); only the `RingBuffer` moves to the poll
//! thread. One concern a file: `filters` (lists -> map entries), `reasons`
//! (drop-reason names), `flows` (the aggregation tables), `poll` (the poll
//! thread), `sdk_types` (the vendor SDK's trap types -> map entries),
//! `test_entry` (BPF_PROG_TEST_RUN for tests and benchmarks).

mod filters;
mod flows;
mod poll;
mod reasons;
mod sdk_types;
mod test_entry;

pub use filters::{check_filters, unmatchable_filters};
pub use flows::FlowTables;
pub use poll::{poll, Aggregation, FlowSink};
pub use reasons::DropReasons;
// The encoders' tests build drop-reason tables with hostile names.
#[cfg(test)]
pub(crate) use reasons::NamedEnum;
pub use test_entry::{dissect_frames, time_handler};

use std::mem::MaybeUninit;

use libbpf_rs::btf::types::{FuncProto, Ptr, Typedef};
use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::abi;
use crate::abi::skel::{TrapstreamSkel, TrapstreamSkelBuilder};
use crate::config::{Filters, Sources};
use crate::error::{Error, Result};
use crate::stats::KernelCounters;

#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub sources: Sources,
    pub trap_type_mask: u32,
    pub ring_size: u32,
    /// Count per flow in the kernel (-u) with tables of this many keys.
    pub flow_capacity: Option<u32>,
    /// With -u: the first this many packets of each new flow key go out alone at once (0: off).
    pub exemplars: u32,
    pub filters: Filters,
    /// Events per second each trap or drop reason may emit (0: no limit).
    pub rate_limit: u64,
    /// trapstream's own datagrams (local address, collector): their drops are not reported.
    pub own_traffic: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// --pcap: packet bytes each event carries (0: none, the events stay headers only).
    pub raw_snap_len: u32,
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
    loaded: Loaded,
}

/// Which programs were loaded: only those have statistics to read.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    devlink: bool,
    skb_reason: bool,
    skb_noreason: bool,
}

impl<'obj> Capture<'obj> {
    /// Open, configure and load; attach nothing yet.
    pub fn load(
        cfg: &CaptureConfig,
        support: KernelSupport,
        reasons: &DropReasons,
        storage: &'obj mut MaybeUninit<OpenObject>,
    ) -> Result<Capture<'obj>> {
        if cfg.sources.devlink && !support.devlink_tracepoint {
            return Err(Error::Environment(
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
        rodata.aggregate = cfg.flow_capacity.is_some();
        rodata.flow_capacity = cfg.flow_capacity.unwrap_or(1);
        rodata.rate_limit = cfg.rate_limit;
        rodata.exemplars = if cfg.flow_capacity.is_some() { cfg.exemplars } else { 0 };
        rodata.track_sdk_copies = cfg.sources.devlink && cfg.sources.skb;
        rodata.raw_snap_len = cfg.raw_snap_len;
        if let Some((local, collector)) = cfg.own_traffic {
            rodata.self_sport = local.port();
            rodata.self_dport = collector.port();
            rodata.self_daddr = match collector.ip() {
                std::net::IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    b
                }
                std::net::IpAddr::V6(a) => a.octets(),
            };
        }
        let filters = filters::entries(&cfg.filters, reasons)?;
        for (kind, _, verdict) in &filters {
            rodata.filter_kinds |= 1 << kind;
            if *verdict == filters::INCLUDE {
                rodata.filter_include_kinds |= 1 << kind;
            }
        }
        open.maps.events.set_max_entries(cfg.ring_size).map_err(Error::bpf("sizing the ring buffer"))?;
        size_flow_tables(&mut open.maps, cfg.flow_capacity)?;
        open.maps
            .exemplar_seen
            .set_max_entries(exemplar_memory(cfg))
            .map_err(Error::bpf("sizing the exemplar memory"))?;
        let loaded = Loaded {
            devlink: cfg.sources.devlink,
            skb_reason: cfg.sources.skb && support.skb_drop_reason,
            skb_noreason: cfg.sources.skb && !support.skb_drop_reason,
        };
        let progs = &mut open.progs;
        progs.handle_devlink_trap.set_autoload(loaded.devlink);
        progs.handle_kfree_skb.set_autoload(loaded.skb_reason);
        progs.handle_kfree_skb_noreason.set_autoload(loaded.skb_noreason);
        progs.dissect_test_frame.set_autoload(false);
        let skel = open.load().map_err(Error::bpf("loading the BPF programs"))?;
        for (kind, name, verdict) in filters {
            let mut key = abi::ts_filter_key { kind, ..Default::default() };
            for (dst, src) in key.name.iter_mut().zip(&name) {
                *dst = *src as i8;
            }
            // SAFETY: ts_filter_key is plain data without padding.
            let bytes = unsafe { plain::as_bytes(&key) };
            // Both lists may name the same key: the verdict bits add up.
            let old = skel.maps.filters.lookup(bytes, MapFlags::ANY).ok().flatten();
            let verdict = verdict | old.and_then(|v| v.first().copied()).unwrap_or(0);
            skel.maps
                .filters
                .update(bytes, &[verdict], MapFlags::ANY)
                .map_err(Error::bpf("setting a filter"))?;
        }
        // Filled before anything is attached, so that no SDK report is
        // judged by the type the SDK gives (always drop).
        for (key, kind) in sdk_types::entries() {
            // SAFETY: ts_filter_key is plain data without padding.
            let bytes = unsafe { plain::as_bytes(&key) };
            skel.maps
                .sdk_trap_types
                .update(bytes, &[kind], MapFlags::ANY)
                .map_err(Error::bpf("setting a vendor SDK trap type"))?;
        }
        Ok(Capture { skel, links: Vec::new(), loaded })
    }

    /// The flow tables and their shared state, for the poll thread. Once only.
    pub fn flow_tables(&mut self) -> Result<FlowTables<'obj>> {
        let shared = self
            .skel
            .maps
            .bss_data
            .take()
            .ok_or_else(|| Error::Usage("the flow tables were already handed out".into()))?;
        let maps = &self.skel.maps;
        FlowTables::new(
            shared,
            [&maps.flows0, &maps.flows1],
            [&maps.counts0, &maps.counts1],
            [&maps.counts6_0, &maps.counts6_1],
        )
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
        let mut counters = read_counters(&self.skel.maps.counters)?;
        let progs = &self.skel.progs;
        for (loaded, prog) in [
            (self.loaded.devlink, &progs.handle_devlink_trap),
            (self.loaded.skb_reason, &progs.handle_kfree_skb),
            (self.loaded.skb_noreason, &progs.handle_kfree_skb_noreason),
        ] {
            if loaded {
                counters.nested += recursion_misses(prog)?;
            }
        }
        Ok(counters)
    }
}

/// Keys `exemplar_seen` remembers: four flow tables' worth, so that a flow
/// forgets it had its exemplars only after that many newer keys; one (the
/// least an LRU map takes) when exemplars are off.
fn exemplar_memory(cfg: &CaptureConfig) -> u32 {
    match cfg.flow_capacity {
        Some(keys) if cfg.exemplars > 0 => keys.saturating_mul(4).max(EXEMPLAR_MEMORY_MIN),
        _ => 1,
    }
}

/// The least `exemplar_seen` holds with exemplars on.
const EXEMPLAR_MEMORY_MIN: u32 = 4096;

/// The per-CPU counters summed over CPUs, in TS_CNT_* order.
fn read_counters(map: &dyn MapCore) -> Result<KernelCounters> {
    let mut sums = [0u64; 9];
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
    Ok(KernelCounters {
        seen: sums[0],
        filtered: sums[1],
        ring_lost: sums[2],
        aggregated: sums[3],
        overflow: sums[4],
        rate_limited: sums[5],
        nested: sums[6],
        sdk_frees: sums[7],
        exemplars: sums[8],
    })
}

/// How often the kernel skipped a run of this program because it was
/// already running on that CPU (bpf_prog_info.recursion_misses, 5.12+; 0
/// where the kernel does not count, and there our own guard counts).
fn recursion_misses(prog: &impl AsFd) -> Result<u64> {
    use libbpf_rs::libbpf_sys::{bpf_prog_get_info_by_fd, bpf_prog_info};
    let mut info = bpf_prog_info::default();
    let mut len = std::mem::size_of::<bpf_prog_info>() as u32;
    // SAFETY: info is a zeroed bpf_prog_info of `len` bytes that the kernel
    // fills (at most `len` bytes); it holds no pointers for it to follow.
    let rc = unsafe { bpf_prog_get_info_by_fd(prog.as_fd().as_raw_fd(), &mut info, &mut len) };
    if rc < 0 {
        return Err(Error::Io {
            what: "reading a BPF program's statistics".into(),
            source: std::io::Error::from_raw_os_error(-rc),
        });
    }
    Ok(info.recursion_misses)
}

/// Sizes the flow tables and their twins to `capacity` keys each (-u).
/// They are preallocated: without aggregation they stay one entry small.
fn size_flow_tables(maps: &mut abi::skel::OpenTrapstreamMaps<'_>, capacity: Option<u32>) -> Result<()> {
    for table in [
        &mut maps.flows0,
        &mut maps.flows1,
        &mut maps.counts0,
        &mut maps.counts1,
        &mut maps.counts6_0,
        &mut maps.counts6_1,
    ] {
        table.set_max_entries(capacity.unwrap_or(1)).map_err(Error::bpf("sizing the flow tables"))?;
    }
    Ok(())
}
