//! Live: a kernel drop in softirq that interrupts trapstream's program while
//! it runs for a process-context drop on the same CPU. CPU 0 drops its own
//! datagrams in nftables' output hook (process context, inside kfree_skb's
//! program) while CPU 1 sends to a closed port whose receive processing RPS
//! steers to CPU 0: the inter-processor interrupt runs that softirq, and its
//! drop, on top of whatever CPU 0 was doing. The nested run must be turned
//! away and counted (`nested`, by trapstream's guard or the kernel's own
//! recursion check), every record must still be whole, and the ledger must
//! hold. Needs root and two CPUs.

mod common;

use std::time::{Duration, Instant};

use common::{counter, nft, run_cmd as run, Hosts, TempConfig, Trapstream};
use serde_json::Value;

#[test]
fn a_drop_interrupting_a_run_is_counted_as_nested_and_corrupts_nothing() {
    assert!(std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2, "this test needs two CPUs");
    let hosts = Hosts::new();
    // CPU 0's own drops: A's output hook drops UDP to port 46000.
    nft(&hosts.ns_a, &["add", "table", "inet", "ts"]);
    nft(&hosts.ns_a, &["add", "chain", "inet", "ts", "out", "{ type filter hook output priority 0 ; }"]);
    nft(&hosts.ns_a, &["add", "rule", "inet", "ts", "out", "udp", "dport", "46000", "drop"]);
    // B's receive processing goes to CPU 0, whichever CPU sent.
    run(&[
        "ip",
        "netns",
        "exec",
        &hosts.ns_b,
        "sh",
        "-c",
        &format!("echo 1 > /sys/class/net/{}/queues/rx-0/rps_cpus", hosts.dev_b),
    ]);
    let cfg = TempConfig::new(&format!(
        "[filters]\ninclude_netns = [{}, {}]\n",
        Hosts::netns_ino(&hosts.ns_a),
        Hosts::netns_ino(&hosts.ns_b)
    ));
    let ts =
        Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg(), "--channel-depth", "1000000"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    let (local, remote) = std::thread::scope(|s| {
        let local = s.spawn(|| {
            Hosts::in_netns(&hosts.ns_a, || {
                common::pin_to_cpu(0);
                let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    // Dropped in the output hook: EPERM to the sender.
                    let _ = sock.send_to(b"local", (hosts.v4_b.as_str(), 46000));
                    n += 1;
                }
                n
            })
        });
        let remote = s.spawn(|| {
            let sock = hosts.socket_in_a();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += hosts.udp_flood(&sock, &hosts.v4_b, &[46100], 200, 16, Some(1));
            }
            n
        });
        (local.join().expect("local flood"), remote.join().expect("remote flood"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, stdout, final_stats) = ts.stop();
    assert_eq!(status, 0, "{final_stats}");
    let nested = counter(&final_stats, "nested");
    eprintln!("{local} local and {remote} remote drops: {final_stats}");
    assert!(nested > 0, "no run was interrupted in {local} + {remote} drops: {final_stats}");
    // Whole records only: each is one of the two drops, with its own fields.
    for line in stdout.lines() {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if r.get("measurement").is_some() {
            continue;
        }
        let port = r["packet"]["TRANSPORT"]["dstPort"].as_u64();
        match r["skbDropReason"].as_str() {
            Some("NETFILTER_DROP") => {
                // In the output hook the packet has no device yet.
                assert_eq!(port, Some(46000), "{r}");
                assert_eq!(r["ingressPort"], "N/A", "{r}");
                assert_eq!(r["packet"]["IP"]["srcIp"], hosts.v4_a.as_str(), "{r}");
            }
            Some("NO_SOCKET") => {
                assert_eq!(port, Some(46100), "{r}");
                assert_eq!(r["ingressPort"], hosts.dev_b.as_str(), "{r}");
            }
            _ => {}
        }
    }
}
