//! Load the BPF object, attach the programs the configuration asks for, and
//! poll the ring buffer. The skeleton stays with its owner (the main thread);
//! only the `RingBuffer` moves to the poll thread.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::btf::types::{Enum, FuncProto, Ptr, Typedef};
use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::config::Sources;
use crate::error::{Error, Result};
use crate::record::{FLOW_KEY_SIZE, FLOW_SIZE};
use crate::stats::Stats;

mod skel {
    #![allow(clippy::all, dead_code, unused_imports, non_camel_case_types, non_snake_case)]
    include!(concat!(env!("OUT_DIR"), "/trapstream.skel.rs"));
}

/// The kernel ABI types, as generated from the BPF object's BTF.
pub mod abi {
    pub use super::skel::types::{ts_event, ts_filter_key, ts_flow, ts_flow_key, ts_packet};

    // SAFETY: both are repr(C) structs of integers and integer arrays with no
    // padding (their sizes are asserted equal to the C layout in `record`),
    // so every byte pattern is a valid value.
    unsafe impl plain::Plain for ts_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for ts_packet {}
    // SAFETY: as above (u64 counters followed by a ts_event).
    unsafe impl plain::Plain for ts_flow {}
    // SAFETY: as above.
    unsafe impl plain::Plain for ts_flow_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for ts_filter_key {}
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
    /// Packets counted into a flow table (-u).
    pub aggregated: u64,
    /// Packets sent alone because the flow table was full (-u).
    pub overflow: u64,
    /// Events suppressed by --rate-limit.
    pub rate_limited: u64,
}

#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub sources: Sources,
    pub trap_type_mask: u32,
    pub ring_size: u32,
    /// Count per flow in the kernel (-u) with tables of this many keys.
    pub flow_capacity: Option<u32>,
    pub filters: Filters,
    /// Events per second each trap or drop reason may emit (0: no limit).
    pub rate_limit: u64,
    /// trapstream's own datagrams (local address, collector): their drops are not reported.
    pub own_traffic: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

/// Kernel-side filters. A packet passes a kind when that kind's include list
/// is empty or names it, and its exclude list does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub include_trap_names: Vec<String>,
    pub exclude_trap_names: Vec<String>,
    pub include_trap_groups: Vec<String>,
    pub exclude_trap_groups: Vec<String>,
    pub include_ports: Vec<String>,
    pub exclude_ports: Vec<String>,
    /// skb drop reasons by name (NO_SOCKET), as the kernel's BTF names them.
    pub include_reasons: Vec<String>,
    pub exclude_reasons: Vec<String>,
    /// Network namespaces by inode (`stat -L -c %i /run/netns/NAME`).
    pub include_netns: Vec<u32>,
    pub exclude_netns: Vec<u32>,
}

const TS_FILTER_TRAP_NAME: u32 = 1;
const TS_FILTER_TRAP_GROUP: u32 = 2;
const TS_FILTER_PORT: u32 = 3;
const TS_FILTER_REASON: u32 = 4;
const TS_FILTER_NETNS: u32 = 5;
const TS_FILTER_INCLUDE: u8 = 1;
const TS_FILTER_EXCLUDE: u8 = 2;
/// Entries the kernel's filter map holds.
pub const MAX_FILTER_ENTRIES: usize = 1024;

/// One filter map entry: (kind, key bytes, verdict bit).
type FilterEntry = (u32, Vec<u8>, u8);

impl Filters {
    /// Check every name against what the kernel can match (for --check-config).
    pub fn check(&self, reasons: &DropReasons) -> Result<()> {
        self.entries(reasons).map(|_| ())
    }

    /// The map entries, with names checked against what the kernel can match.
    fn entries(&self, reasons: &DropReasons) -> Result<Vec<FilterEntry>> {
        let mut out = Vec::new();
        let lists = [
            (TS_FILTER_TRAP_NAME, &self.include_trap_names, TS_FILTER_INCLUDE, 48, "trap name"),
            (TS_FILTER_TRAP_NAME, &self.exclude_trap_names, TS_FILTER_EXCLUDE, 48, "trap name"),
            (TS_FILTER_TRAP_GROUP, &self.include_trap_groups, TS_FILTER_INCLUDE, 32, "trap group"),
            (TS_FILTER_TRAP_GROUP, &self.exclude_trap_groups, TS_FILTER_EXCLUDE, 32, "trap group"),
            (TS_FILTER_PORT, &self.include_ports, TS_FILTER_INCLUDE, 16, "port"),
            (TS_FILTER_PORT, &self.exclude_ports, TS_FILTER_EXCLUDE, 16, "port"),
        ];
        for (kind, list, verdict, size, what) in lists {
            for name in list {
                // The kernel compares NUL-terminated names of a fixed size.
                if name.is_empty() || name.len() >= size {
                    let name = crate::error::one_line(name);
                    return Err(Error::Usage(format!("{what} '{name}' must be 1..{} characters", size - 1)));
                }
                out.push((kind, name.as_bytes().to_vec(), verdict));
            }
        }
        for (list, verdict) in
            [(&self.include_reasons, TS_FILTER_INCLUDE), (&self.exclude_reasons, TS_FILTER_EXCLUDE)]
        {
            for name in list {
                let value = reasons.value(name).ok_or_else(|| {
                    let name = crate::error::one_line(name);
                    Error::Usage(format!(
                        "skb drop reason '{name}' is not known to this kernel (enum skb_drop_reason)"
                    ))
                })?;
                out.push((TS_FILTER_REASON, value.to_ne_bytes().to_vec(), verdict));
            }
        }
        for (list, verdict) in
            [(&self.include_netns, TS_FILTER_INCLUDE), (&self.exclude_netns, TS_FILTER_EXCLUDE)]
        {
            out.extend(list.iter().map(|ino| (TS_FILTER_NETNS, ino.to_ne_bytes().to_vec(), verdict)));
        }
        if out.len() > MAX_FILTER_ENTRIES {
            return Err(Error::Usage(format!("{} filter entries; at most {MAX_FILTER_ENTRIES}", out.len())));
        }
        Ok(out)
    }
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
        let filters = cfg.filters.entries(reasons)?;
        for (kind, _, verdict) in &filters {
            rodata.filter_kinds |= 1 << kind;
            if *verdict == TS_FILTER_INCLUDE {
                rodata.filter_include_kinds |= 1 << kind;
            }
        }
        open.maps.events.set_max_entries(cfg.ring_size).map_err(Error::bpf("sizing the ring buffer"))?;
        // Tables are preallocated: without aggregation keep them one entry small.
        for table in [&mut open.maps.flows0, &mut open.maps.flows1] {
            table
                .set_max_entries(cfg.flow_capacity.unwrap_or(1))
                .map_err(Error::bpf("sizing the flow tables"))?;
        }
        let progs = &mut open.progs;
        progs.handle_devlink_trap.set_autoload(cfg.sources.devlink);
        progs.handle_kfree_skb.set_autoload(cfg.sources.skb && support.skb_drop_reason);
        progs.handle_kfree_skb_noreason.set_autoload(cfg.sources.skb && !support.skb_drop_reason);
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
        Ok(Capture { skel, links: Vec::new() })
    }

    /// The flow tables and their shared state, for the poll thread. Once only.
    pub fn flow_tables(&mut self) -> Result<FlowTables<'obj>> {
        let shared = self
            .skel
            .maps
            .bss_data
            .take()
            .ok_or_else(|| Error::Usage("the flow tables were already handed out".into()))?;
        let handle = |map: &libbpf_rs::MapMut<'_>| {
            libbpf_rs::MapHandle::try_from(map).map_err(Error::bpf("opening a flow table"))
        };
        Ok(FlowTables {
            tables: [handle(&self.skel.maps.flows0)?, handle(&self.skel.maps.flows1)?],
            shared,
            active: 0,
            keys: Vec::new(),
            values: Vec::new(),
            batch_supported: true,
        })
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
    let mut sums = [0u64; 6];
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
    })
}

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

/// Returns once every BPF program run that started before the call has
/// finished. MEMBARRIER_CMD_GLOBAL is synchronize_rcu(), and tracing programs
/// run inside an RCU read-side section; where it is refused (nohz_full), a
/// sleep far longer than any program run stands in.
fn wait_for_running_programs() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if rc != 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kernel's two flow tables and the state it shares with user space
/// through the mmap'ed .bss (`active_table`, `table_entries`, `flush_requested`).
///
/// Programs count into the active table only. Draining flips `active_table`,
/// waits until no program can still be writing the old table, and only then
/// reads and empties it: no increment can land between a read and a delete.
pub struct FlowTables<'obj> {
    tables: [libbpf_rs::MapHandle; 2],
    shared: &'obj mut skel::types::bss,
    active: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    batch_supported: bool,
}

impl FlowTables<'_> {
    fn shared(&self, field: &u32) -> &AtomicU32 {
        // SAFETY: the field lives in the .bss map's mmap for as long as the
        // skeleton ('obj); BPF programs update it concurrently, so it is only
        // ever accessed atomically from here. u32 and AtomicU32 share layout.
        unsafe { AtomicU32::from_ptr(field as *const u32 as *mut u32) }
    }

    pub fn flush_requested(&self) -> bool {
        self.shared(&self.shared.flush_requested).load(Ordering::Relaxed) != 0
    }

    /// Switch the programs to the other table and drain the one they used.
    pub fn drain_active(&mut self, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let old = self.active;
        self.active = 1 - old;
        self.shared(&self.shared.active_table).store(self.active as u32, Ordering::Release);
        wait_for_running_programs();
        self.shared(&self.shared.flush_requested).store(0, Ordering::Relaxed);
        self.drain_table(old, on_flow)
    }

    /// Drain both tables; only when no program is attached any more.
    pub fn drain_all(&mut self, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        Ok(self.drain_table(self.active, on_flow)? + self.drain_table(1 - self.active, on_flow)?)
    }

    fn drain_table(&mut self, idx: usize, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let drained = if self.batch_supported {
            match self.drain_batched(idx, on_flow)? {
                Some(n) => n,
                None => {
                    self.batch_supported = false;
                    self.drain_one_by_one(idx, on_flow)?
                }
            }
        } else {
            self.drain_one_by_one(idx, on_flow)?
        };
        let entries = &self.shared.table_entries[idx];
        self.shared(entries).store(0, Ordering::Relaxed);
        Ok(drained)
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_BATCH (5.6+). None when the kernel refuses it
    /// before anything was drained.
    fn drain_batched(&mut self, idx: usize, on_flow: &mut dyn FnMut(&[u8])) -> Result<Option<usize>> {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = self.tables[idx].as_fd().as_raw_fd();
        let mut batch = 64usize;
        let mut token_in = 0u64;
        let mut token_out = 0u64;
        let mut first = true;
        let mut drained = 0;
        let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
            ..Default::default()
        };
        loop {
            self.keys.resize(batch * FLOW_KEY_SIZE, 0);
            self.values.resize(batch * FLOW_SIZE, 0);
            let mut count = batch as u32;
            let in_ptr = if first { std::ptr::null_mut() } else { (&mut token_in as *mut u64).cast() };
            // SAFETY: the key and value buffers hold `count` entries of the
            // map's key and value sizes; the tokens are 8 bytes (the kernel
            // uses 4 for hash maps); opts is initialised with its size.
            let rc = unsafe {
                libbpf_rs::libbpf_sys::bpf_map_lookup_and_delete_batch(
                    fd,
                    in_ptr,
                    (&mut token_out as *mut u64).cast(),
                    self.keys.as_mut_ptr().cast(),
                    self.values.as_mut_ptr().cast(),
                    &mut count,
                    &opts,
                )
            };
            let err = if rc < 0 { -rc } else { 0 };
            if err == libc::ENOSPC {
                // A bucket holds more keys than the buffer: retry with room.
                batch *= 4;
                continue;
            }
            if err != 0 && err != libc::ENOENT {
                if first && matches!(err, libc::EINVAL | libc::EOPNOTSUPP | 524 /* ENOTSUPP */) {
                    return Ok(None);
                }
                return Err(Error::Io {
                    what: "draining a flow table".into(),
                    source: std::io::Error::from_raw_os_error(err),
                });
            }
            let count = (count as usize).min(batch);
            for value in self.values[..count * FLOW_SIZE].chunks_exact(FLOW_SIZE) {
                on_flow(value);
            }
            drained += count;
            if err == libc::ENOENT {
                return Ok(Some(drained));
            }
            token_in = token_out;
            first = false;
        }
    }

    /// Fallback for kernels without batch operations: no program writes this
    /// table any more, so reading every key and then deleting it is exact.
    fn drain_one_by_one(&mut self, idx: usize, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let table = &self.tables[idx];
        let keys: Vec<Vec<u8>> = table.keys().collect();
        for key in &keys {
            if let Some(value) =
                table.lookup(key, MapFlags::ANY).map_err(Error::bpf("reading a flow table"))?
            {
                on_flow(&value);
            }
            table.delete(key).map_err(Error::bpf("emptying a flow table"))?;
        }
        Ok(keys.len())
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
        for table in [&mut open.maps.flows0, &mut open.maps.flows1] {
            table
                .set_max_entries(flow_capacity.unwrap_or(1))
                .map_err(Error::bpf("sizing the flow tables"))?;
        }
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
