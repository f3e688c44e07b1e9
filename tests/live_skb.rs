//! Live: real packets dropped by the kernel in namespaces this test creates,
//! captured by the trapstream binary (--source skb) and streamed over UDP to a
//! socket this test owns. Needs root.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{counter, Collector, Hosts, TempConfig, Trapstream, MAC_A, MAC_B};
use serde_json::Value;

const N: u16 = 25;
const PAYLOAD: usize = 20;

/// Every object in the datagrams: drop records and trapstream's own counters.
fn objects_in(datagrams: &[Vec<u8>]) -> Vec<Value> {
    datagrams
        .iter()
        .flat_map(|d| {
            let v: Value = serde_json::from_slice(d).expect("every JSON datagram is one JSON document");
            v.as_array().expect("every JSON datagram is an array").clone()
        })
        .collect()
}

fn records_in(datagrams: &[Vec<u8>]) -> Vec<Value> {
    objects_in(datagrams).into_iter().filter(|o| o.get("measurement").is_none()).collect()
}

fn from_ns(records: &[Value], netns: u32) -> Vec<Value> {
    records.iter().filter(|r| r["netnsIno"] == netns && r["skbDropReason"] == "NO_SOCKET").cloned().collect()
}

#[test]
fn udp_to_closed_ports_over_ipv4_and_ipv6_gives_exact_records() {
    let hosts = Hosts::new();
    let netns_b = Hosts::netns_ino(&hosts.ns_b);
    let ifindex_b = Hosts::ifindex(&hosts.ns_b, &hosts.dev_b);
    let collector = Collector::bind("127.0.0.1:0");
    let port = collector.port().to_string();
    let only_b = TempConfig::only_netns(&hosts.ns_b);
    let ts = Trapstream::start(&[
        "--config",
        only_b.arg(),
        "--source",
        "skb",
        "-i",
        "0.1",
        "-b",
        "7",
        "--max-datagram",
        "4000",
        "127.0.0.1",
        &port,
    ]);

    let v4_ports: Vec<u16> = (0..N).map(|i| 33000 + i).collect();
    let v6_ports: Vec<u16> = (0..N).map(|i| 34000 + i).collect();
    let sport4 = hosts.udp_to_closed_ports(&hosts.v4_b, &v4_ports, PAYLOAD);
    let sport6 = hosts.udp_to_closed_ports(&hosts.v6_b, &v6_ports, PAYLOAD);

    let mut datagrams = collector.receive_until(Duration::from_secs(15), |got| {
        from_ns(&records_in(got), netns_b).len() >= 2 * N as usize
    });
    let (status, _, final_stats) = ts.stop();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0, "clean exit on SIGTERM");

    for d in &datagrams {
        assert!(d.len() <= 4000, "datagram of {} bytes over --max-datagram", d.len());
        assert!(records_in(std::slice::from_ref(d)).len() <= 7, "more than -b records in a datagram");
    }
    let records = records_in(&datagrams);
    let ours = from_ns(&records, netns_b);
    assert_eq!(ours.len(), 2 * N as usize, "N drops give N records (v4 + v6)");

    let mut seen4 = BTreeSet::new();
    let mut seen6 = BTreeSet::new();
    for r in &ours {
        assert_eq!(r["ingressPort"], hosts.dev_b.as_str());
        assert_eq!(r["ingressIfIndex"], ifindex_b);
        assert_eq!(r["dropReason"], "NO_SOCKET");
        assert_eq!(r["dropType"], "kernel");
        assert_eq!(r["message"], "kernelDrop");
        assert_eq!(r["deviceIP"], "127.0.0.1", "default: the address used to reach the collector");
        let p = &r["packet"];
        assert_eq!(p["packetType"], "TRANSPORT");
        assert_eq!(p["ETHERNET"]["srcMac"], MAC_A);
        assert_eq!(p["ETHERNET"]["dstMac"], MAC_B);
        assert_eq!(p["ETHERNET"]["vlanId"], 0);
        let ip = &p["IP"];
        assert_eq!(ip["protocol"], 17);
        assert_eq!(ip["protocolName"], "17 (udp)");
        assert_eq!(ip["ttl"], 64);
        assert_eq!(ip["tos"], 0);
        let t = &p["TRANSPORT"];
        assert_eq!(t["udpLength"], 8 + PAYLOAD);
        let dport = t["dstPort"].as_u64().unwrap() as u16;
        match ip["version"].as_u64() {
            Some(4) => {
                assert_eq!(p["ETHERNET"]["etherType"], 0x0800);
                assert_eq!(ip["srcIp"], hosts.v4_a.as_str());
                assert_eq!(ip["dstIp"], hosts.v4_b.as_str());
                assert_eq!(ip["length"], 20 + 8 + PAYLOAD, "IPv4 total length in host order");
                assert_eq!(p["length"], 14 + 20 + 8 + PAYLOAD);
                assert_eq!(t["srcPort"], sport4);
                assert!(seen4.insert(dport), "duplicate record for port {dport}");
            }
            Some(6) => {
                assert_eq!(p["ETHERNET"]["etherType"], 0x86dd);
                assert_eq!(ip["srcIp"], hosts.v6_a.as_str());
                assert_eq!(ip["dstIp"], hosts.v6_b.as_str());
                assert_eq!(ip["length"], 8 + PAYLOAD, "IPv6 payload length");
                assert_eq!(p["length"], 14 + 40 + 8 + PAYLOAD);
                assert_eq!(t["srcPort"], sport6);
                assert!(seen6.insert(dport), "duplicate record for port {dport}");
            }
            other => panic!("IP version {other:?}"),
        }
        // The trap time, not the time user space saw it: within the test's run.
        let ts: f64 = r["timestamp"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(ts <= now && ts > now - 60.0, "timestamp {ts} vs now {now}");
    }
    assert_eq!(seen4, v4_ports.into_iter().collect());
    assert_eq!(seen6, v6_ports.into_iter().collect());

    // Accounting: everything read was sent, nothing lost anywhere.
    let read = counter(&final_stats, "read");
    assert_eq!(counter(&final_stats, "sent"), read, "{final_stats}");
    for lost in ["ring_lost", "channel_lost", "send_lost", "decode_errors", "send_errors"] {
        assert_eq!(counter(&final_stats, lost), 0, "{lost}: {final_stats}");
    }
    assert_eq!(records.len() as u64, read, "every record read arrived: {final_stats}");

    // Self-telemetry: the final counters were streamed too, in the same format.
    let streamed: Vec<Value> =
        objects_in(&datagrams).into_iter().filter(|o| o["measurement"] == "trapstream_stats").collect();
    assert_eq!(streamed.len(), 1, "one report at shutdown (the interval is 60 s)");
    assert_eq!(streamed[0]["read"], read, "{}", streamed[0]);
    assert_eq!(streamed[0]["lost"], 0);
    assert_eq!(streamed[0]["deviceIP"], "127.0.0.1");
}

#[test]
fn influx_lines_over_udp_one_point_per_drop() {
    let hosts = Hosts::new();
    let netns_b = Hosts::netns_ino(&hosts.ns_b).to_string();
    let collector = Collector::bind("[::1]:0");
    let only_b = TempConfig::only_netns(&hosts.ns_b);
    let port = collector.port().to_string();
    let ts = Trapstream::start(&[
        "--source",
        "skb",
        "-f",
        "influx",
        "-i",
        "0.1",
        "-d",
        "192.0.2.7",
        "-c",
        only_b.arg(),
        "::1",
        &port,
    ]);
    let ports: Vec<u16> = (0..N).map(|i| 35000 + i).collect();
    hosts.udp_to_closed_ports(&hosts.v4_b, &ports, PAYLOAD);

    let ours = |got: &[Vec<u8>]| -> Vec<String> {
        got.iter()
            .flat_map(|d| {
                String::from_utf8(d.clone()).expect("utf-8").lines().map(str::to_string).collect::<Vec<_>>()
            })
            .filter(|l| {
                l.contains(&format!(",netnsIno={netns_b}i,")) && l.contains("skbDropReason=NO_SOCKET")
            })
            .collect()
    };
    let mut datagrams = collector.receive_until(Duration::from_secs(15), |got| ours(got).len() >= N as usize);
    let (status, _, _) = ts.stop();
    collector.drain(&mut datagrams);
    assert_eq!(status, 0);
    for d in &datagrams {
        assert!(d.len() <= 1400 && d.ends_with(b"\n"), "influx datagram: {} bytes", d.len());
    }
    let lines = ours(&datagrams);
    assert_eq!(lines.len(), N as usize);
    let telemetry: Vec<String> = datagrams
        .iter()
        .flat_map(|d| String::from_utf8_lossy(d).lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.starts_with("trapstream_stats,deviceIP=192.0.2.7 seen="))
        .collect();
    assert_eq!(telemetry.len(), 1, "the counters at shutdown, as line protocol");
    assert!(
        telemetry[0].contains(",ring_lost=0i,") && telemetry[0].contains(",lost=0i,"),
        "{}",
        telemetry[0]
    );
    let mut stamps = BTreeSet::new();
    for l in &lines {
        assert!(
            l.starts_with("DroppedPackets,description=Packet\\ dropped\\ by\\ the\\ Linux\\ network\\ stack"),
            "{l}"
        );
        assert!(l.contains(",deviceIP=192.0.2.7,"), "{l}");
        assert!(l.contains(&format!(",ingressPort={},", hosts.dev_b)), "{l}");
        assert!(
            l.contains(&format!(",packet_ethernet_dstMac={MAC_B},packet_ethernet_srcMac={MAC_A},")),
            "{l}"
        );
        assert!(l.contains(&format!(",packet_ip_srcIp={},packet_packetType=transport,", hosts.v4_a)), "{l}");
        assert!(l.contains(&format!("packet_ip_dstIp=\"{}\"", hosts.v4_b)), "{l}");
        assert!(l.contains(&format!("packet_ip_length={}i,", 28 + PAYLOAD)), "{l}");
        assert!(l.contains("packet_ip_ttl=64i,"), "{l}");
        let stamp: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(stamps.insert(stamp), "two points share timestamp {stamp}");
    }
}

#[test]
fn stdout_json_lines_and_text() {
    let hosts = Hosts::new();
    let netns_b = Hosts::netns_ino(&hosts.ns_b);
    for format in ["json", "text"] {
        let only_b = TempConfig::only_netns(&hosts.ns_b);
        let ts = Trapstream::start(&["--stdout", "--source", "skb", "-f", format, "--config", only_b.arg()]);
        hosts.udp_to_closed_ports(&hosts.v4_b, &[36000, 36001, 36002], PAYLOAD);
        std::thread::sleep(Duration::from_millis(500));
        let (status, stdout, _) = ts.stop();
        assert_eq!(status, 0);
        match format {
            "json" => {
                let ours: Vec<Value> = stdout
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
                    .filter(|r| r["netnsIno"] == netns_b && r["skbDropReason"] == "NO_SOCKET")
                    .collect();
                assert_eq!(ours.len(), 3, "{stdout}");
                assert!(ours.iter().all(|r| r.is_object()));
            }
            _ => {
                let mine = format!(" {} kernelDrop NO_SOCKET ", hosts.dev_b);
                let ours: Vec<&str> = stdout.lines().filter(|l| l.contains(&mine)).collect();
                assert_eq!(ours.len(), 3, "{stdout}");
                for (l, port) in ours.iter().zip([36000, 36001, 36002]) {
                    assert!(l.contains(&format!("kernelDrop NO_SOCKET [Notice] udp {}:", hosts.v4_a)), "{l}");
                    assert!(
                        l.ends_with(&format!("> {}:{port} ttl 64 len {}", hosts.v4_b, 28 + PAYLOAD)),
                        "{l}"
                    );
                }
            }
        }
    }
}

/// With its collector's port closed, each datagram trapstream sends is itself
/// dropped (NO_SOCKET). Those drops must not become records, or every record
/// would make the next one, forever.
#[test]
fn drops_of_its_own_datagrams_are_not_reported() {
    let hosts = Hosts::new();
    let cfg = TempConfig::only_no_socket_in(&hosts.ns_b);
    // Inside B, so the closed collector port is B's loopback; port 9 (discard) has no listener.
    let ts = Trapstream::start_in(
        Some(&hosts.ns_b),
        &[
            "--source",
            "skb",
            "-c",
            cfg.arg(),
            "-i",
            "0.02",
            "-b",
            "1",
            "--stats-interval",
            "0",
            "127.0.0.1",
            "9",
        ],
    );
    hosts.udp_to_closed_ports(&hosts.v4_b, &[37000, 37001, 37002], PAYLOAD);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0);
    assert_eq!(counter(&final_stats, "read"), 3, "only the three real drops: {final_stats}");
    assert_eq!(counter(&final_stats, "datagrams"), 3, "{final_stats}");
    assert!(counter(&final_stats, "filtered") >= 3, "its own dropped datagrams: {final_stats}");
}
