//! TCP transport against a collector that is down, then up: a bounded
//! backlog whose overflow is counted, reconnection within the retry timeout,
//! delivery resumed, one JSON array per line. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{counter, Hosts, TempConfig, Trapstream};
use serde_json::Value;

#[test]
fn collector_down_then_up_backlog_is_bounded_counted_and_delivered() {
    let hosts = Hosts::new();
    let only_b = TempConfig::new(&format!(
        "[filters]\ninclude_netns = [{}]\ninclude_reasons = [\"NO_SOCKET\"]\n",
        Hosts::netns_ino(&hosts.ns_b)
    ));
    // A free port with nothing listening on it yet.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port_arg = port.to_string();
    // One record per batch, each a line of ~900 bytes: room for two while down.
    let ts = Trapstream::start(&[
        "--transport",
        "tcp",
        "-r",
        "0.5",
        "--tcp-backlog",
        "2000",
        "-b",
        "1",
        "-i",
        "0.05",
        "-c",
        only_b.arg(),
        "--source",
        "skb",
        "127.0.0.1",
        &port_arg,
    ]);
    let down_ports: Vec<u16> = (38000..38006).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &down_ports, 10);
    std::thread::sleep(Duration::from_millis(700));

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("collector comes up on the same port");
    let up_at = Instant::now();
    let (conn, _) = listener.accept().expect("trapstream reconnects");
    let reconnect = up_at.elapsed();
    assert!(reconnect < Duration::from_millis(1500), "reconnected after {reconnect:?}, retry is 0.5 s");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = BufReader::new(conn).lines();
    let mut ports = Vec::new();
    let mut next_record = |ports: &mut Vec<u64>| {
        let line = lines.next().expect("a line").expect("readable");
        let batch: Value = serde_json::from_str(&line).expect("each line is one JSON array");
        let records = batch.as_array().expect("array");
        assert_eq!(records.len(), 1, "-b 1");
        ports.push(records[0]["packet"]["TRANSPORT"]["dstPort"].as_u64().unwrap());
    };
    // The backlog: the two newest batches from while it was down.
    next_record(&mut ports);
    next_record(&mut ports);
    assert_eq!(ports, vec![38004, 38005], "oldest batches were pushed out of the full backlog");

    let up_ports: Vec<u16> = (38100..38103).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &up_ports, 10);
    for _ in &up_ports {
        next_record(&mut ports);
    }
    assert_eq!(&ports[2..], &[38100, 38101, 38102], "delivery resumed in order");

    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    assert_eq!(counter(&final_stats, "read"), 9, "{final_stats}");
    assert_eq!(counter(&final_stats, "sent"), 5, "{final_stats}");
    assert_eq!(counter(&final_stats, "send_lost"), 4, "overflow is counted, not silent: {final_stats}");
    assert!(counter(&final_stats, "send_errors") >= 1, "refused connections counted: {final_stats}");
    assert_eq!(counter(&final_stats, "queued"), 0, "{final_stats}");
}
