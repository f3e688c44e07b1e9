//! Soak, on demand (ignored by default; `cargo test --release --test soak --
//! --ignored --nocapture`): a sustained rate of real drops for SOAK_SECONDS
//! (default 600), streamed to a UDP collector. Passes with zero loss at every
//! stage and RSS growth under 1 MiB after the first minute. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::{counter, Collector, Hosts, TempConfig, Trapstream};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
#[ignore = "runs for 10 minutes; on demand"]
fn ten_minutes_of_drops_without_loss_or_growth() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let rate: u64 = std::env::var("SOAK_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let collector = Collector::bind("127.0.0.1:0");
    let port = collector.port().to_string();
    let ts = Trapstream::start(&["--source", "skb", "-c", cfg.arg(), "-f", "influx", "127.0.0.1", &port]);
    let pid = ts.child.id();
    let received = std::sync::atomic::AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (generated, samples, stopped) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = vec![0u8; 65536];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = collector.socket.recv(&mut buf) {
                    let lines =
                        buf[..n].split(|&b| b == b'\n').filter(|l| l.starts_with(b"DroppedPackets,")).count();
                    received.fetch_add(lines as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let sock = hosts.socket_in_a();
        let start = Instant::now();
        let mut generated = 0u64;
        let mut samples = Vec::new();
        let mut next_sample = start;
        // 10 ms slices at the target rate, over 64 flows.
        let ports: Vec<u16> = (45000..45064).collect();
        let per_slice = (rate / 100).max(1) as usize;
        while start.elapsed() < Duration::from_secs(seconds) {
            let slice = Instant::now();
            let burst: Vec<u16> =
                (0..per_slice).map(|i| ports[(generated as usize + i) % ports.len()]).collect();
            generated += hosts.udp_flood(&sock, &hosts.v4_b, &burst, 1, 32, None);
            if Instant::now() >= next_sample {
                samples.push((start.elapsed().as_secs(), rss_kib(pid)));
                next_sample += Duration::from_secs(10);
            }
            let spent = slice.elapsed();
            if spent < Duration::from_millis(10) {
                std::thread::sleep(Duration::from_millis(10) - spent);
            }
        }
        // Longer than -i (5 s): the last batch is sent on time, not at the signal.
        std::thread::sleep(Duration::from_secs(7));
        let stopped = ts.stop();
        std::thread::sleep(Duration::from_millis(500));
        // The receiver is a scoped thread: it must stop before the scope ends.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (generated, samples, stopped)
    });
    let (status, _, stats) = stopped;
    assert_eq!(status, 0);
    let after_warmup: Vec<u64> = samples.iter().filter(|(t, _)| *t >= 60).map(|(_, r)| *r).collect();
    let growth = after_warmup.iter().max().unwrap_or(&0) - after_warmup.first().unwrap_or(&0);
    println!(
        "soak: {seconds} s, {generated} drops ({:.0}/s), received {}, RSS samples KiB {:?}, growth after 60 s {growth} KiB\n{stats}",
        generated as f64 / seconds as f64,
        received.load(std::sync::atomic::Ordering::Relaxed),
        samples.iter().map(|(_, r)| r).collect::<Vec<_>>()
    );
    assert_eq!(counter(&stats, "seen") - counter(&stats, "filtered"), generated, "{stats}");
    for lost in ["ring_lost", "channel_lost", "send_lost", "refused", "decode_errors"] {
        assert_eq!(counter(&stats, lost), 0, "{lost}: {stats}");
    }
    assert_eq!(counter(&stats, "sent"), generated, "{stats}");
    assert_eq!(
        received.load(std::sync::atomic::Ordering::Relaxed),
        generated,
        "the collector got every record"
    );
    assert!(growth < 1024, "RSS grew {growth} KiB after the first minute");
}
