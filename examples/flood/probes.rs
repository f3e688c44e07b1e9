//! kfree_skb programs of a few raw instructions, attached for a flood's
//! duration: the floors under trapstream's programs (benches/kernel.sh
//! `stats` and `cost`). No object file and nothing of trapstream's in them,
//! so that what they cost is the kernel's price for the step, not ours.
//!
//! - `empty` (`empty_probe`): `r0 = 0; exit`, the tracepoint's dispatch and,
//!   under bpf_stats, the accounting's own clock reads.
//! - `event-floor` (`event_floor`): what any design that sends one record per
//!   event must do: read the clock, reserve a 160-byte record in a ring
//!   buffer (trapstream's kernel-drop record size), copy 64 bytes (the
//!   flood's frame is 60) from the kernel into it, and commit it (discarded,
//!   so that with no reader the ring never fills and every run does the same).
//! - `flow-floor` (`flow_floor`): what any design that counts per flow in the
//!   kernel must do: copy 64 bytes of headers to the stack, look a key of
//!   the size trapstream counts an IPv4 flow's slots by (56 bytes,
//!   `struct ts_flow_key4`) up in a per-CPU hash table, and add to
//!   this CPU's packet and byte counters (plain adds: a slot per CPU, as
//!   trapstream's tables have, needs no atomics). The key is always the same
//!   one, present, so this is the fast path with no parse and no key building.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys as bpf;

#[derive(Clone, Copy, Debug)]
pub enum Probe {
    Empty,
    EventFloor,
    FlowFloor,
}

impl Probe {
    pub fn parse(name: &str) -> Option<Probe> {
        match name {
            "empty" => Some(Probe::Empty),
            "event-floor" => Some(Probe::EventFloor),
            "flow-floor" => Some(Probe::FlowFloor),
            _ => None,
        }
    }

    /// The program's name, by which kernel.sh finds it for bpf_stats.
    fn prog_name(self) -> &'static std::ffi::CStr {
        match self {
            Probe::Empty => c"empty_probe",
            Probe::EventFloor => c"event_floor",
            Probe::FlowFloor => c"flow_floor",
        }
    }
}

/// The attached program: its link, the program and its map, all closed on drop.
pub struct Attached {
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: Option<OwnedFd>,
}

const KEY_SIZE: u32 = 56;
const COPY: i32 = 64;

// Helper numbers from the kernel's UAPI (enum bpf_func_id).
const MAP_LOOKUP_ELEM: i32 = 1;
const PROBE_READ_KERNEL: i32 = 113;
const KTIME_GET_BOOT_NS: i32 = 125;
const RINGBUF_RESERVE: i32 = 131;
const RINGBUF_DISCARD: i32 = 133;
const RB_NO_WAKEUP: i32 = 1;

/// One instruction, as the kernel reads it (struct bpf_insn).
#[derive(Clone, Copy)]
#[allow(dead_code)] // read by the kernel, through the pointer bpf_prog_load gets
struct Insn(u64);

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn(
            code as u64
                | ((dst as u64) << 8)
                | ((src as u64) << 12)
                | ((off as u16 as u64) << 16)
                | ((imm as u32 as u64) << 32),
        )
    }
}

fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0xb7, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::new(0xbf, dst, src, 0, 0)
}
fn add_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0x07, dst, 0, 0, imm)
}
/// dst = *(u64 *)(src + off)
fn load64(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x79, dst, src, off, 0)
}
/// *(u64 *)(dst + off) = src
fn store64(dst: u8, off: i16, src: u8) -> Insn {
    Insn::new(0x7b, dst, src, off, 0)
}
/// *(u64 *)(dst + off) = imm
fn store64_imm(dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(0x7a, dst, 0, off, imm)
}
/// if dst == imm goto pc + 1 + off
fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(0x15, dst, 0, off, imm)
}
fn call(helper: i32) -> Insn {
    Insn::new(0x85, 0, 0, 0, helper)
}
fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}
/// dst = the map behind `fd` (two instructions: BPF_LD_IMM64 with BPF_PSEUDO_MAP_FD).
fn load_map(dst: u8, fd: i32) -> [Insn; 2] {
    [Insn::new(0x18, dst, 1, 0, fd), Insn(0)]
}

fn event_floor(ring: i32) -> Vec<Insn> {
    let mut p = vec![load64(6, 1, 0)]; // r6 = the skb (the tracepoint's first argument)
    p.extend(load_map(1, ring));
    p.extend([mov_imm(2, 160), mov_imm(3, 0), call(RINGBUF_RESERVE)]);
    let body = [
        mov_reg(7, 0),
        call(KTIME_GET_BOOT_NS),
        store64(7, 0, 0),
        mov_reg(1, 7),
        add_imm(1, 8),
        mov_imm(2, COPY),
        mov_reg(3, 6),
        call(PROBE_READ_KERNEL),
        mov_reg(1, 7),
        mov_imm(2, RB_NO_WAKEUP),
        call(RINGBUF_DISCARD),
    ];
    p.push(jeq_imm(0, 0, body.len() as i16));
    p.extend(body);
    p.extend([mov_imm(0, 0), exit()]);
    p
}

fn flow_floor(table: i32) -> Vec<Insn> {
    let key = -(KEY_SIZE as i16);
    let headers = key - COPY as i16;
    let mut p = vec![load64(6, 1, 0)];
    // The key, all zero: the one entry the table holds.
    p.extend((0..KEY_SIZE as i16 / 8).map(|i| store64_imm(10, key + 8 * i, 0)));
    p.extend([
        mov_reg(1, 10),
        add_imm(1, headers as i32),
        mov_imm(2, COPY),
        mov_reg(3, 6),
        call(PROBE_READ_KERNEL),
    ]);
    p.extend(load_map(1, table));
    p.extend([mov_reg(2, 10), add_imm(2, key as i32), call(MAP_LOOKUP_ELEM)]);
    let body =
        [load64(1, 0, 0), add_imm(1, 1), store64(0, 0, 1), load64(1, 0, 8), add_imm(1, 60), store64(0, 8, 1)];
    p.push(jeq_imm(0, 0, body.len() as i16));
    p.extend(body);
    p.extend([mov_imm(0, 0), exit()]);
    p
}

fn map_create(kind: bpf::bpf_map_type, key: u32, value: u32, entries: u32) -> OwnedFd {
    // SAFETY: a NUL-terminated name; null options are allowed.
    let fd = unsafe { bpf::bpf_map_create(kind, c"floor".as_ptr(), key, value, entries, std::ptr::null()) };
    assert!(fd >= 0, "creating the floor's map: {}", std::io::Error::from_raw_os_error(-fd));
    // SAFETY: a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Loads `probe` and attaches it to skb:kfree_skb until the result is dropped.
/// Prints nothing: kernel.sh finds the program by its name.
pub fn attach(probe: Probe) -> Attached {
    let (insns, map) = match probe {
        Probe::Empty => (vec![mov_imm(0, 0), exit()], None),
        Probe::EventFloor => {
            let ring = map_create(bpf::BPF_MAP_TYPE_RINGBUF, 0, 0, 4 << 20);
            (event_floor(ring.as_raw_fd()), Some(ring))
        }
        Probe::FlowFloor => {
            let table = map_create(bpf::BPF_MAP_TYPE_PERCPU_HASH, KEY_SIZE, 32, 1024);
            let cpus = libbpf_rs::num_possible_cpus().expect("counting the possible CPUs");
            let (key, value) = ([0u8; KEY_SIZE as usize], vec![0u8; 32 * cpus]);
            // SAFETY: key is the map's key size, value holds a 32-byte slot
            // for every possible CPU (a per-CPU map's value from user space);
            // the call only reads them.
            let rc = unsafe {
                bpf::bpf_map_update_elem(table.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0)
            };
            assert!(rc == 0, "filling the floor's table: {}", std::io::Error::from_raw_os_error(-rc));
            (flow_floor(table.as_raw_fd()), Some(table))
        }
    };
    // SAFETY: a NUL-terminated name; the call only reads it.
    let btf_id = unsafe { bpf::libbpf_find_vmlinux_btf_id(c"kfree_skb".as_ptr(), bpf::BPF_TRACE_RAW_TP) };
    assert!(btf_id > 0, "no btf_trace_kfree_skb in the kernel's BTF: {btf_id}");
    // SAFETY: all-zero is a valid bpf_prog_load_opts (no pointers set).
    let mut opts: bpf::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<bpf::bpf_prog_load_opts>() as _;
    opts.expected_attach_type = bpf::BPF_TRACE_RAW_TP;
    opts.attach_btf_id = btf_id as u32;
    let mut log = vec![0u8; 1 << 16];
    opts.log_buf = log.as_mut_ptr().cast();
    opts.log_size = log.len() as u32;
    opts.log_level = 1;
    // SAFETY: Insn is one u64 laid out as struct bpf_insn (little endian, as
    // the kernel reads it on the machines we build for); the instructions,
    // names and log buffer outlive the call; opts is a local we own mutably.
    let prog = unsafe {
        bpf::bpf_prog_load(
            bpf::BPF_PROG_TYPE_TRACING,
            probe.prog_name().as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast::<bpf::bpf_insn>(),
            insns.len() as _,
            &mut opts,
        )
    };
    if prog < 0 {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        panic!(
            "loading the {probe:?} probe: {}\n{}",
            std::io::Error::from_raw_os_error(-prog),
            String::from_utf8_lossy(&log[..end])
        );
    }
    // SAFETY: a new descriptor that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog) };
    // SAFETY: a valid program descriptor; no name for a tp_btf program.
    let link = unsafe { bpf::bpf_raw_tracepoint_open(std::ptr::null(), prog.as_raw_fd()) };
    assert!(link >= 0, "attaching the {probe:?} probe: {}", std::io::Error::from_raw_os_error(-link));
    // SAFETY: as above; the link holds the program.
    let link = unsafe { OwnedFd::from_raw_fd(link) };
    Attached { _link: link, _prog: prog, _map: map }
}
