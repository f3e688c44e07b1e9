//! `--stdout` when standard output fails: records count as sent only once
//! write(2) has taken their bytes; what a full device or a closed pipe
//! refuses is counted lost, and the ledger adds up. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{assert_ledger, counter, Hosts, TempConfig, Trapstream};

/// `trapstream --stdout > /dev/full`: every write fails with ENOSPC. That is
/// not the end of the output (space can come back), so trapstream keeps
/// running, counts each record lost and exits 0 on SIGTERM.
#[test]
fn records_written_to_a_full_device_are_counted_lost() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let ts =
        Trapstream::start_with_stdout(&["--stdout", "--source", "skb", "-c", cfg.arg()], Stdio::from(full));
    hosts.udp_to_closed_ports(&hosts.v4_b, &[39000, 39001, 39002], 10);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, stats) = ts.stop();
    assert_eq!(status, 0, "a full device is not fatal: {stats}");
    assert_eq!(counter(&stats, "read"), 3, "{stats}");
    assert_eq!(counter(&stats, "sent"), 0, "nothing reached the device: {stats}");
    assert_eq!(counter(&stats, "send_lost"), 3, "{stats}");
    assert!(counter(&stats, "send_errors") >= 1, "{stats}");
    assert_ledger(&stats);
}

/// `trapstream --stdout | head -n 3`: once the reader is gone trapstream
/// ends by itself, and the records it could not write are counted lost in
/// the ledger it prints, not counted sent.
#[test]
fn a_closed_pipe_ends_trapstream_with_its_losses_counted() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    let mut ts = Trapstream::start(&["--stdout", "--source", "skb", "-c", cfg.arg()]);
    let pipe = ts.child.stdout.take().expect("stdout pipe");
    let (tx, rx) = std::sync::mpsc::channel();
    let head = std::thread::spawn(move || {
        // Like head -n 3: read three lines, then close the pipe.
        let mut lines = BufReader::new(pipe).lines();
        for _ in 0..3 {
            let line = lines.next().expect("a line").expect("readable");
            tx.send(line).expect("test is listening");
        }
    });
    hosts.udp_to_closed_ports(&hosts.v4_b, &[39100, 39101, 39102], 10);
    for _ in 0..3 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("three records on stdout");
        assert!(line.contains("\"skbDropReason\":\"NO_SOCKET\""), "{line}");
    }
    head.join().expect("reader");
    // The reader is gone: these records can no longer be written.
    hosts.udp_to_closed_ports(&hosts.v4_b, &[39103, 39104, 39105], 10);
    let (status, stats) = ts.wait_exit(Duration::from_secs(10));
    assert_ne!(status, 0, "a closed pipe is an error exit: {stats}");
    assert_eq!(counter(&stats, "read"), 6, "{stats}");
    assert_eq!(counter(&stats, "sent"), 3, "only what the reader took counts as sent: {stats}");
    assert_eq!(counter(&stats, "send_lost") + counter(&stats, "channel_lost"), 3, "{stats}");
    assert_ledger(&stats);
}
