//! Real kernel drops, as many as one core can make: UDP datagrams to closed
//! ports, so the receiving stack frees each one with NO_SOCKET and fires
//! skb:kfree_skb. Used by benches/kernel.sh; --netns needs root.
//!
//!     flood --netns A --dst 10.1.1.2 --secs 5 [--flows N] [--sport P]
//!           [--port P] [--payload B] [--cpu C] [--threads T] [--batch K] [--rate PPS]
//!           [--probe empty|event-floor|flow-floor]
//!     flood --collect PORT [--secs D] [--cpu C]
//!
//! Sending prints one line, `sent=N secs=S rate=R errors=E cpu=C cpu_rate=R2`:
//! cpu is the sending threads' CPU time, which includes the receive path and
//! the drop (softirq work done in their context), so `cpu_rate` (datagrams
//! per CPU second) does not move when other processes take the CPU. --collect
//! receives on PORT (a stand-in collector) until --secs pass or SIGTERM, and
//! prints `datagrams=N bytes=B lines=L json_records=J`.
//!
//! --probe attaches, for the flood's duration, a kfree_skb program of a few
//! raw instructions (probes.rs): `empty` does nothing, what any program
//! there costs; `event-floor` and `flow-floor` do only what any per-event or
//! per-flow design must, the floors under trapstream's own (benches/kernel.sh
//! `cost` and `stats`). `--empty-probe` is `--probe empty`.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

mod probes;

struct Args {
    netns: Option<String>,
    dst: Option<IpAddr>,
    port: u16,
    flows: u16,
    sport: u16,
    payload: usize,
    secs: f64,
    cpu: Option<usize>,
    threads: usize,
    batch: usize,
    rate: f64,
    collect: Option<u16>,
    probe: Option<probes::Probe>,
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("flood: {msg}");
    }
    eprintln!(
        "usage: flood [--netns NAME] --dst IP [--port P] [--flows N] [--sport P] [--payload B] \
         [--secs D] [--cpu C] [--threads T] [--batch K] [--rate PPS] [--probe empty|event-floor|flow-floor]\n       flood --collect PORT [--secs D] [--cpu C]"
    );
    std::process::exit(if msg.is_empty() { 0 } else { 2 })
}

fn parse_args() -> Args {
    let mut a = Args {
        netns: None,
        dst: None,
        // Discard: closed on any test namespace.
        port: 9,
        flows: 1,
        sport: 0,
        payload: 18,
        secs: 5.0,
        cpu: None,
        threads: 1,
        batch: 1,
        rate: 0.0,
        collect: None,
        probe: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> T {
            v.parse().unwrap_or_else(|_| usage(&format!("bad value for {flag}: {v}")))
        }
        match flag.as_str() {
            "--netns" => a.netns = Some(value()),
            "--dst" => a.dst = Some(num(&flag, value())),
            "--port" => a.port = num(&flag, value()),
            "--flows" => a.flows = num(&flag, value()),
            "--sport" => a.sport = num(&flag, value()),
            "--payload" => a.payload = num(&flag, value()),
            "--secs" => a.secs = num(&flag, value()),
            "--cpu" => a.cpu = Some(num(&flag, value())),
            "--threads" => a.threads = num(&flag, value()),
            "--batch" => a.batch = num(&flag, value()),
            "--rate" => a.rate = num(&flag, value()),
            "--collect" => a.collect = Some(num(&flag, value())),
            "--empty-probe" => a.probe = Some(probes::Probe::Empty),
            "--probe" => {
                let name = value();
                a.probe = Some(
                    probes::Probe::parse(&name).unwrap_or_else(|| usage(&format!("unknown probe {name}"))),
                )
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if a.flows == 0 || a.threads == 0 || !(1..=1024).contains(&a.batch) || a.secs.is_nan() || a.secs <= 0.0 {
        usage("--flows, --threads and --secs must be positive, --batch 1..=1024");
    }
    if a.collect.is_none() && a.dst.is_none() {
        usage("--dst is required");
    }
    a
}

fn enter_netns(name: &str) {
    let path = if name.contains('/') { name.to_string() } else { format!("/run/netns/{name}") };
    let file = File::open(&path).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
    // SAFETY: setns with a valid namespace fd; done before any thread starts,
    // so every thread spawned later is in the namespace too.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        usage(&format!("setns {path}: {}", std::io::Error::last_os_error()));
    }
}

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0, ..) acts on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            usage(&format!("sched_setaffinity({cpu}): {}", std::io::Error::last_os_error()));
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() {
    let args = parse_args();
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
    if let Some(ns) = &args.netns {
        enter_netns(ns);
    }
    match args.collect {
        Some(port) => collect(&args, port),
        None => flood(&args),
    }
}

fn flood(args: &Args) {
    let dst = args.dst.expect("checked");
    let _probe = args.probe.map(probes::attach);
    let sent = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let cpu_ns = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.secs);
    std::thread::scope(|s| {
        for t in 0..args.threads {
            let (sent, errors, cpu_ns) = (&sent, &errors, &cpu_ns);
            s.spawn(move || {
                if let Some(cpu) = args.cpu {
                    pin(cpu + t);
                }
                let cpu0 = thread_cpu_ns();
                let (n, e) = send_loop(args, dst, t, deadline);
                cpu_ns.fetch_add(thread_cpu_ns() - cpu0, Ordering::Relaxed);
                sent.fetch_add(n, Ordering::Relaxed);
                errors.fetch_add(e, Ordering::Relaxed);
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    let cpu = cpu_ns.load(Ordering::Relaxed) as f64 / 1e9;
    println!(
        "sent={n} secs={secs:.3} rate={:.0} errors={} cpu={cpu:.3} cpu_rate={:.0}",
        n as f64 / secs,
        errors.load(Ordering::Relaxed),
        n as f64 / cpu
    );
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: clock_gettime writes a timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One thread's share: returns (datagrams sent, failed send calls).
fn send_loop(args: &Args, dst: IpAddr, thread: usize, deadline: Instant) -> (u64, u64) {
    let domain = if dst.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    if args.sport != 0 {
        // Several threads may share the fixed source port: one flow per destination.
        if !set_int(&socket, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1) {
            usage(&format!("SO_REUSEPORT: {}", std::io::Error::last_os_error()));
        }
    }
    let bind: SocketAddr = SocketAddr::new(
        if dst.is_ipv4() { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) },
        args.sport,
    );
    socket.bind(&bind.into()).unwrap_or_else(|e| usage(&format!("bind {bind}: {e}")));
    let payload = vec![0x5au8; args.payload];
    // Threads start at different flows so that T threads cover all N of them.
    let addrs: Vec<SockAddr> = (0..args.flows)
        .map(|i| {
            let port = args.port.wrapping_add((i + thread as u16 * 7919) % args.flows);
            SockAddr::from(SocketAddr::new(dst, port))
        })
        .collect();
    let batch = args.batch;
    let mut iov = vec![libc::iovec { iov_base: payload.as_ptr() as *mut _, iov_len: payload.len() }; batch];
    // SAFETY: mmsghdr is plain data; every pointer is set below before use.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    let per_thread_rate = args.rate / args.threads as f64;
    let start = Instant::now();
    let (mut sent, mut errors, mut flow) = (0u64, 0u64, 0usize);
    while !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if per_thread_rate > 0.0 {
            let due = start + Duration::from_secs_f64(sent as f64 / per_thread_rate);
            if due > now {
                // Sleeping below ~100 µs overshoots; spin for short waits.
                if due - now > Duration::from_micros(200) {
                    std::thread::sleep(due - now - Duration::from_micros(100));
                }
                continue;
            }
        }
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            let a = &addrs[flow];
            flow = if flow + 1 == addrs.len() { 0 } else { flow + 1 };
            m.msg_hdr.msg_name = a.as_ptr() as *mut _;
            m.msg_hdr.msg_namelen = a.len();
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs holds `batch` initialised headers pointing at live
        // addresses and the payload, all outliving the call.
        let n = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), batch as u32, 0) };
        if n < 0 {
            // ENOBUFS and the like: the datagrams were not sent; count and go on.
            errors += 1;
        } else {
            sent += n as u64;
        }
    }
    (sent, errors)
}

fn collect(args: &Args, port: u16) {
    if let Some(cpu) = args.cpu {
        pin(cpu);
    }
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    // Both address families on one socket: the collector may be 127.0.0.1 or ::1.
    socket.set_only_v6(false).expect("IPV6_V6ONLY");
    force_rcvbuf(&socket, 64 << 20);
    let bind = SocketAddr::new(IpAddr::from([0u16; 8]), port);
    socket.bind(&bind.into()).unwrap_or_else(|e| usage(&format!("bind {bind}: {e}")));
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("SO_RCVTIMEO");
    println!("listening on {port}");
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    const BATCH: usize = 64;
    const SIZE: usize = 65536;
    let mut bufs = vec![0u8; BATCH * SIZE];
    let mut iov: Vec<libc::iovec> = bufs
        .chunks_exact_mut(SIZE)
        .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: SIZE })
        .collect();
    // SAFETY: mmsghdr is plain data; each gets its iovec below.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let (mut datagrams, mut bytes, mut lines, mut records) = (0u64, 0u64, 0u64, 0u64);
    while !STOP.load(Ordering::Relaxed) && Instant::now() < deadline {
        // SAFETY: every header points at its own SIZE-byte slice of bufs.
        let n = unsafe {
            libc::recvmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0, std::ptr::null_mut())
        };
        if n <= 0 {
            continue;
        }
        for (i, m) in msgs.iter().take(n as usize).enumerate() {
            let data = &bufs[i * SIZE..i * SIZE + m.msg_len as usize];
            datagrams += 1;
            bytes += data.len() as u64;
            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
            records += count(data, b"{\"deviceIP\"");
        }
    }
    println!("datagrams={datagrams} bytes={bytes} lines={lines} json_records={records}");
}

fn count(hay: &[u8], needle: &[u8]) -> u64 {
    // Only at each '{': a full sliding window would cost the collector more
    // than the datagram is worth at these rates.
    let first = needle[0];
    hay.iter().enumerate().filter(|&(i, &b)| b == first && hay[i..].starts_with(needle)).count() as u64
}

/// SO_RCVBUFFORCE (root) lifts net.core.rmem_max, so bursts wait in the queue
/// rather than being dropped by it.
fn force_rcvbuf(socket: &Socket, bytes: libc::c_int) {
    if !set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes) {
        let _ = socket.set_recv_buffer_size(bytes as usize);
    }
}

fn set_int(socket: &Socket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}
