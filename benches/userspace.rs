//! User-space throughput on one core: raw ring-buffer bytes → `record::decode`
//! → `Encoder::encode` → `Packer::push` → `UdpSink::send_packed` to a loopback
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

mod common;

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use trapstream::cli::Format;
use trapstream::encode::Encoder;
use trapstream::record::{self, Record};
use trapstream::transport::{Sink, UdpSink};

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

fn main() {
    let o = opts();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let other_cpu = o.cpu.map(|c| (c + 1) % cpus).filter(|&c| Some(c) != o.cpu);
    if let Some(cpu) = o.cpu {
        pin(cpu);
    }

    let (ctx, no_socket) = bench_context();
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

    let selected = run_selected(&mut cases, &o, || collector.reset());
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
