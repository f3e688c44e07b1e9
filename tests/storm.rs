//! Storm safety: a flood of real drops against the per-trap rate limit, and
//! exact accounting of what it suppressed. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::{counter, Hosts, TempConfig, Trapstream};

/// Flood B's closed `ports` with `per_port` drops each under `limits`
/// (configuration lines), keeping only those drops; returns the drops sent,
/// how long the flood took, and trapstream's stdout and final counters.
fn flood_under(limits: &str, ports: &[u16], per_port: u32) -> (u64, Duration, String, String) {
    let hosts = Hosts::new();
    let cfg = TempConfig::new(&format!(
        "stdout = true\nsource = \"skb\"\n{limits}\n[filters]\ninclude_netns = [{}]\ninclude_reasons = [\"NO_SOCKET\"]\n",
        Hosts::netns_ino(&hosts.ns_b)
    ));
    let ts = Trapstream::start(&["--config", cfg.arg()]);
    let sock = hosts.socket_in_a();
    let start = Instant::now();
    let sent = hosts.udp_flood(&sock, &hosts.v4_b, ports, per_port, 16, None);
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0);
    (sent, elapsed, stdout, final_stats)
}

#[test]
fn rate_limit_bounds_events_and_counts_what_it_suppressed() {
    let (sent, elapsed, stdout, final_stats) = flood_under("rate_limit = \"200/s\"", &[39000, 39001], 3000);

    let seen = counter(&final_stats, "seen") - counter(&final_stats, "filtered");
    let read = counter(&final_stats, "read");
    let limited = counter(&final_stats, "rate_limited");
    assert_eq!(seen, sent, "every drop of the flood reached the program: {final_stats}");
    assert_eq!(seen, read + limited + counter(&final_stats, "ring_lost"), "{final_stats}");
    let records = stdout.lines().filter(|l| !l.contains("\"measurement\":\"trapstream_stats\"")).count();
    assert_eq!(records as u64, read, "every event let through was written");
    // One bucket (one drop reason): a burst of 200, then 200/s. CPUs racing on
    // the bucket may let a few more through.
    let budget = 200.0 + 200.0 * (elapsed.as_secs_f64() + 0.3);
    assert!(
        read >= 200 && (read as f64) <= budget + 20.0,
        "read {read} for a budget of {budget:.0}: {final_stats}"
    );
    assert!(limited > 5000, "{final_stats}");
}

/// The rate limit is decided before ring buffer space is taken: in a storm
/// that fills a small ring, events the limit suppresses are `rate_limited`,
/// never `ring_lost`, so `ring_lost + read` stays within what the limit let
/// through. (Reserving first counted most of such a storm as ring_lost and
/// left the limit's tokens untouched.)
#[test]
fn a_full_ring_does_not_swallow_what_the_rate_limit_suppressed() {
    let (sent, elapsed, _, final_stats) =
        flood_under("rate_limit = \"1000/s\"\nring_size = 4096", &[39100, 39101], 10_000);
    let passed = counter(&final_stats, "read") + counter(&final_stats, "ring_lost");
    let budget = 1000.0 + 1000.0 * (elapsed.as_secs_f64() + 0.3);
    assert!(
        (passed as f64) <= budget + 50.0,
        "{passed} events past the limit (read + ring_lost) for a budget of {budget:.0}: {final_stats}"
    );
    assert!(counter(&final_stats, "rate_limited") as f64 >= sent as f64 - budget - 50.0, "{final_stats}");
}
