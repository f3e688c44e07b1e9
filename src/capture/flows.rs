//! The double-buffered flow tables (-u) and their drain.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags};

use crate::abi::skel;
use crate::error::{Error, Result};
use crate::record::{widen_flow_key, FLOW_COUNT_SIZE, FLOW_KEY4_SIZE, FLOW_KEY_SIZE, FLOW_SIZE};

type FlowKey = [u8; FLOW_KEY_SIZE];

/// Which map of a table a drain reads: the flows, or one of their per-CPU
/// twins (compact keys: flows without IPv6 addresses; wide keys: IPv6).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Flows,
    Counts,
    Counts6,
}

impl Table {
    fn key_size(self) -> usize {
        match self {
            Table::Counts => FLOW_KEY4_SIZE,
            Table::Flows | Table::Counts6 => FLOW_KEY_SIZE,
        }
    }
}

/// A flow's per-CPU counts (`struct ts_flow_count`), summed over the CPUs.
#[derive(Clone, Copy, Default)]
struct Counted {
    packets: u64,
    bytes: u64,
    last_ns: u64,
}

/// The kernel's two flow tables and the state it shares with user space
/// through the mmap'ed .bss (`active_table`, `table_entries`, `flush_requested`).
///
/// Programs count into the active table only. Draining flips `active_table`,
/// waits until no program can still be writing the old table, and only then
/// reads and empties it: no increment can land between a read and a delete.
///
/// Each flow table has per-CPU twins (`counts0/1` and `counts6_0/1`) that
/// count a flow's packets after its first; a drain empties the twins first
/// and adds their sums into the flow's entry, so `on_flow` sees every packet
/// of the flow.
pub struct FlowTables<'obj> {
    tables: [libbpf_rs::MapHandle; 2],
    counts: [libbpf_rs::MapHandle; 2],
    counts6: [libbpf_rs::MapHandle; 2],
    shared: SharedWords<'obj>,
    active: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    counted: HashMap<FlowKey, Counted>,
    cpus: usize,
    batch_supported: bool,
}

/// The .bss words the programs share with user space, kept as raw pointers
/// into the map's mmap: the programs write them while we read them, so no
/// Rust reference to them may exist, only atomic accesses through pointers.
struct SharedWords<'obj> {
    active_table: *mut u32,
    table_entries: [*mut u32; 2],
    flush_requested: *mut u32,
    _mapping: std::marker::PhantomData<&'obj mut skel::types::bss>,
}

// SAFETY: the pointers are into a kernel-shared mapping that any thread may
// access atomically; FlowTables is moved to the poll thread whole and used by
// it alone.
unsafe impl Send for SharedWords<'_> {}

impl<'obj> FlowTables<'obj> {
    /// Takes the skeleton's .bss view for good: from here on it is only
    /// reached through `SharedWords`.
    pub(super) fn new(
        bss: &'obj mut skel::types::bss,
        flows: [&libbpf_rs::MapMut<'_>; 2],
        counts: [&libbpf_rs::MapMut<'_>; 2],
        counts6: [&libbpf_rs::MapMut<'_>; 2],
    ) -> Result<FlowTables<'obj>> {
        let bss: *mut skel::types::bss = bss;
        // SAFETY: bss points to the .bss mmap, valid for 'obj (the lifetime
        // libbpf-rs gives the skeleton's view of it); addr_of_mut! makes field
        // pointers without creating a reference.
        let shared = unsafe {
            SharedWords {
                active_table: std::ptr::addr_of_mut!((*bss).active_table),
                table_entries: [
                    std::ptr::addr_of_mut!((*bss).table_entries[0]),
                    std::ptr::addr_of_mut!((*bss).table_entries[1]),
                ],
                flush_requested: std::ptr::addr_of_mut!((*bss).flush_requested),
                _mapping: std::marker::PhantomData,
            }
        };
        let handle = |map: &libbpf_rs::MapMut<'_>| {
            libbpf_rs::MapHandle::try_from(map).map_err(Error::bpf("opening a flow table"))
        };
        let cpus = libbpf_rs::num_possible_cpus().map_err(Error::bpf("counting the possible CPUs"))?;
        Ok(FlowTables {
            tables: [handle(flows[0])?, handle(flows[1])?],
            counts: [handle(counts[0])?, handle(counts[1])?],
            counts6: [handle(counts6[0])?, handle(counts6[1])?],
            shared,
            active: 0,
            keys: Vec::new(),
            values: Vec::new(),
            counted: HashMap::new(),
            cpus,
            batch_supported: true,
        })
    }
}

impl SharedWords<'_> {
    fn word(&self, ptr: *mut u32) -> &AtomicU32 {
        // SAFETY: ptr is one of the field pointers made in FlowTables::new:
        // aligned, inside the mapping for 'obj, and only ever accessed
        // atomically from Rust (the programs' own accesses are the kernel's).
        unsafe { AtomicU32::from_ptr(ptr) }
    }
}

impl FlowTables<'_> {
    pub fn flush_requested(&self) -> bool {
        self.shared.word(self.shared.flush_requested).load(Ordering::Relaxed) != 0
    }

    /// Switch the programs to the other table and drain the one they used.
    pub fn drain_active(&mut self, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let old = self.active;
        self.active = 1 - old;
        self.shared.word(self.shared.active_table).store(self.active as u32, Ordering::Release);
        wait_for_running_programs();
        self.shared.word(self.shared.flush_requested).store(0, Ordering::Relaxed);
        self.drain_table(old, on_flow)
    }

    /// Drain both tables; only when no program is attached any more.
    pub fn drain_all(&mut self, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        Ok(self.drain_table(self.active, on_flow)? + self.drain_table(1 - self.active, on_flow)?)
    }

    fn drain_table(&mut self, idx: usize, on_flow: &mut dyn FnMut(&[u8])) -> Result<usize> {
        self.counted.clear();
        let mut counted = std::mem::take(&mut self.counted);
        for twin in [Table::Counts, Table::Counts6] {
            self.drain_map(twin, idx, &mut |key, per_cpu| add_counts(&mut counted, key, per_cpu))?;
        }
        let mut flow = Vec::with_capacity(FLOW_SIZE);
        let drained = self.drain_map(Table::Flows, idx, &mut |key, value| {
            flow.clear();
            flow.extend_from_slice(value);
            if let Some(c) = key.try_into().ok().and_then(|k: FlowKey| counted.remove(&k)) {
                add_into_flow(&mut flow, c);
            }
            on_flow(&flow);
        })?;
        self.shared.word(self.shared.table_entries[idx]).store(0, Ordering::Relaxed);
        // A key's slots are made only after its entry (count_flow), and both
        // tables were frozen by the flip: slots without an entry cannot be.
        // Should a kernel prove that wrong, say so rather than drop them unseen.
        if !counted.is_empty() {
            let packets: u64 = counted.values().map(|c| c.packets).sum();
            tracing::error!(
                "{packets} counted packets of {} flows had no flow entry to report them by",
                counted.len()
            );
            debug_assert!(false, "per-CPU counts without a flow entry");
        }
        self.counted = counted;
        Ok(drained)
    }

    /// Reads and empties one map of table `idx`, an entry at a time to
    /// `on_entry` (key, value): in batches where the kernel has them (the
    /// first refusal turns them off for good), key by key otherwise. A
    /// twin's value is every possible CPU's slot, one after another.
    /// Returns how many entries it read.
    fn drain_map(
        &mut self,
        table: Table,
        idx: usize,
        on_entry: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let fd = self.map(table, idx).as_fd().as_raw_fd();
        let value_size = match table {
            Table::Flows => FLOW_SIZE,
            Table::Counts | Table::Counts6 => self.cpus * FLOW_COUNT_SIZE,
        };
        if self.batch_supported {
            if let Some(n) = self.drain_batched(fd, table.key_size(), value_size, on_entry)? {
                return Ok(n);
            }
            self.batch_supported = false;
        }
        drain_one_by_one(self.map(table, idx), table != Table::Flows, on_entry)
    }

    fn map(&self, table: Table, idx: usize) -> &libbpf_rs::MapHandle {
        match table {
            Table::Flows => &self.tables[idx],
            Table::Counts => &self.counts[idx],
            Table::Counts6 => &self.counts6[idx],
        }
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_BATCH (5.6+). None when the kernel refuses it
    /// before anything was drained.
    /// `value_size`: the map's value as the batch returns it (per-CPU maps:
    /// every possible CPU's slot, 8-byte aligned).
    fn drain_batched(
        &mut self,
        fd: std::os::fd::RawFd,
        key_size: usize,
        value_size: usize,
        on_entry: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<Option<usize>> {
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
            self.keys.resize(batch * key_size, 0);
            self.values.resize(batch * value_size, 0);
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
            let keys = self.keys[..count * key_size].chunks_exact(key_size);
            for (key, value) in keys.zip(self.values[..count * value_size].chunks_exact(value_size)) {
                on_entry(key, value);
            }
            drained += count;
            if err == libc::ENOENT {
                return Ok(Some(drained));
            }
            token_in = token_out;
            first = false;
        }
    }
}

/// Fallback for kernels without batch operations: no program writes this
/// table any more, so reading every key and then deleting it is exact.
/// `per_cpu`: the value is every possible CPU's slot, one after another.
fn drain_one_by_one(
    table: &libbpf_rs::MapHandle,
    per_cpu: bool,
    on_entry: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<usize> {
    let keys: Vec<Vec<u8>> = table.keys().collect();
    for key in &keys {
        if per_cpu {
            if let Some(slots) =
                table.lookup_percpu(key, MapFlags::ANY).map_err(Error::bpf("reading a flow table"))?
            {
                on_entry(key, &slots.concat());
            }
        } else if let Some(value) =
            table.lookup(key, MapFlags::ANY).map_err(Error::bpf("reading a flow table"))?
        {
            on_entry(key, &value);
        }
        table.delete(key).map_err(Error::bpf("emptying a flow table"))?;
    }
    Ok(keys.len())
}

/// Adds one key's per-CPU slots (`struct ts_flow_count` each) into
/// `counted`, under the flow table's (wide) key of the flow.
fn add_counts(counted: &mut HashMap<FlowKey, Counted>, key: &[u8], per_cpu: &[u8]) {
    let Some(key) = FlowKey::try_from(key).ok().or_else(|| widen_flow_key(key)) else { return };
    let sum = counted.entry(key).or_default();
    for slot in per_cpu.chunks_exact(FLOW_COUNT_SIZE) {
        sum.packets += word(slot, 0);
        sum.bytes += word(slot, 1);
        sum.last_ns = sum.last_ns.max(word(slot, 2));
    }
}

/// Adds a flow's per-CPU sums into its entry (`struct ts_flow`: packets,
/// bytes, first_ns, last_ns lead it).
fn add_into_flow(value: &mut [u8], c: Counted) {
    set_word(value, 0, word(value, 0) + c.packets);
    set_word(value, 1, word(value, 1) + c.bytes);
    set_word(value, 3, word(value, 3).max(c.last_ns));
}

/// The `i`-th u64 of a map value (0 past its end: sizes are asserted in `record`).
fn word(bytes: &[u8], i: usize) -> u64 {
    bytes.get(i * 8..i * 8 + 8).and_then(|w| w.try_into().ok()).map_or(0, u64::from_ne_bytes)
}

fn set_word(bytes: &mut [u8], i: usize, v: u64) {
    if let Some(w) = bytes.get_mut(i * 8..i * 8 + 8) {
        w.copy_from_slice(&v.to_ne_bytes());
    }
}

/// Returns once every BPF program run that started before the call has
/// finished. MEMBARRIER_CMD_GLOBAL is synchronize_rcu(), and tracing programs
/// run inside an RCU read-side section; where it is refused (nohz_full), a
/// sleep far longer than any program run stands in.
pub(super) fn wait_for_running_programs() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if rc != 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
}
