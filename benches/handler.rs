//! Kernel cost per event of the real skb handler, without traffic: the
//! program that kfree_skb runs, on synthetic IPv4/UDP frames through
//! BPF_PROG_TEST_RUN with repeat (`capture::time_handler`), per event (ring
//! buffer) and aggregated (-u: counted into a flow table), for the flood's
//! 60-byte frame and a full-size one (1400 bytes of payload, 1442 on the
//! wire: the dissector copies only the headers it parses, not a 256-byte
//! snapshot). Needs root and a 6.2+ kernel. Part of benches/kernel.sh; alone:
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
/// `payload` bytes (the flood's 18 make 60 bytes on the wire).
fn ipv4_udp_frame(payload: usize) -> Vec<u8> {
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
    let (small, full) = (ipv4_udp_frame(18), ipv4_udp_frame(1400));
    let modes: [(&str, &[u8], Option<u32>); 4] = [
        ("per-event", &small, None),
        ("aggregated", &small, Some(1024)),
        ("per-event/1442B", &full, None),
        ("aggregated/1442B", &full, Some(1024)),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, (_, frame, capacity)) in modes.iter().enumerate() {
            let d = time_handler(frame, REPEAT, *capacity).expect("BPF_PROG_TEST_RUN");
            times[i].push(d.as_nanos() as f64);
        }
    }
    println!(
        "# skb handler on {}- and {}-byte IPv4/UDP frames, BPF_PROG_TEST_RUN x{REPEAT}, {rounds} rounds",
        small.len(),
        full.len()
    );
    for ((name, ..), t) in modes.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "handler/{name:16} min {:5.0} ns  median {:5.0} ns  max {:5.0} ns",
            t[0],
            t[t.len() / 2],
            t[t.len() - 1]
        );
    }
}
