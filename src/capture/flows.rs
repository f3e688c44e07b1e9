//! The double-buffered flow tables (-u) and their drain.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags};

use crate::abi::skel;
use crate::error::{Error, Result};
use crate::record::{FLOW_KEY_SIZE, FLOW_SIZE};

/// The kernel's two flow tables and the state it shares with user space
/// through the mmap'ed .bss (`active_table`, `table_entries`, `flush_requested`).
///
/// Programs count into the active table only. Draining flips `active_table`,
/// waits until no program can still be writing the old table, and only then
/// reads and empties it: no increment can land between a read and a delete.
pub struct FlowTables<'obj> {
    tables: [libbpf_rs::MapHandle; 2],
    shared: SharedWords<'obj>,
    active: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
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
        Ok(FlowTables {
            tables: [handle(flows[0])?, handle(flows[1])?],
            shared,
            active: 0,
            keys: Vec::new(),
            values: Vec::new(),
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
        self.shared.word(self.shared.table_entries[idx]).store(0, Ordering::Relaxed);
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
