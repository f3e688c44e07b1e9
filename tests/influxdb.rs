//! A real collector: trapstream streams live kernel drops (--source skb) as
//! line protocol over UDP into an InfluxDB 1.x that this test runs on
//! loopback, and the test reads the points back over InfluxDB's HTTP API.
//! What a dashboard will see is checked there, after InfluxDB's own parser:
//! one point per drop, the tag/field split and field types, the point time,
//! and that every query of examples/grafana-dashboard.json runs. Needs root
//! and influxd (Debian's influxdb package, which .ci/setup installs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{counter, Hosts, TempConfig, Trapstream, MAC_A, MAC_B};
use serde_json::{json, Value};

const DB: &str = "trapstream";
const MEASUREMENT: &str = "DroppedPackets";
const STATS_MEASUREMENT: &str = "trapstream_stats";
const PAYLOAD: usize = 20;
const DEVICE_IP: &str = "192.0.2.7";
const SKB_DESCRIPTION: &str =
    "Packet dropped by the Linux network stack; see skbDropReason (enum skb_drop_reason)";

/// An influxd of our own: its own directories and loopback ports, so neither
/// a packaged service nor another test run can see or spoil its data. Killed
/// and removed on drop, also when an assertion fails.
struct Influxd {
    child: Child,
    dir: PathBuf,
    http_port: u16,
    udp_port: u16,
}

fn influxd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("influxd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "influxd not found: run `bash .ci/setup` (it installs Debian's influxdb package, as CI does)"
            )
        })
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Influxd {
    fn start() -> Influxd {
        let binary = influxd_binary();
        let dir = std::env::temp_dir().join(format!("trapstream-influxdb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("influxdb dir");
        let (http_port, udp_port, rpc_port) = (free_tcp_port(), free_udp_port(), free_tcp_port());
        let d = dir.display();
        // The RPC (backup) port is pinned too: its default, 8088, may belong
        // to a packaged influxd. The UDP batch is small and short so points
        // are queryable within milliseconds, not the default second.
        let config = format!(
            r#"reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:{udp_port}"
  database = "{DB}"
  batch-size = 10
  batch-timeout = "20ms"
  read-buffer = 8388608
"#
        );
        let config_path = dir.join("influxdb.conf");
        fs::write(&config_path, config).expect("write influxdb.conf");
        let log = fs::File::create(dir.join("influxd.log")).expect("log file");
        let child = Command::new(&binary)
            .arg("run")
            .arg("-config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut influx = Influxd { child, dir, http_port, udp_port };
        influx.wait_ready();
        influx
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("influxd.log")).unwrap_or_default()
    }

    /// HTTP answers before the UDP listener is open (services start in
    /// order), and a datagram sent before then would be refused: wait for
    /// both. The UDP port is open once we can no longer bind it ourselves.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("influxd exited ({status}) while starting:\n{}", self.log());
            }
            let http_up = self.request("GET", "/ping").map(|(status, _)| status == 204).unwrap_or(false);
            let udp_up = UdpSocket::bind(("127.0.0.1", self.udp_port)).is_err();
            if http_up && udp_up {
                return;
            }
            assert!(Instant::now() < deadline, "influxd not ready within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A minimal HTTP/1.0 exchange: the server closes the connection after
    /// the response, so the body is everything after the headers.
    fn request(&self, method: &str, target: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// One InfluxQL statement; its result object, or a panic naming the
    /// statement and InfluxDB's error. Times come back as integer ns.
    fn query_with(&self, method: &str, q: &str) -> Value {
        let target = format!("/query?db={DB}&epoch=ns&q={}", url_encode(q));
        let (status, body) = self.request(method, &target).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(status, 200, "{q}: HTTP {status}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
        let result = v["results"][0].clone();
        if let Some(error) = result["error"].as_str() {
            panic!("{q}: InfluxDB says: {error}");
        }
        result
    }

    fn query(&self, q: &str) -> Value {
        self.query_with("GET", q)
    }

    /// Every row of every series, as column → value, with the series' GROUP
    /// BY tags merged in.
    fn rows(&self, q: &str) -> Vec<BTreeMap<String, Value>> {
        let result = self.query(q);
        let mut rows = Vec::new();
        for series in result["series"].as_array().into_iter().flatten() {
            let columns: Vec<&str> =
                series["columns"].as_array().expect("columns").iter().map(|c| c.as_str().unwrap()).collect();
            for values in series["values"].as_array().into_iter().flatten() {
                let mut row: BTreeMap<String, Value> =
                    columns.iter().map(|c| c.to_string()).zip(values.as_array().unwrap().clone()).collect();
                if let Some(tags) = series["tags"].as_object() {
                    row.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                rows.push(row);
            }
        }
        rows
    }

    fn point_count(&self) -> u64 {
        let rows = self.rows(&format!("SELECT count(\"timestamp\") FROM \"{MEASUREMENT}\""));
        rows.first().and_then(|r| r["count"].as_u64()).unwrap_or(0)
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("influxd log:\n{}", self.log());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64
}

/// The `timestamp` field, Unix seconds with exactly 9 decimals, in ns.
fn timestamp_ns(text: &str) -> u64 {
    let (secs, frac) = text.split_once('.').unwrap_or_else(|| panic!("timestamp {text:?}: no decimals"));
    assert!(
        frac.len() == 9 && frac.bytes().all(|b| b.is_ascii_digit()),
        "timestamp {text:?}: not 9 decimals"
    );
    secs.parse::<u64>().expect("seconds") * 1_000_000_000 + frac.parse::<u64>().expect("fraction")
}

#[test]
fn live_drops_become_one_influxdb_point_each_with_the_documented_schema() {
    let influx = Influxd::start();
    // CREATE needs POST in InfluxDB 1.x.
    influx.query_with("POST", &format!("CREATE DATABASE \"{DB}\""));

    let hosts = Hosts::new();
    let netns_b = Hosts::netns_ino(&hosts.ns_b);
    let ifindex_b = Hosts::ifindex(&hosts.ns_b, &hosts.dev_b);
    let config = TempConfig::only_no_socket_in(&hosts.ns_b);
    let udp_port = influx.udp_port.to_string();
    // Datagrams larger than one line, so InfluxDB has to split several lines
    // per datagram (the default 1400 bytes holds about one of these).
    let ts = Trapstream::start(&[
        "--source",
        "skb",
        "-f",
        "influx",
        "-c",
        config.arg(),
        "-d",
        DEVICE_IP,
        "-i",
        "0.05",
        "-b",
        "50",
        "--max-datagram",
        "9000",
        "127.0.0.1",
        &udp_port,
    ]);

    let started = now_ns();
    // Three kinds of traffic, each flow seen more than once: repeated flows
    // share a series in InfluxDB, where only distinct times keep their
    // points apart; the burst puts drops microseconds apart.
    let v4_ports: Vec<u16> = (0..10).flat_map(|i| [41000 + i, 41000 + i]).collect();
    let v6_ports: Vec<u16> = (0..10).map(|i| 42000 + i).collect();
    let burst_ports = [43000u16, 43001];
    let burst_per_port = 15;
    let sport4 = hosts.udp_to_closed_ports(&hosts.v4_b, &v4_ports, PAYLOAD);
    let sport6 = hosts.udp_to_closed_ports(&hosts.v6_b, &v6_ports, PAYLOAD);
    let burst_socket = hosts.socket_in_a();
    let sport_burst = burst_socket.local_addr().expect("addr").port();
    let burst = hosts.udp_flood(&burst_socket, &hosts.v4_b, &burst_ports, burst_per_port, PAYLOAD, None);

    // (IP version, source port, destination port) → drops sent.
    let mut expected: BTreeMap<(u64, u16, u16), u64> = BTreeMap::new();
    for &p in &v4_ports {
        *expected.entry((4, sport4, p)).or_default() += 1;
    }
    for &p in &v6_ports {
        *expected.entry((6, sport6, p)).or_default() += 1;
    }
    for &p in &burst_ports {
        *expected.entry((4, sport_burst, p)).or_default() += u64::from(burst_per_port);
    }
    let n = (v4_ports.len() + v6_ports.len()) as u64 + burst;
    assert_eq!(expected.values().sum::<u64>(), n);

    let deadline = Instant::now() + Duration::from_secs(20);
    while influx.point_count() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, final_stats) = ts.stop();
    assert_eq!(status, 0, "clean exit on SIGTERM");
    // Anything still in flight lands within a few of the listener's 20 ms batches.
    std::thread::sleep(Duration::from_millis(300));

    // trapstream's side: every drop sent, nothing lost, lines shared datagrams.
    assert_eq!(counter(&final_stats, "sent"), n, "N drops, N records sent: {final_stats}");
    for lost in ["ring_lost", "channel_lost", "send_lost", "send_errors", "decode_errors", "oversize"] {
        assert_eq!(counter(&final_stats, lost), 0, "{lost}: {final_stats}");
    }
    assert!(counter(&final_stats, "datagrams") < n, "several lines per datagram: {final_stats}");

    // InfluxDB's side: N points, none merged, none rejected.
    let points = influx.rows(&format!("SELECT * FROM \"{MEASUREMENT}\""));
    let finished = now_ns();
    // Shown with --nocapture or on failure: what InfluxDB made of a record.
    println!("{} points; the first: {:?}", points.len(), points.first());
    assert_eq!(points.len() as u64, n, "N drops must be N points in {MEASUREMENT}");

    let mut times = BTreeSet::new();
    let mut got: BTreeMap<(u64, u16, u16), u64> = BTreeMap::new();
    for p in &points {
        let text =
            |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {k} in {p:?}"));
        let int =
            |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or_else(|| panic!("no integer {k} in {p:?}"));

        // The point time is the trap time: the same instant as the record's
        // own timestamp (the encoder may nudge a shared nanosecond by 1 ns),
        // and inside this test's run (a few ms of slack for the clock
        // conversion from CLOCK_BOOTTIME).
        let time = int("time");
        let stamp = timestamp_ns(text("timestamp"));
        assert!(time.abs_diff(stamp) <= 1_000, "point time {time} vs timestamp field {stamp}");
        assert!(
            time + 5_000_000 >= started && time <= finished,
            "point time {time} outside the run [{started}, {finished}]"
        );
        assert!(times.insert(time), "two points at {time}");

        assert_eq!(text("dropReason"), "NO_SOCKET");
        assert_eq!(text("skbDropReason"), "NO_SOCKET");
        assert_eq!(text("dropType"), "kernel");
        assert_eq!(text("message"), "kernelDrop");
        assert_eq!(text("severity"), "Notice");
        assert_eq!(text("source"), "skb");
        // Spaces, ';' and parentheses survive InfluxDB's tag parser.
        assert_eq!(text("description"), SKB_DESCRIPTION);
        assert_eq!(text("deviceIP"), DEVICE_IP);
        assert_eq!(text("ingressPort"), hosts.dev_b);
        assert_eq!(text("packet_ethernet_srcMac"), MAC_A);
        assert_eq!(text("packet_ethernet_dstMac"), MAC_B);
        assert_eq!(text("packet_packetType"), "transport");
        assert_eq!(int("ingressIfIndex"), u64::from(ifindex_b));
        assert_eq!(int("netnsIno"), u64::from(netns_b));
        assert_eq!(int("packet_ip_protocol"), 17);
        assert_eq!(text("packet_ip_protocolName"), "17 (udp)");
        assert_eq!(int("packet_ip_ttl"), 64);
        assert_eq!(int("packet_transport_udpLength"), 8 + PAYLOAD as u64);
        let version = int("packet_ip_version");
        let (src, dst, ip_length, frame) = match version {
            4 => (&hosts.v4_a, &hosts.v4_b, 20 + 8 + PAYLOAD, 14 + 20 + 8 + PAYLOAD),
            6 => (&hosts.v6_a, &hosts.v6_b, 8 + PAYLOAD, 14 + 40 + 8 + PAYLOAD),
            v => panic!("IP version {v}"),
        };
        assert_eq!(text("packet_ip_srcIp"), src.as_str());
        assert_eq!(text("packet_ip_dstIp"), dst.as_str());
        assert_eq!(int("packet_ip_length"), ip_length as u64);
        assert_eq!(int("packet_length"), frame as u64);
        let dst_port: u16 = text("packet_transport_dstPort").parse().expect("dstPort tag is a number");
        let src_port = u16::try_from(int("packet_transport_srcPort")).expect("port");
        *got.entry((version, src_port, dst_port)).or_default() += 1;
    }
    assert_eq!(got, expected, "points per (IP version, srcPort, dstPort) = drops sent");

    // The tag/field split and field types, as InfluxDB stored them: what
    // dashboards can GROUP BY and what they can aggregate.
    let tag_keys: BTreeSet<String> = influx
        .rows(&format!("SHOW TAG KEYS FROM \"{MEASUREMENT}\""))
        .iter()
        .map(|r| r["tagKey"].as_str().unwrap().to_string())
        .collect();
    let expected_tags = [
        "description",
        "deviceIP",
        "dropReason",
        "dropType",
        "ingressPort",
        "message",
        "packet_ethernet_dstMac",
        "packet_ethernet_srcMac",
        "packet_ip_srcIp",
        "packet_packetType",
        "packet_transport_dstPort",
        "severity",
        "skbDropReason",
        "source",
    ];
    assert_eq!(
        tag_keys,
        expected_tags.iter().map(|s| s.to_string()).collect(),
        "tag keys (the README's T column; every tag is a series dimension)"
    );
    let field_types: BTreeMap<String, String> = influx
        .rows(&format!("SHOW FIELD KEYS FROM \"{MEASUREMENT}\""))
        .iter()
        .map(|r| (r["fieldKey"].as_str().unwrap().to_string(), r["fieldType"].as_str().unwrap().to_string()))
        .collect();
    let expected_fields = [
        ("ingressIfIndex", "integer"),
        ("netnsIno", "integer"),
        ("packet_ethernet_etherType", "integer"),
        ("packet_ethernet_etherTypeName", "string"),
        ("packet_ip_dontFragment", "boolean"),
        ("packet_ip_dstIp", "string"),
        ("packet_ip_flowLabel", "integer"),
        ("packet_ip_id", "integer"),
        ("packet_ip_length", "integer"),
        ("packet_ip_protocol", "integer"),
        ("packet_ip_protocolName", "string"),
        ("packet_ip_tos", "integer"),
        ("packet_ip_ttl", "integer"),
        ("packet_ip_version", "integer"),
        ("packet_length", "integer"),
        ("packet_transport_dstPortName", "string"),
        ("packet_transport_srcPort", "integer"),
        ("packet_transport_srcPortName", "string"),
        ("packet_transport_udpLength", "integer"),
        ("timestamp", "string"),
    ];
    assert_eq!(
        field_types,
        expected_fields.iter().map(|(k, t)| (k.to_string(), t.to_string())).collect(),
        "field keys and types (the README's F column)"
    );

    let tag_values = |key: &str| -> BTreeSet<String> {
        influx
            .rows(&format!("SHOW TAG VALUES FROM \"{MEASUREMENT}\" WITH KEY = \"{key}\""))
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_string())
            .collect()
    };
    let set = |values: &[&str]| values.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(tag_values("dropReason"), set(&["NO_SOCKET"]));
    assert_eq!(tag_values("ingressPort"), set(&[hosts.dev_b.as_str()]));
    assert_eq!(tag_values("deviceIP"), set(&[DEVICE_IP]));
    assert_eq!(tag_values("packet_ip_srcIp"), set(&[hosts.v4_a.as_str(), hosts.v6_a.as_str()]));
    assert_eq!(tag_values("packet_ethernet_srcMac"), set(&[MAC_A]));
    assert_eq!(tag_values("packet_ethernet_dstMac"), set(&[MAC_B]));
    let ports: BTreeSet<String> = expected.keys().map(|(_, _, p)| p.to_string()).collect();
    assert_eq!(tag_values("packet_transport_dstPort"), ports);

    // A dashboard-style count per series: the burst's points share one
    // series per port and all of them are there.
    let per_port: BTreeMap<String, u64> = influx
        .rows(&format!(
            "SELECT count(\"timestamp\") FROM \"{MEASUREMENT}\" WHERE \"dropReason\" = 'NO_SOCKET' \
             GROUP BY \"packet_transport_dstPort\""
        ))
        .iter()
        .map(|r| (r["packet_transport_dstPort"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap()))
        .collect();
    for port in burst_ports {
        assert_eq!(per_port[&port.to_string()], u64::from(burst_per_port), "burst to port {port}");
    }

    // trapstream's own counters reach the collector too, in their own
    // measurement: at shutdown at the latest, agreeing with its final log line.
    let stats = influx.rows(&format!("SELECT * FROM \"{STATS_MEASUREMENT}\""));
    println!("{STATS_MEASUREMENT}: {} points; the last: {:?}", stats.len(), stats.last());
    let last = stats.last().unwrap_or_else(|| panic!("no {STATS_MEASUREMENT} point in InfluxDB"));
    assert_eq!(last["deviceIP"], DEVICE_IP);
    assert_eq!(last["sent"], json!(n), "the last counters sent: {last:?}\nlog: {final_stats}");
    assert_eq!(last["lost"], json!(0), "{last:?}");
    assert_eq!(last["time"], last["time_ns"], "a counters point is at its snapshot time");
    let stats_types: BTreeSet<String> = influx
        .rows(&format!("SHOW FIELD KEYS FROM \"{STATS_MEASUREMENT}\""))
        .iter()
        .map(|r| r["fieldType"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stats_types, set(&["integer"]), "every counter is an integer field");

    dashboard_queries_run(&influx);
}

/// Every query in examples/grafana-dashboard.json, with Grafana's macros and
/// variables filled in as Grafana would, runs against the data above without
/// an InfluxQL error; the panels over per-event records return data.
fn dashboard_queries_run(influx: &Influxd) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&fs::read_to_string(path).expect(path)).expect("dashboard JSON");
    let variables: Vec<String> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query" || v["type"] == "custom")
        .map(|v| v["name"].as_str().expect("variable name").to_string())
        .collect();
    let fill = |q: &str| -> String {
        let mut q = q.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "10s");
        // Grafana renders a multi-value or All selection inside /^...$/ as a
        // regex alternation; any value matches here.
        for v in &variables {
            q = q.replace(&format!("${{{v}:regex}}"), ".*").replace(&format!("${v}"), ".*");
        }
        // A '$' left before a name is a macro this test does not know ('$/'
        // is a regex anchor).
        let unfilled = q
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'$' && (w[1].is_ascii_alphabetic() || b"_{".contains(&w[1])));
        assert!(!unfilled, "unfilled macro in {q}");
        q
    };

    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str().or_else(|| v["query"]["query"].as_str()) {
            if v["type"] == "query" {
                let values = influx.rows(&fill(q));
                assert!(!values.is_empty(), "variable {} has no values: {q}", v["name"]);
            }
        }
    }

    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let q =
                target["query"].as_str().unwrap_or_else(|| panic!("panel {}: no raw query", panel["title"]));
            assert_eq!(target["rawQuery"], json!(true), "panel {}: raw InfluxQL", panel["title"]);
            let rows = influx.rows(&fill(q));
            queries += 1;
            println!("panel {}: {} rows, first {:?}", panel["title"], rows.len(), rows.first());
            // Aggregated (-u) records are the only ones with a count field;
            // this run sends per-event records, so those panels are empty.
            if !q.contains("\"count\"") {
                assert!(!rows.is_empty(), "panel {}: no data from {q}", panel["title"]);
            }
        }
    }
    assert!(queries >= 5, "the dashboard's panels have queries");
}
