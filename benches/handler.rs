//! Kernel cost per event of the real skb handler, without traffic: the
//! program that kfree_skb runs, on a synthetic IPv4/UDP frame through
//! BPF_PROG_TEST_RUN with repeat (`capture::time_handler`), per event (ring
//! buffer) and aggregated (-u: counted into a flow table). Needs root and a
//! 6.2+ kernel. Part of benches/kernel.sh; alone:
//!
//!     cargo bench --bench handler [-- --rounds N]
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs one round,
//! as a check that it still works.
//!
//! The modes alternate within one run; each reports min and median of its
//! rounds (the minimum is the least disturbed by other work on the CPU).

use trapstream::capture::time_handler;

const REPEAT: u32 = 100_000;

/// What the flood in kernel.sh sends: Ethernet, IPv4 (DF, TTL 64), UDP with
/// 18 bytes of payload, 60 bytes on the wire.
fn ipv4_udp_frame() -> Vec<u8> {
    let payload = 18;
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0x00, 0x5e, 0x00, 0x00, 0x0b]);
    f.extend_from_slice(&[0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (20 + 8 + payload) as u16;
    f.extend_from_slice(&[0x45, 0x00]);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 250, 0, 1, 10, 250, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend(std::iter::repeat_n(0x5a, payload));
    f
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("handler: skipped (BPF_PROG_TEST_RUN needs root)");
        return;
    }
    let mut rounds = if std::env::args().any(|a| a == "--bench") { 15 } else { 1 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let frame = ipv4_udp_frame();
    let modes: [(&str, Option<u32>); 2] = [("per-event", None), ("aggregated", Some(1024))];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, (_, capacity)) in modes.iter().enumerate() {
            let d = time_handler(&frame, REPEAT, *capacity).expect("BPF_PROG_TEST_RUN");
            times[i].push(d.as_nanos() as f64);
        }
    }
    println!(
        "# skb handler on a {}-byte IPv4/UDP frame, BPF_PROG_TEST_RUN x{REPEAT}, {rounds} rounds",
        frame.len()
    );
    for ((name, _), t) in modes.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "handler/{name:11} min {:5.0} ns  median {:5.0} ns  max {:5.0} ns",
            t[0],
            t[t.len() / 2],
            t[t.len() - 1]
        );
    }
}
