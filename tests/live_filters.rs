//! Live: every filter kind judged on the source it describes, on real kernel
//! drops in namespaces this test creates. Trap names and groups describe
//! devlink traps and must let kernel drops through; drop reasons, ports and
//! namespaces judge them. (The devlink side of each kind runs in the VM
//! tests, where devlink traps exist.) Needs root.

mod common;

use std::time::Duration;

use common::{counter, Hosts, TempConfig, Trapstream};
use serde_json::Value;

const N: u16 = 12;

/// Run trapstream with `filters` added to a filter on B's namespace, send N
/// drops to B, and return B's NO_SOCKET records and the final counters.
fn drops_through(hosts: &Hosts, filters: &str, base_port: u16) -> (Vec<Value>, String) {
    let netns_b = Hosts::netns_ino(&hosts.ns_b);
    let cfg = TempConfig::new(&format!("[filters]\ninclude_netns = [{netns_b}]\n{filters}"));
    let ts = Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg()]);
    let ports: Vec<u16> = (0..N).map(|i| base_port + i).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &ports, 16);
    std::thread::sleep(Duration::from_millis(600));
    let (status, stdout, final_line) = ts.stop();
    assert_eq!(status, 0, "{final_line}");
    let records = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|r| r.get("measurement").is_none())
        .filter(|r| r["netnsIno"] == netns_b && r["skbDropReason"] == "NO_SOCKET")
        .collect();
    (records, final_line)
}

#[test]
fn devlink_filter_kinds_let_kernel_drops_through() {
    let hosts = Hosts::new();
    let (records, final_line) = drops_through(
        &hosts,
        "include_trap_names = [\"blackhole_route\"]\n\
         exclude_trap_names = [\"ttl_value_is_too_small\"]\n\
         include_trap_groups = [\"l3_drops\"]\n\
         exclude_trap_groups = [\"l2_drops\"]\n",
        41000,
    );
    // Before the scoping, an include list of trap names or groups filtered
    // every kernel drop (their trap name is empty).
    assert_eq!(records.len(), N as usize, "{final_line}");
}

#[test]
fn drop_reason_filters_judge_kernel_drops() {
    let hosts = Hosts::new();
    let (records, final_line) = drops_through(&hosts, "exclude_reasons = [\"NO_SOCKET\"]\n", 41100);
    assert!(records.is_empty(), "{records:?}");
    assert!(counter(&final_line, "filtered") >= u64::from(N), "{final_line}");
    let (records, _) =
        drops_through(&hosts, "include_reasons = [\"NO_SOCKET\", \"NETFILTER_DROP\"]\n", 41200);
    assert_eq!(records.len(), N as usize);
}

#[test]
fn port_filters_judge_kernel_drops_by_their_device() {
    let hosts = Hosts::new();
    let (records, _) = drops_through(&hosts, &format!("include_ports = [\"{}\"]\n", hosts.dev_b), 41300);
    assert_eq!(records.len(), N as usize);
    assert!(records.iter().all(|r| r["ingressPort"] == hosts.dev_b.as_str()), "{records:?}");
    let (records, final_line) = drops_through(&hosts, "include_ports = [\"no-such-port\"]\n", 41400);
    assert!(records.is_empty(), "{records:?}");
    assert!(counter(&final_line, "filtered") >= u64::from(N), "{final_line}");
    let (records, _) = drops_through(&hosts, &format!("exclude_ports = [\"{}\"]\n", hosts.dev_b), 41500);
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn netns_filters_judge_kernel_drops() {
    let hosts = Hosts::new();
    let netns_b = Hosts::netns_ino(&hosts.ns_b);
    let (records, final_line) = drops_through(&hosts, &format!("exclude_netns = [{netns_b}]\n"), 41600);
    assert!(records.is_empty(), "{records:?}");
    assert!(counter(&final_line, "filtered") >= u64::from(N), "{final_line}");
}

#[test]
fn check_config_says_which_filters_match_nothing_for_the_sources() {
    let cfg = TempConfig::new(
        "[filters]\ninclude_trap_groups = [\"l3_drops\"]\nexclude_reasons = [\"NO_SOCKET\"]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trapstream"))
        .args(["--stdout", "--source", "skb", "-c", cfg.arg(), "--check-config"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run trapstream");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "filters.include_trap_groups applies to devlink traps only and matches nothing with --source skb"
        ),
        "{stderr}"
    );
    // Drop reasons do apply to kernel drops: no warning for them.
    assert!(!stderr.contains("exclude_reasons"), "{stderr}");
    assert!(stderr.contains("configuration OK"), "{stderr}");
}
