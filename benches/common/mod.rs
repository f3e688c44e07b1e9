//! What the bench binaries share: synthetic ring-buffer events, the
//! per-event pipeline as the sender runs it, and the alternating rounds
//! with their per-CPU-second rates.

#![allow(dead_code)]

use std::hint::black_box;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trapstream::abi::ts_event;
use trapstream::cli::Format;
use trapstream::encode::{Context, Encoder};
use trapstream::record::{self, EVENT_SIZE};
use trapstream::transport::{Datagram, Framing, Packer, Sink, UdpSink};

/// The sender's default `-b`.
pub const BATCH: usize = 20;
/// Distinct events cycled through: enough that the branch predictor and the
/// caches do not see one record over and over.
pub const POOL: usize = 256;
/// CLOCK_BOOTTIME → Unix time, as `clock` would supply it.
pub const BOOT_TO_WALL_NS: i64 = 1_764_000_000_000_000_000;

// ABI values (include/trapstream.h).
pub const TS_KIND_EVENT: u8 = 1;
pub const TS_SOURCE_DEVLINK: u8 = 1;
pub const TS_SOURCE_SKB: u8 = 2;
pub const TS_TRAP_TYPE_EXCEPTION: u8 = 1;
pub const TS_TRAP_TYPE_NONE: u8 = 0xff;
pub const TS_L_ETH: u32 = 1 << 0;
pub const TS_L_IPV4: u32 = 1 << 4;
pub const TS_L_UDP: u32 = 1 << 7;
pub const TS_FRAG_DF: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A switch ASIC trap: what trapstream is for.
    Devlink,
    /// A kernel drop (NO_SOCKET), what `--source skb` reports on any host.
    Skb,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Devlink => "devlink",
            Kind::Skb => "skb",
        }
    }
}

pub fn cstr<const N: usize>(s: &str) -> [i8; N] {
    let mut out = [0i8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b as i8;
    }
    out
}

/// The 384 bytes the BPF program writes for an IPv4/UDP packet, as the ring
/// buffer hands them to the poll thread. `i` varies addresses, ports and ids.
pub fn raw_event(kind: Kind, i: usize, no_socket: u32) -> Vec<u8> {
    let mut e = match kind {
        Kind::Devlink => ts_event {
            kind: TS_KIND_EVENT,
            source: TS_SOURCE_DEVLINK,
            trap_type: TS_TRAP_TYPE_EXCEPTION,
            ifindex: 12 + (i % 32) as u32,
            drop_reason: u32::MAX,
            ifname: cstr(&format!("swp{}s{}", 1 + i % 32, i % 4)),
            trap_name: cstr("unresolved_neigh"),
            trap_group: cstr("l3_exceptions"),
            bus_name: cstr("pci"),
            dev_name: cstr("0000:03:00.0"),
            ..Default::default()
        },
        Kind::Skb => ts_event {
            kind: TS_KIND_EVENT,
            source: TS_SOURCE_SKB,
            trap_type: TS_TRAP_TYPE_NONE,
            ifindex: 7,
            netns_ino: 4_026_532_246,
            drop_reason: no_socket,
            ifname: cstr("tsb0"),
            ..Default::default()
        },
    };
    e.time_ns = 1_000_000_000 + i as u64 * 1_000;
    let p = &mut e.pkt;
    p.layers = TS_L_ETH | TS_L_IPV4 | TS_L_UDP;
    p.pkt_len = 60 + (i % 7) as u32 * 100;
    p.cap_len = p.pkt_len.min(256) as u16;
    p.eth_proto = 0x0800;
    p.dst_mac = [0x24, 0x8a, 0x07, 0xca, 0x22, 0x59];
    p.src_mac = [0x0c, 0x42, 0xa1, 0xa9, 0x81, (i % 256) as u8];
    p.ip_src[..4].copy_from_slice(&[192, 0, 2, (1 + i % 250) as u8]);
    p.ip_dst[..4].copy_from_slice(&[198, 51, 100, (1 + (i * 7) % 250) as u8]);
    p.ip_len = (p.pkt_len - 14) as u16;
    p.ip_id = (i * 7919) as u16;
    p.frag_flags = TS_FRAG_DF;
    p.ttl = 64;
    p.ip_proto = 17;
    p.sport = 32768 + (i * 131 % 28000) as u16;
    // Mostly named ports, as real traffic mostly is.
    p.dport = [53, 123, 443, 9, 33434][i % 5];
    p.udp_len = p.ip_len - 20;
    // SAFETY: ts_event is plain data without padding (asserted in `record`),
    // so all of its bytes are initialised.
    let bytes = unsafe { plain::as_bytes(&e) }.to_vec();
    assert_eq!(bytes.len(), EVENT_SIZE);
    bytes
}

pub struct Events {
    pub raw: Vec<Vec<u8>>,
    next: usize,
    pub time: u64,
}

impl Events {
    pub fn new(kind: Kind, no_socket: u32) -> Events {
        Events { raw: (0..POOL).map(|i| raw_event(kind, i, no_socket)).collect(), next: 0, time: 1 << 40 }
    }

    /// The next event's bytes, with a fresh timestamp: a real stream's times
    /// only go forward, and the Influx encoder treats a repeat specially.
    pub fn next(&mut self) -> &[u8] {
        const AT: usize = offset_of!(ts_event, time_ns);
        self.time += 1_337;
        let bytes = &mut self.raw[self.next];
        self.next = (self.next + 1) % POOL;
        bytes[AT..AT + 8].copy_from_slice(&self.time.to_ne_bytes());
        bytes
    }
}

/// The encoders' context the benches share, and the running kernel's
/// NO_SOCKET drop reason (2 where the kernel's BTF cannot be read).
pub fn bench_context() -> (Context, u32) {
    let drop_reasons = libbpf_rs::btf::Btf::from_vmlinux()
        .map(|b| trapstream::capture::DropReasons::from_btf(&b))
        .unwrap_or_default();
    let no_socket = drop_reasons.value("NO_SOCKET").unwrap_or(2);
    let ctx = Context {
        device_ip: "10.5.1.101".into(),
        netdb: trapstream::netdb::NetDb::load(),
        drop_reasons,
        taxonomy: Default::default(),
    };
    (ctx, no_socket)
}

pub fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0, ..) acts on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("note: cannot pin to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
}

pub fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes a timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one case does per call: some events' worth of work; returns how many.
pub type Step<'a> = Box<dyn FnMut() -> u64 + 'a>;

pub struct Case<'a> {
    pub name: String,
    pub step: Step<'a>,
    /// Called after each round: datagrams the collector never got.
    pub check: Option<Box<dyn FnMut() -> u64 + 'a>>,
    pub best_wall: f64,
    pub best_cpu: f64,
    pub rounds: Vec<f64>,
    pub lost: u64,
}

pub fn add<'a>(name: String, step: Step<'a>, check: Option<Box<dyn FnMut() -> u64 + 'a>>) -> Case<'a> {
    Case { name, step, check, best_wall: 0.0, best_cpu: 0.0, rounds: Vec::new(), lost: 0 }
}

pub fn run_round(case: &mut Case<'_>, secs: f64) {
    let start = Instant::now();
    let cpu0 = thread_cpu_time();
    let mut events = 0u64;
    // Checking the clock every step would be part of what is measured.
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            events += (case.step)();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (thread_cpu_time() - cpu0).as_secs_f64();
    let (rw, rc) = (events as f64 / wall, events as f64 / cpu);
    case.rounds.push(rw);
    case.best_wall = case.best_wall.max(rw);
    case.best_cpu = case.best_cpu.max(rc);
    if let Some(check) = case.check.as_mut() {
        case.lost += check();
    }
}

pub struct Opts {
    pub secs: f64,
    pub rounds: usize,
    pub cpu: Option<usize>,
    pub filters: Vec<String>,
}

/// Runs the cases the command line's filters select, `o.rounds` rounds with
/// the cases alternating, `before` just before each case's round; returns
/// the selected indices, for the report.
pub fn run_selected(cases: &mut [Case<'_>], o: &Opts, mut before: impl FnMut()) -> Vec<usize> {
    let selected: Vec<usize> = (0..cases.len())
        .filter(|&i| o.filters.is_empty() || o.filters.iter().any(|f| cases[i].name.contains(f.as_str())))
        .collect();
    for round in 0..o.rounds {
        eprintln!("round {} of {}", round + 1, o.rounds);
        for &i in &selected {
            before();
            run_round(&mut cases[i], o.secs);
        }
    }
    selected
}

pub fn opts() -> Opts {
    let mut o = Opts { secs: 2.0, rounds: 3, cpu: Some(0), filters: Vec::new() };
    if !std::env::args().any(|a| a == "--bench") {
        o.secs = 0.02;
        o.rounds = 1;
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            // cargo bench passes --bench; libtest's flags mean nothing here.
            "--bench" => {}
            "--secs" => o.secs = val().parse().expect("--secs SECONDS"),
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--cpu" => {
                let v = val();
                o.cpu = if v == "none" { None } else { Some(v.parse().expect("--cpu N|none")) };
            }
            f if !f.starts_with('-') => o.filters.push(f.to_string()),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

pub fn fmt_name(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Influx => "influx",
        Format::Text => "text",
    }
}

/// The pipeline up to the socket, as the poll and sender threads run it:
/// the next event decoded, encoded and packed, a batch of BATCH flushed.
pub struct Front {
    events: Events,
    encoder: Encoder,
    packer: Packer,
    in_batch: usize,
    /// Finished records copied in instead of decoding and encoding events
    /// (`Front::copying`), and the next one's index.
    copies: Vec<Vec<u8>>,
    next_copy: usize,
}

impl Front {
    pub fn new(kind: Kind, format: Format, max: usize, no_socket: u32) -> Front {
        let framing = if format == Format::Json { Framing::JsonArray } else { Framing::Lines };
        Front {
            events: Events::new(kind, no_socket),
            encoder: Encoder::new(format),
            packer: Packer::new(framing, max),
            in_batch: 0,
            copies: Vec::new(),
            next_copy: 0,
        }
    }

    /// A front whose records cost nothing to make: the pool's events are
    /// encoded once here, and each push copies the next finished record
    /// into the datagram. What remains is the packer and the sink: the
    /// share of the sink's limit that decode and encode have to fit into.
    pub fn copying(ctx: &Context, kind: Kind, format: Format, max: usize, no_socket: u32) -> Front {
        let mut front = Front::new(kind, format, max, no_socket);
        front.copies = (0..POOL)
            .map(|_| {
                let rec = record::decode(front.events.next(), BOOT_TO_WALL_NS).expect("decodes");
                let mut encoded = Vec::new();
                front.encoder.encode(ctx, &rec, &mut encoded);
                encoded
            })
            .collect();
        front
    }

    /// One event through; `emit` gets each datagram the packer closes. True
    /// when the event completed a batch, which has then been flushed too.
    pub fn push(&mut self, ctx: &Context, mut emit: impl FnMut(Datagram<'_>)) -> bool {
        let mut emit = |d: Datagram<'_>| {
            emit(d);
            Ok(())
        };
        if let Some(copy) = self.copies.get(self.next_copy) {
            self.next_copy = (self.next_copy + 1) % self.copies.len();
            self.packer.push_with(|buf| buf.extend_from_slice(copy), &mut emit).expect("push");
        } else {
            let rec = record::decode(self.events.next(), BOOT_TO_WALL_NS).expect("decodes");
            // As the sender does (without -v): encoded straight into the datagram.
            let encoder = &mut self.encoder;
            self.packer.push_with(|buf| encoder.encode(ctx, &rec, buf), &mut emit).expect("push");
        }
        self.in_batch += 1;
        if self.in_batch < BATCH {
            return false;
        }
        self.packer.flush(&mut emit).expect("flush");
        self.in_batch = 0;
        true
    }
}

/// What the poll and sender threads do per event: decode, encode, pack; a
/// batch of BATCH is flushed as the sender does. With a sink, every datagram
/// is sent (a failed send is fatal here: it would measure the error path).
pub fn pipeline<'a>(
    ctx: &'a Context,
    kind: Kind,
    format: Format,
    max: usize,
    no_socket: u32,
    sink: Option<(UdpSink, Arc<AtomicU64>)>,
) -> Step<'a> {
    pipeline_of(ctx, Front::new(kind, format, max, no_socket), sink)
}

/// `pipeline` with the records made by `front` (e.g. `Front::copying`).
pub fn pipeline_of<'a>(
    ctx: &'a Context,
    mut front: Front,
    mut sink: Option<(UdpSink, Arc<AtomicU64>)>,
) -> Step<'a> {
    Box::new(move || {
        let batch_done = front.push(ctx, |d| match sink.as_mut() {
            Some((s, sent)) => {
                let d = s.send_packed(&d, d.records).expect("send to the collector");
                sent.fetch_add(d.writes, Ordering::Relaxed);
            }
            None => {
                black_box(d.bytes);
            }
        });
        // The sink sends the batch's datagrams now, as the sender has it.
        if let (true, Some((s, sent))) = (batch_done, sink.as_mut()) {
            let d = s.flush().expect("send to the collector");
            assert_eq!(d.errors, 0, "send to the collector: {d:?}");
            sent.fetch_add(d.writes, Ordering::Relaxed);
        }
        1
    })
}

/// The datagrams the pipeline sends for `events` events (decode, encode,
/// pack, a batch of BATCH flushed), with their record counts: what a raw
/// send loop replays to measure the socket alone on the same sizes.
pub fn datagrams(
    ctx: &Context,
    kind: Kind,
    format: Format,
    max: usize,
    no_socket: u32,
    events: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut front = Front::new(kind, format, max, no_socket);
    let mut out = Vec::new();
    for _ in 0..events {
        front.push(ctx, |d| out.push((d.bytes.to_vec(), d.records)));
    }
    out
}
