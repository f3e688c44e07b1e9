//! User-space throughput on one core: raw ring-buffer bytes → `record::decode`
//! → `Encoder::encode` → `Packer::push` → `UdpSink::send` to a loopback
//! collector, the work the poll and sender threads do per event, plus each
//! stage alone so that the report shows where the time goes.
//!
//!     cargo bench --bench userspace [-- [--secs S] [--rounds N] [--cpu C] [FILTER...]]
//!
//! Under `cargo test --all-targets` (no `--bench` argument) every case runs
//! once, briefly: a check that the bench still builds and runs, not a number.
//!
//! Cases run alternately (round 1 of every case, then round 2, ...) so that
//! a change in the machine's load hits all of them alike; each reports its
//! best round. Rates are per wall-clock second and per second of the bench
//! thread's CPU time (which includes the loopback receive work the kernel does
//! in its context, but not time stolen by other processes).

use std::hint::black_box;
use std::mem::offset_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trapstream::abi::ts_event;
use trapstream::capture::DropReasons;
use trapstream::cli::Format;
use trapstream::encode::{Context, Encoder};
use trapstream::netdb::NetDb;
use trapstream::record::{self, Record, EVENT_SIZE};
use trapstream::transport::{Framing, Packer, Sink, UdpSink};

/// The sender's default `-b`.
const BATCH: usize = 20;
/// Distinct events cycled through: enough that the branch predictor and the
/// caches do not see one record over and over.
const POOL: usize = 256;
/// CLOCK_BOOTTIME → Unix time, as `clock` would supply it.
const BOOT_TO_WALL_NS: i64 = 1_764_000_000_000_000_000;

// ABI values (include/trapstream.h).
const TS_KIND_EVENT: u8 = 1;
const TS_SOURCE_DEVLINK: u8 = 1;
const TS_SOURCE_SKB: u8 = 2;
const TS_TRAP_TYPE_EXCEPTION: u8 = 1;
const TS_TRAP_TYPE_NONE: u8 = 0xff;
const TS_L_ETH: u32 = 1 << 0;
const TS_L_IPV4: u32 = 1 << 4;
const TS_L_UDP: u32 = 1 << 7;
const TS_FRAG_DF: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A switch ASIC trap: what trapstream is for.
    Devlink,
    /// A kernel drop (NO_SOCKET), what `--source skb` reports on any host.
    Skb,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Devlink => "devlink",
            Kind::Skb => "skb",
        }
    }
}

fn cstr<const N: usize>(s: &str) -> [i8; N] {
    let mut out = [0i8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b as i8;
    }
    out
}

/// The 384 bytes the BPF program writes for an IPv4/UDP packet, as the ring
/// buffer hands them to the poll thread. `i` varies addresses, ports and ids.
fn raw_event(kind: Kind, i: usize, no_socket: u32) -> Vec<u8> {
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

struct Events {
    raw: Vec<Vec<u8>>,
    next: usize,
    time: u64,
}

impl Events {
    fn new(kind: Kind, no_socket: u32) -> Events {
        Events { raw: (0..POOL).map(|i| raw_event(kind, i, no_socket)).collect(), next: 0, time: 1 << 40 }
    }

    /// The next event's bytes, with a fresh timestamp: a real stream's times
    /// only go forward, and the Influx encoder treats a repeat specially.
    fn next(&mut self) -> &[u8] {
        const AT: usize = offset_of!(ts_event, time_ns);
        self.time += 1_337;
        let bytes = &mut self.raw[self.next];
        self.next = (self.next + 1) % POOL;
        bytes[AT..AT + 8].copy_from_slice(&self.time.to_ne_bytes());
        bytes
    }
}

/// A collector on loopback, drained by its own thread on another CPU.
struct Collector {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start(cpu: Option<usize>) -> Collector {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind collector");
        // Room for a whole round's burst: a full queue would drop datagrams
        // silently (loopback sends still succeed) and flatter the sender.
        force_rcvbuf(&socket, 256 << 20);
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                pin(cpu);
            }
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Collector { addr, received, stop, thread: Some(thread) }
    }

    /// Waits until `sent` datagrams have arrived (or a second passes); the
    /// number that never came.
    fn missing(&self, sent: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.received.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        sent.saturating_sub(self.received.load(Ordering::Relaxed))
    }

    fn reset(&self) {
        self.received.store(0, Ordering::Relaxed);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn force_rcvbuf(socket: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!(
            "note: SO_RCVBUFFORCE refused ({}); the collector may drop under load",
            std::io::Error::last_os_error()
        );
    }
}

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0, ..) acts on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("note: cannot pin to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
}

fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes a timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one case does per call: some events' worth of work; returns how many.
type Step<'a> = Box<dyn FnMut() -> u64 + 'a>;

struct Case<'a> {
    name: String,
    step: Step<'a>,
    /// Called after each round: datagrams the collector never got.
    check: Option<Box<dyn FnMut() -> u64 + 'a>>,
    best_wall: f64,
    best_cpu: f64,
    rounds: Vec<f64>,
    lost: u64,
}

fn add<'a>(name: String, step: Step<'a>, check: Option<Box<dyn FnMut() -> u64 + 'a>>) -> Case<'a> {
    Case { name, step, check, best_wall: 0.0, best_cpu: 0.0, rounds: Vec::new(), lost: 0 }
}

fn run_round(case: &mut Case<'_>, secs: f64) {
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

struct Opts {
    secs: f64,
    rounds: usize,
    cpu: Option<usize>,
    filters: Vec<String>,
}

fn opts() -> Opts {
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

fn main() {
    let o = opts();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let other_cpu = o.cpu.map(|c| (c + 1) % cpus).filter(|&c| Some(c) != o.cpu);
    if let Some(cpu) = o.cpu {
        pin(cpu);
    }

    let drop_reasons =
        libbpf_rs::btf::Btf::from_vmlinux().map(|b| DropReasons::from_btf(&b)).unwrap_or_default();
    let no_socket = drop_reasons.value("NO_SOCKET").unwrap_or(2);
    let ctx = Context {
        device_ip: "10.5.1.101".into(),
        netdb: NetDb::load(),
        drop_reasons,
        taxonomy: Default::default(),
    };
    let collector = Collector::start(other_cpu);

    // Sizes first, so the datagram cases can be read: records per datagram.
    println!("# trapstream user-space throughput, one core (bench thread on CPU {:?})", o.cpu);
    for kind in [Kind::Devlink, Kind::Skb] {
        for format in [Format::Json, Format::Influx] {
            let rec = record::decode(Events::new(kind, no_socket).next(), BOOT_TO_WALL_NS).unwrap();
            let mut buf = Vec::new();
            Encoder::new(format).encode(&ctx, &rec, &mut buf);
            println!("#   {:7} {:6}: {} bytes per record", kind.name(), fmt_name(format), buf.len());
        }
    }

    let mut cases: Vec<Case<'_>> = Vec::new();

    for kind in [Kind::Devlink, Kind::Skb] {
        let mut events = Events::new(kind, no_socket);
        cases.push(add(
            format!("decode/{}", kind.name()),
            Box::new(move || {
                let rec = record::decode(black_box(events.next()), BOOT_TO_WALL_NS);
                black_box(&rec);
                1
            }),
            None,
        ));
    }
    for kind in [Kind::Devlink, Kind::Skb] {
        for format in [Format::Json, Format::Influx] {
            let mut events = Events::new(kind, no_socket);
            let records: Vec<Record> =
                (0..POOL).map(|_| record::decode(events.next(), BOOT_TO_WALL_NS).unwrap()).collect();
            let mut encoder = Encoder::new(format);
            let mut buf = Vec::with_capacity(4096);
            let mut i = 0;
            let ctx = &ctx;
            cases.push(add(
                format!("encode/{}/{}", fmt_name(format), kind.name()),
                Box::new(move || {
                    i = (i + 1) % POOL;
                    let mut rec = records[i];
                    // Times only go forward in a real stream (see Events::next).
                    rec.time_ns += i as u64;
                    buf.clear();
                    encoder.encode(ctx, black_box(&rec), &mut buf);
                    black_box(&buf);
                    1
                }),
                None,
            ));
        }
    }
    // The socket alone, per datagram: one record's worth (what a 1400-byte
    // limit sends per event) and a full 8192-byte datagram.
    for size in [900usize, 8100] {
        let sent = Arc::new(AtomicU64::new(0));
        let mut sink = UdpSink::connect(collector.addr).expect("UDP socket to the collector");
        let datagram = vec![b'x'; size];
        let (sent2, coll) = (sent.clone(), &collector);
        cases.push(add(
            format!("send/{size}B-datagram"),
            Box::new(move || {
                // A batch of one: one system call per datagram.
                sink.send(&datagram, 1).expect("send to the loopback collector");
                let d = sink.flush().expect("send to the loopback collector");
                assert_eq!(d.errors, 0, "send to the loopback collector: {d:?}");
                sent.fetch_add(d.writes, Ordering::Relaxed);
                1
            }),
            Some(Box::new(move || coll.missing(sent2.swap(0, Ordering::Relaxed)))),
        ));
    }
    for kind in [Kind::Devlink, Kind::Skb] {
        for format in [Format::Json, Format::Influx] {
            for max in [1400usize, 8192] {
                // Without the socket: what user space itself costs.
                cases.push(add(
                    format!("nosend/{}/{}/{max}", fmt_name(format), kind.name()),
                    pipeline(&ctx, kind, format, max, no_socket, None),
                    None,
                ));
                let sent = Arc::new(AtomicU64::new(0));
                let sink = UdpSink::connect(collector.addr).expect("UDP socket to the collector");
                let (sent2, coll) = (sent.clone(), &collector);
                cases.push(add(
                    format!("pipeline/{}/{}/{max}", fmt_name(format), kind.name()),
                    pipeline(&ctx, kind, format, max, no_socket, Some((sink, sent.clone()))),
                    Some(Box::new(move || coll.missing(sent2.swap(0, Ordering::Relaxed)))),
                ));
            }
        }
    }

    let selected: Vec<usize> = (0..cases.len())
        .filter(|&i| o.filters.is_empty() || o.filters.iter().any(|f| cases[i].name.contains(f.as_str())))
        .collect();
    for round in 0..o.rounds {
        eprintln!("round {} of {}", round + 1, o.rounds);
        for &i in &selected {
            collector.reset();
            run_round(&mut cases[i], o.secs);
        }
    }
    println!(
        "# best of {} rounds of {} s; M events/s per wall second (all rounds) | per CPU second | ns/event (CPU)",
        o.rounds, o.secs
    );
    for &i in &selected {
        let c = &cases[i];
        let rounds: Vec<String> = c.rounds.iter().map(|r| format!("{:.3}", r / 1e6)).collect();
        let lost = if c.check.is_some() {
            format!("  collector missed {} datagrams", c.lost)
        } else {
            String::new()
        };
        println!(
            "{:32} {:7.3} M/s ({})  {:7.3} M/s cpu  {:7.0} ns{}",
            c.name,
            c.best_wall / 1e6,
            rounds.join(" "),
            c.best_cpu / 1e6,
            1e9 / c.best_cpu,
            lost
        );
    }
}

fn fmt_name(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Influx => "influx",
        Format::Text => "text",
    }
}

/// What the poll and sender threads do per event: decode, encode, pack; a
/// batch of BATCH is flushed as the sender does. With a sink, every datagram
/// is sent (a failed send is fatal here: it would measure the error path).
fn pipeline<'a>(
    ctx: &'a Context,
    kind: Kind,
    format: Format,
    max: usize,
    no_socket: u32,
    mut sink: Option<(UdpSink, Arc<AtomicU64>)>,
) -> Step<'a> {
    let mut events = Events::new(kind, no_socket);
    let mut encoder = Encoder::new(format);
    let framing = if format == Format::Json { Framing::JsonArray } else { Framing::Lines };
    let mut packer = Packer::new(framing, max);
    let mut encoded = Vec::with_capacity(4096);
    let mut in_batch = 0;
    Box::new(move || {
        let rec = record::decode(events.next(), BOOT_TO_WALL_NS).expect("decodes");
        encoded.clear();
        encoder.encode(ctx, &rec, &mut encoded);
        let mut emit = |d: trapstream::transport::Datagram<'_>| {
            match sink.as_mut() {
                Some((s, sent)) => {
                    let d = s.send(d.bytes, d.records).expect("send to the loopback collector");
                    sent.fetch_add(d.writes, Ordering::Relaxed);
                }
                None => {
                    black_box(d.bytes);
                }
            }
            Ok(())
        };
        packer.push(&encoded, &mut emit).expect("push");
        in_batch += 1;
        if in_batch == BATCH {
            packer.flush(&mut emit).expect("flush");
            // The sink sends the batch's datagrams now, as the sender has it.
            if let Some((s, sent)) = sink.as_mut() {
                let d = s.flush().expect("send to the loopback collector");
                assert_eq!(d.errors, 0, "send to the loopback collector: {d:?}");
                sent.fetch_add(d.writes, Ordering::Relaxed);
            }
            in_batch = 0;
        }
        1
    })
}
