//! The pipeline (decode → encode → pack → send) against a sink that is not
//! loopback, beside the raw limit of the same sink, in one run:
//!
//!     cargo bench --bench pipeline [-- [--secs S] [--rounds N] [--cpu C] [FILTER...]]
//!
//! Needs root. Two network namespaces of the bench's own, A and B, joined
//! by two veth pairs (MTU 9000, so an 8192-byte datagram is one frame):
//! `xdp`, where an XDP program on B's end returns XDP_DROP, and `tc`, where
//! a tcx program on B's ingress returns TC_ACT_SHOT (both two instructions,
//! loaded from the bench itself: no object file). Nothing is received and nothing
//! answers, so the receiver's work is not charged to the sender beyond the
//! drop itself (which the kernel runs in the sender's context). Before any
//! case runs, `ip route get` in A must show each destination on its veth.
//!
//! The namespaces have no name (unshare, kept by a file descriptor): they
//! and their devices disappear when the bench exits, however it exits.
//!
//! Cases, per sink: `raw/SINK/FORMAT/MAX` replays the very datagrams the
//! pipeline sends (recorded first) with sendmmsg, 64 a call, the best plain
//! send loop; `pipeline/SINK/FORMAT/MAX` is decode + encode + pack +
//! `UdpSink` (batch 20, flushed as the sender does). Both count records,
//! so their ratio is the pipeline's share of the sink's limit. `nosend/...`
//! is decode + encode + pack alone. `pipeline-copy/...` (1400 only) is the
//! pipeline with records that cost nothing to make: finished records,
//! encoded once, copied into the datagrams (`Front::copying`), against the
//! same raw limit; `nosend-copy/...` is that without the send. What they
//! leave of the raw limit is what decode and encode have to fit into.
//! `gso/...` compare 1400-byte datagrams
//! sent with sendmmsg and with UDP_SEGMENT; on `xdp`, `raw-gso` and
//! `pipeline-gso` send each batch padded to equal datagrams by UDP_SEGMENT
//! (what GSO would give the pipeline; see gso.rs).
//! Rates as in benches/userspace.rs: alternating rounds, best of N, per
//! wall second and per CPU second of the (pinned) bench thread.

#[path = "../common/mod.rs"]
mod common;
mod gso;

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use common::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use trapstream::cli::Format;
use trapstream::transport::UdpSink;

/// Datagrams per sendmmsg in the raw loop (the sink's own batch limit).
const RAW_BATCH: usize = 64;
/// Events recorded for the raw replay: many batches, all pool entries.
const RECORDED: usize = 20 * POOL;

/// A network namespace of our own, alive while this descriptor is open.
struct Ns(File);

impl Ns {
    /// A new, unnamed namespace: a thread unshares into it and hands back
    /// its descriptor; no bind mount, so nothing outlives the process.
    fn new() -> io::Result<Ns> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: unshare affects only this short-lived thread.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                File::open("/proc/thread-self/ns/net").map(Ns)
            })
            .join()
            .expect("unshare thread")
        })
    }

    /// Runs `f` on a thread inside the namespace: sockets it opens, and
    /// processes it starts, belong to the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with a namespace fd we own.
                let rc = unsafe { libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = self.run(|| Command::new(args[0]).args(&args[1..]).output());
        let out = out.unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A path `ip ... netns PATH` opens to find this namespace.
    fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.0.as_raw_fd())
    }
}

/// A's end of veth pair `i` is 10.250.i.1, B's 10.250.i.2 (addresses that
/// exist only inside these two namespaces). Returns B's address.
fn veth_pair(a: &Ns, b: &Ns, i: u8) -> String {
    let (dev_a, dev_b) = (format!("tsp{i}a"), format!("tsp{i}b"));
    let (mac_a, mac_b) = (format!("02:00:5e:00:01:{i:02x}"), format!("02:00:5e:00:02:{i:02x}"));
    let peer = b.path();
    a.cmd(
        &[
            "ip", "link", "add", &dev_a, "address", &mac_a, "mtu", "9000", "type", "veth", "peer", "name",
            &dev_b,
        ]
        .iter()
        .copied()
        .chain(["address", &mac_b, "mtu", "9000", "netns", &peer])
        .collect::<Vec<_>>(),
    );
    let (ip_a, ip_b) = (format!("10.250.{i}.1"), format!("10.250.{i}.2"));
    a.cmd(&["ip", "addr", "add", &format!("{ip_a}/30"), "dev", &dev_a]);
    b.cmd(&["ip", "addr", "add", &format!("{ip_b}/30"), "dev", &dev_b]);
    a.cmd(&["ip", "link", "set", &dev_a, "up"]);
    b.cmd(&["ip", "link", "set", &dev_b, "up"]);
    // B never answers ARP (it drops everything): A knows B's MAC.
    a.cmd(&["ip", "neigh", "replace", &ip_b, "lladdr", &mac_b, "dev", &dev_a, "nud", "permanent"]);
    // Nothing may leave the machine: the route must be this veth.
    let route = a.cmd(&["ip", "route", "get", &ip_b]);
    eprintln!("# in A: ip route get {ip_b}: {}", route.trim());
    assert!(route.contains(&format!("dev {dev_a} ")), "{ip_b} is not routed through {dev_a}: {route}");
    ip_b
}

/// A BPF program of two instructions, `r0 = verdict; exit`: a drop with
/// no object file to build.
fn load_drop(prog_type: bpf::bpf_prog_type, verdict: u32, flags: u32) -> OwnedFd {
    let insns: [u64; 2] = [0xb7 | (u64::from(verdict) << 32), 0x95];
    // SAFETY: all-zero is a valid bpf_prog_load_opts (no pointers set).
    let mut opts: bpf::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<bpf::bpf_prog_load_opts>() as _;
    opts.prog_flags = flags;
    // SAFETY: two 8-byte instructions in a local array, read by the call;
    // the names are NUL-terminated literals; opts is a local, written back
    // only by libbpf (log fields), which we own mutably.
    let fd = unsafe {
        bpf::bpf_prog_load(
            prog_type,
            c"bench_drop".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast::<bpf::bpf_insn>(),
            insns.len() as _,
            &mut opts,
        )
    };
    assert!(fd >= 0, "loading a drop program: {}", io::Error::from_raw_os_error(-fd));
    // SAFETY: a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn ifindex(dev: &str) -> i32 {
    let name = std::ffi::CString::new(dev).expect("device name");
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(i > 0, "no device {dev}");
    i as i32
}

/// XDP_DROP on B's end of pair `i`, the earliest drop there is. Frag-aware,
/// so that the 9000-byte MTU is allowed. A program on the peer also turns
/// off GSO on A's end: UDP_SEGMENT is really segmented before the veth.
fn xdp_drop(b: &Ns, i: u8) -> OwnedFd {
    let prog = load_drop(bpf::BPF_PROG_TYPE_XDP, bpf::XDP_DROP, bpf::BPF_F_XDP_HAS_FRAGS);
    let dev = format!("tsp{i}b");
    // SAFETY: the program fd is open; no options.
    let rc = b.run(|| unsafe {
        bpf::bpf_xdp_attach(ifindex(&dev), prog.as_raw_fd(), bpf::XDP_FLAGS_DRV_MODE, std::ptr::null())
    });
    assert_eq!(rc, 0, "attaching XDP: {}", io::Error::from_raw_os_error(-rc));
    prog
}

/// TC_ACT_SHOT at B's ingress (tcx), after the skb reached the stack. The
/// kernel here has neither matchall nor gact, so `tc ... action drop` is
/// not available; this is the same drop point.
fn tc_drop(b: &Ns, i: u8) -> OwnedFd {
    const TC_ACT_SHOT: u32 = 2;
    let prog = load_drop(bpf::BPF_PROG_TYPE_SCHED_CLS, TC_ACT_SHOT, 0);
    let dev = format!("tsp{i}b");
    // SAFETY: the program fd is open; no options.
    let rc = b.run(|| unsafe {
        bpf::bpf_prog_attach_opts(prog.as_raw_fd(), ifindex(&dev), bpf::BPF_TCX_INGRESS, std::ptr::null())
    });
    assert_eq!(rc, 0, "attaching to tcx ingress: {}", io::Error::from_raw_os_error(-rc));
    prog
}

mod bpf {
    pub use libbpf_rs::libbpf_sys::{
        bpf_insn, bpf_prog_attach_opts, bpf_prog_load, bpf_prog_load_opts, bpf_prog_type, bpf_xdp_attach,
        BPF_F_XDP_HAS_FRAGS, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_XDP, BPF_TCX_INGRESS, XDP_DROP,
        XDP_FLAGS_DRV_MODE,
    };
}

/// A plain UDP socket in A connected to `dst`, sized as UdpSink's.
fn raw_socket(a: &Ns, dst: SocketAddr) -> Socket {
    a.run(|| {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
        let _ = s.set_send_buffer_size(4 << 20);
        s.connect(&SockAddr::from(dst)).expect("connect");
        s
    })
}

/// sendmmsg over `datagrams` in windows of RAW_BATCH, cyclically; each call
/// must send its whole window. Returns the step: records sent per call.
fn raw_loop<'a>(socket: Socket, datagrams: Vec<(Vec<u8>, usize)>, per_record: bool) -> Step<'a> {
    let windows = (datagrams.len() / RAW_BATCH).max(1);
    let mut next = 0;
    Box::new(move || {
        let window = &datagrams[next * RAW_BATCH..((next + 1) * RAW_BATCH).min(datagrams.len())];
        next = (next + 1) % windows;
        // SAFETY: all-zero iovec and mmsghdr are valid (null, zero lengths).
        let mut iov: [libc::iovec; RAW_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; RAW_BATCH] = unsafe { std::mem::zeroed() };
        for (k, (bytes, _)) in window.iter().enumerate() {
            // Read by the kernel only; the C type wants *mut.
            iov[k].iov_base = bytes.as_ptr() as *mut libc::c_void;
            iov[k].iov_len = bytes.len();
            msgs[k].msg_hdr.msg_iov = &mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `window.len()` headers, each pointing at a local iovec that
        // describes a live datagram; the kernel writes only msg_len, in `msgs`.
        let n = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), window.len() as _, 0) };
        assert_eq!(n, window.len() as i32, "raw sendmmsg: {}", io::Error::last_os_error());
        if per_record {
            window.iter().map(|(_, r)| *r as u64).sum()
        } else {
            n as u64
        }
    })
}

fn main() {
    let o = opts();
    if let Some(cpu) = o.cpu {
        pin(cpu);
    }
    let (a, b) = match (Ns::new(), Ns::new()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pipeline bench skipped: cannot create network namespaces ({e}); run as root");
            return;
        }
    };
    a.cmd(&["ip", "link", "set", "lo", "up"]);
    let xdp_dst: SocketAddr = format!("{}:9", veth_pair(&a, &b, 0)).parse().expect("address");
    let _xdp = xdp_drop(&b, 0);
    let tc_dst: SocketAddr = format!("{}:9", veth_pair(&a, &b, 1)).parse().expect("address");
    let _tc = tc_drop(&b, 1);

    let (ctx, no_socket) = bench_context();

    let mut cases: Vec<Case<'_>> = Vec::new();
    let kind = Kind::Devlink;
    for format in [Format::Json, Format::Influx] {
        for max in [1400usize, 8192] {
            // User space alone (decode, encode, pack), in the same run.
            let step = pipeline(&ctx, kind, format, max, no_socket, None);
            cases.push(add(format!("nosend/{}/{max}", fmt_name(format)), step, None));
        }
        // The packer alone, with finished records copied in (Front::copying).
        let step = pipeline_of(&ctx, Front::copying(&ctx, kind, format, 1400, no_socket), None);
        cases.push(add(format!("nosend-copy/{}/1400", fmt_name(format)), step, None));
    }
    for (sink, dst) in [("xdp", xdp_dst), ("tc", tc_dst)] {
        for format in [Format::Json, Format::Influx] {
            for max in [1400usize, 8192] {
                let name = format!("{sink}/{}/{max}", fmt_name(format));
                let recorded = datagrams(&ctx, kind, format, max, no_socket, RECORDED);
                let records: usize = recorded.iter().map(|d| d.1).sum();
                let bytes: usize = recorded.iter().map(|d| d.0.len()).sum();
                println!(
                    "# {name}: {} datagrams of {:.0} B on average, {:.2} records each",
                    recorded.len(),
                    bytes as f64 / recorded.len() as f64,
                    records as f64 / recorded.len() as f64
                );
                if sink == "xdp" {
                    // Only where GSO is segmented before the device (see xdp_drop).
                    let socket = raw_socket(&a, dst);
                    cases.push(add(
                        format!("raw-gso/{name}"),
                        gso::raw_loop(socket, &recorded, format),
                        None,
                    ));
                    let socket = raw_socket(&a, dst);
                    let step = gso::pipeline(&ctx, kind, format, max, no_socket, socket);
                    cases.push(add(format!("pipeline-gso/{name}"), step, None));
                }
                cases.push(add(format!("raw/{name}"), raw_loop(raw_socket(&a, dst), recorded, true), None));
                let udp = a.run(|| UdpSink::connect(dst)).expect("UdpSink in A");
                let sent = Arc::new(AtomicU64::new(0));
                cases.push(add(
                    format!("pipeline/{name}"),
                    pipeline(&ctx, kind, format, max, no_socket, Some((udp, sent))),
                    None,
                ));
                if max == 1400 {
                    // What the packer and the sink leave of the raw limit, with
                    // records that cost nothing to make (Front::copying).
                    let udp = a.run(|| UdpSink::connect(dst)).expect("UdpSink in A");
                    let front = Front::copying(&ctx, kind, format, max, no_socket);
                    let sent = Arc::new(AtomicU64::new(0));
                    cases.push(add(
                        format!("pipeline-copy/{name}"),
                        pipeline_of(&ctx, front, Some((udp, sent))),
                        None,
                    ));
                }
            }
        }
        let equal: Vec<(Vec<u8>, usize)> = (0..RAW_BATCH).map(|_| (vec![b'x'; 1400], 1)).collect();
        cases.push(add(
            format!("gso/{sink}/sendmmsg-1400B"),
            raw_loop(raw_socket(&a, dst), equal, false),
            None,
        ));
        let step = gso::equal_loop(raw_socket(&a, dst), 1400, 46);
        cases.push(add(format!("gso/{sink}/udp_segment-1400B"), step, None));
    }

    let selected = run_selected(&mut cases, &o, || {});
    report(&cases, &selected, &o);
    for dev in ["tsp0a", "tsp1a"] {
        println!("# {dev}: {}", a.cmd(&["ip", "-s", "link", "show", "dev", dev]).replace('\n', " | "));
    }
    let snmp = a.cmd(&["cat", "/proc/net/snmp"]);
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    println!("# in A: {}", udp.join(" | "));
}

/// Rates per case, then each pipeline beside the raw limit of its sink.
fn report(cases: &[Case<'_>], selected: &[usize], o: &Opts) {
    println!(
        "# best of {} rounds of {} s; M/s per wall second (all rounds) | per CPU second | ns each (CPU). \
         raw and pipeline count records, gso datagrams",
        o.rounds, o.secs
    );
    for &i in selected {
        let c = &cases[i];
        let rounds: Vec<String> = c.rounds.iter().map(|r| format!("{:.3}", r / 1e6)).collect();
        println!(
            "{:34} {:7.3} M/s ({})  {:7.3} M/s cpu  {:7.0} ns",
            c.name,
            c.best_wall / 1e6,
            rounds.join(" "),
            c.best_cpu / 1e6,
            1e9 / c.best_cpu
        );
    }
    for &i in selected {
        let Some((kind, rest)) = cases[i].name.split_once('/') else { continue };
        // pipeline-gso against raw-gso; pipeline and pipeline-copy against raw.
        let Some(variant) = kind.strip_prefix("pipeline") else { continue };
        let raw = format!("raw{}/{rest}", if variant == "-gso" { variant } else { "" });
        let Some(raw) = selected.iter().map(|&j| &cases[j]).find(|c| c.name == raw) else {
            continue;
        };
        println!(
            "# {:34} / raw: {:.2} per CPU second ({:.3} / {:.3} M records/s), {:.2} per wall second",
            cases[i].name,
            cases[i].best_cpu / raw.best_cpu,
            cases[i].best_cpu / 1e6,
            raw.best_cpu / 1e6,
            cases[i].best_wall / raw.best_wall
        );
    }
}
