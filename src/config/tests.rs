use super::*;

fn config(args: &[&str]) -> Result<Config> {
    let argv = std::iter::once("trapstream").chain(args.iter().copied());
    Config::load(&cli::parse(argv)?)
}

fn with_file(text: &str, args: &[&str]) -> Result<Config> {
    let argv = std::iter::once("trapstream").chain(args.iter().copied());
    let cli = cli::parse(argv)?;
    Config::build(&cli, Some((&PathBuf::from("/etc/trapstream/trapstream.toml"), text)))
}

fn error(result: Result<Config>) -> String {
    match result {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            let text = e.to_string();
            assert_eq!(text.lines().count(), 1, "not one line: {text:?}");
            text
        }
    }
}

#[test]
fn defaults_match_the_original() {
    let c = config(&["127.0.0.1", "8094"]).unwrap();
    assert_eq!(c.output, Output::Udp { collector: "127.0.0.1:8094".parse().unwrap() });
    assert_eq!(c.batch_size, 20);
    assert_eq!(c.batch_interval, Duration::from_secs(5));
    assert_eq!(c.retry_timeout, Duration::from_secs(10));
    assert_eq!(c.format, Format::Json);
    assert_eq!(c.max_datagram, 1400);
    assert_eq!(c.unique_interval, None);
    assert_eq!(c.lru_size, 1024, "the original's table size");
    assert_eq!(c.sources, Sources { devlink: true, skb: false });
    assert_eq!(c.trap_type_mask, 0b1011, "control traps are off by default, threshold events on");
    assert_eq!(c.stats_interval, Some(Duration::from_secs(60)));
    assert_eq!(c.filters, Filters::default());
    // Loopback collector: the kernel's route lookup picks loopback.
    assert_eq!(c.device_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn original_spellings_and_values() {
    let c = config(&[
        "-i",
        "0.25",
        "--batch_size",
        "7",
        "--device_ip",
        "10.5.1.101",
        "-f",
        "influx",
        "--unique_interval",
        "2.5",
        "--retry_timeout",
        "3",
        "-v",
        "::1",
        "9000",
    ])
    .unwrap();
    assert_eq!(c.batch_interval, Duration::from_millis(250));
    assert_eq!(c.batch_size, 7);
    assert_eq!(c.device_ip, "10.5.1.101".parse::<IpAddr>().unwrap());
    assert_eq!(c.format, Format::Influx);
    assert_eq!(c.unique_interval, Some(Duration::from_millis(2500)));
    assert_eq!(c.retry_timeout, Duration::from_secs(3));
    assert!(c.verbose);
    assert_eq!(c.output, Output::Udp { collector: "[::1]:9000".parse().unwrap() });
}

#[test]
fn stdout_and_sources() {
    let c = config(&["--stdout", "--source", "all", "-f", "text", "--trap-types", "drop,control"]).unwrap();
    assert_eq!(c.output, Output::Stdout);
    assert_eq!(c.sources, Sources { devlink: true, skb: true });
    assert_eq!(c.trap_type_mask, 0b101);
    assert_eq!(c.format, Format::Text);
}

#[test]
fn threshold_is_a_trap_type_in_flags_and_file() {
    // Bit 3: the kernel side tests `1 << TS_TRAP_TYPE_THRESHOLD`.
    let c = config(&["--stdout", "--trap-types", "threshold"]).unwrap();
    assert_eq!(c.trap_type_mask, 0b1000);
    let c = config(&["--stdout", "--trap-types", "drop,exception"]).unwrap();
    assert_eq!(c.trap_type_mask, 0b0011, "an explicit list without it leaves threshold events out");
    let c = with_file("trap_types = [\"threshold\", \"control\"]\n", &["--stdout"]).unwrap();
    assert_eq!(c.trap_type_mask, 0b1100);
}

#[test]
fn pcap_alone_is_an_output_and_its_settings_come_from_flags_or_file() {
    let c = config(&["--pcap", "-"]).unwrap();
    assert_eq!(c.output, Output::None);
    let p = c.pcap.unwrap();
    assert_eq!((p.path, p.snap_len, p.rotate_size), (PcapPath::Stdout, 256, None));
    let c = config(&["--pcap", "/tmp/x.pcapng", "--pcap-snaplen", "1024", "127.0.0.1", "9"]).unwrap();
    assert!(matches!(c.output, Output::Udp { .. }), "a collector and --pcap at once");
    assert_eq!(c.pcap.unwrap().snap_len, 1024);
    let c = with_file(
        "pcap = \"/tmp/y.pcapng\"\npcap_snaplen = 96\npcap_rotate_size = 65536\npcap_rotate_files = 3\n",
        &["--stdout"],
    )
    .unwrap();
    let p = c.pcap.unwrap();
    assert_eq!(p.path, PcapPath::File("/tmp/y.pcapng".into()));
    assert_eq!((p.snap_len, p.rotate_size, p.rotate_files), (96, Some(65536), 3));
    assert!(config(&["--stdout"]).unwrap().pcap.is_none());
}

#[test]
fn bad_flags_are_one_line_and_status_2() {
    let table: &[(&[&str], &str)] = &[
        (&["300.1.1.1", "8094"], "collector address '300.1.1.1' is not an IPv4 or IPv6 address"),
        (&["127.0.0.1", "0"], "COLLECTOR_PORT must be 1..65535, got 0"),
        (&["127.0.0.1", "65536"], "COLLECTOR_PORT must be 1..65535, got 65536"),
        (&["127.0.0.1", "http"], "COLLECTOR_PORT 'http' is not a port number"),
        (&["-b", "0", "127.0.0.1", "1"], "--batch-size must be 1..=1048576, got 0"),
        (&["-i", "-1", "127.0.0.1", "1"], "--interval must be 0 or more seconds, got -1"),
        (&["-i", "soon", "127.0.0.1", "1"], "--interval 'soon' is not a number of seconds"),
        (&["-u", "0", "127.0.0.1", "1"], "--unique-interval must be more than 0 seconds, got 0"),
        (&["--max-datagram", "65508", "127.0.0.1", "1"], "--max-datagram must be 64..=65507, got 65508"),
        (&["--ring-size", "5000", "--stdout"], "--ring-size must be a power of two, got 5000"),
        (&["--lru-size", "0", "--stdout"], "--lru-size must be 4..=1048576, got 0"),
        (&["-d", "nope", "127.0.0.1", "1"], "--device-ip 'nope' is not an IPv4 or IPv6 address"),
        (&[], "a collector (COLLECTOR_IP COLLECTOR_PORT), --stdout or --pcap is required"),
        (&["--pcap", "-", "--stdout"], "--pcap - writes the capture to standard output: it cannot take --stdout's records too"),
        (&["--pcap", ""], "--pcap needs a file name, or - for standard output"),
        (&["--pcap", "x", "--pcap-snaplen", "0"], "--pcap-snaplen must be 1..=1024, got 0"),
        (&["--pcap", "x", "--pcap-snaplen", "1025"], "--pcap-snaplen must be 1..=1024, got 1025"),
        (&["--pcap-snaplen", "64", "--stdout"], "--pcap-snaplen needs --pcap"),
        (&["--pcap", "x", "--pcap-rotate-size", "100"], "--pcap-rotate-size must be 4096..=1099511627776, got 100"),
        (
            &["--pcap", "-", "--pcap-rotate-size", "100000"],
            "--pcap-rotate-size rotates files: it does not apply to --pcap - (standard output)",
        ),
        (&["--pcap", "x", "--pcap-rotate-files", "3"], "--pcap-rotate-files needs --pcap-rotate-size"),
        (&["--pcap", "x", "--pcap-rotate-size", "8192", "--pcap-rotate-files", "0"], "--pcap-rotate-files must be 1..=100000, got 0"),
        (
            &["--pcap", "x", "-u", "1"],
            "-u counts packets without their bytes, which --pcap cannot show: give a collector or --stdout too",
        ),
        (&["127.0.0.1"], "missing COLLECTOR_PORT after COLLECTOR_IP"),
        (&["--stdout", "127.0.0.1", "1"], "--stdout takes no collector address and port"),
        (&["-f", "text", "127.0.0.1", "1"], "-f text is for --stdout only; collectors take json or influx"),
    ];
    for (args, expected) in table {
        assert_eq!(error(config(args)), *expected, "{args:?}");
    }
    // clap's own errors are cut to their first line too.
    assert!(error(config(&["-f", "xml", "--stdout"])).contains("invalid value 'xml'"));
    assert!(error(config(&["--source", "asic", "--stdout"])).contains("invalid value 'asic'"));
    assert!(error(config(&["--bogus", "--stdout"])).contains("unexpected argument '--bogus'"));
}

const GOOD_FILE: &str = r#"
# A switch's configuration.
collector_ip = "192.0.2.10"
collector_port = 8094
format = "influx"
interval = 0.5
batch_size = 50
unique_interval = 10
lru_size = 4096
source = "all"
trap_types = ["drop", "exception", "control"]
stats_interval = 0

[filters]
exclude_trap_names = ["igmp_query"]
include_trap_groups = ["l3_drops", "l3_exceptions"]
include_ports = ["swp1", "swp2"]
exclude_reasons = ["NOT_SPECIFIED"]
include_netns = [4026531840]

[taxonomy.blackhole_route]
severity = "Critical"
message = "routeDrop"
"#;

#[test]
fn a_good_file_sets_everything_and_flags_override_it() {
    let c = with_file(GOOD_FILE, &[]).unwrap();
    assert_eq!(c.output, Output::Udp { collector: "192.0.2.10:8094".parse().unwrap() });
    assert_eq!(c.format, Format::Influx);
    assert_eq!(c.batch_interval, Duration::from_millis(500));
    assert_eq!(c.batch_size, 50);
    assert_eq!(c.unique_interval, Some(Duration::from_secs(10)));
    assert_eq!(c.lru_size, 4096);
    assert_eq!(c.sources, Sources { devlink: true, skb: true });
    assert_eq!(c.trap_type_mask, 0b111);
    assert_eq!(c.stats_interval, None);
    assert_eq!(c.filters.exclude_trap_names, vec!["igmp_query"]);
    assert_eq!(c.filters.include_trap_groups, vec!["l3_drops", "l3_exceptions"]);
    assert_eq!(c.filters.include_ports, vec!["swp1", "swp2"]);
    assert_eq!(c.filters.exclude_reasons, vec!["NOT_SPECIFIED"]);
    assert_eq!(c.filters.include_netns, vec![4026531840]);
    let t = &c.taxonomy["blackhole_route"];
    assert_eq!((t.severity.as_deref(), t.message.as_deref()), (Some("Critical"), Some("routeDrop")));

    let c = with_file(GOOD_FILE, &["-b", "5", "-f", "json", "198.51.100.1", "9000"]).unwrap();
    assert_eq!(c.batch_size, 5, "flags override the file");
    assert_eq!(c.format, Format::Json);
    assert_eq!(c.output, Output::Udp { collector: "198.51.100.1:9000".parse().unwrap() });
    assert_eq!(c.lru_size, 4096, "what flags leave alone stays from the file");
}

#[test]
fn bad_files_name_the_file_line_and_problem() {
    let p = "/etc/trapstream/trapstream.toml";
    let table: &[(&str, String)] = &[
        ("collector_ip = \"192.0.2.10\"\ncolector_port = 8094\n", format!("{p}: line 2: unknown field `colector_port`")),
        ("stdout = true\nbatch_size = 0\n", format!("{p}: line 2: batch_size must be 1..=1048576, got 0")),
        ("stdout = true\n\ninterval = -3\n", format!("{p}: line 3: interval must be 0 or more seconds, got -3")),
        ("stdout = true\ninterval = \"5\"\n", format!("{p}: line 2: data did not match any variant")),
        ("stdout = true\nformat = \"xml\"\n", format!("{p}: line 2: unknown variant `xml`, expected one of `json`, `influx`, `text`")),
        ("collector_ip = \"192.0.2.300\"\ncollector_port = 1\n", format!("{p}: line 1: collector_ip '192.0.2.300' is not an IPv4 or IPv6 address")),
        ("collector_ip = \"192.0.2.3\"\ncollector_port = 70000\n", format!("{p}: line 2: collector_port must be 1..65535, got 70000")),
        ("stdout = true\nring_size = 5000\n", format!("{p}: line 2: ring_size must be a power of two, got 5000")),
        ("stdout = true\nlru_size = 2\n", format!("{p}: line 2: lru_size must be 4..=1048576, got 2")),
        ("stdout = true\n[filters]\ninclude_trap_name = [\"x\"]\n", format!("{p}: line 3: unknown field `include_trap_name`")),
        ("stdout = true\n[taxonomy.blackhole_route]\nseverity = \"Bad\"\n", format!("{p}: line 3: taxonomy.blackhole_route.severity 'Bad' is not one of Critical, Error, Warning, Notice, Info")),
        ("stdout = true\n[taxonomy.x]\ncolour = \"red\"\n", format!("{p}: line 3: unknown field `colour`")),
        ("stdout = true\n[filters]\ninclude_netns = [\"no-such-ns-here\"]\n", format!("{p}: line 3: filters.include_netns: network namespace 'no-such-ns-here'")),
        ("stdout = true\nbatch_size = \n", format!("{p}: line 2: ")),
        // Found by fuzzing: a newline inside a value must not split the error.
        ("stdout = true\nformat = \"te\\nxt\"\n", format!("{p}: line 2: unknown variant `te\\nxt`")),
        ("collector_ip = \"1.2.3.4\\n\"\ncollector_port = 1\n", format!("{p}: line 1: collector_ip '1.2.3.4\\n' is not")),
    ];
    for (text, expected) in table {
        let got = error(with_file(text, &[]));
        assert!(
            got.starts_with(expected.as_str()),
            "file {text:?}\n  got:      {got}\n  expected: {expected}"
        );
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let got = error(config(&["--config", "/nonexistent/trapstream.toml", "--stdout"]));
    assert_eq!(got, "/nonexistent/trapstream.toml: No such file or directory (os error 2)");
}

#[test]
fn rate_limit_as_number_or_per_second() {
    assert_eq!(config(&["--stdout"]).unwrap().rate_limit, 0, "off by default");
    assert_eq!(config(&["--stdout", "--rate-limit", "500"]).unwrap().rate_limit, 500);
    assert_eq!(config(&["--stdout", "--rate-limit", "500/s"]).unwrap().rate_limit, 500);
    assert_eq!(with_file("stdout = true\nrate_limit = \"20/s\"\n", &[]).unwrap().rate_limit, 20);
    assert_eq!(with_file("stdout = true\nrate_limit = 7\n", &[]).unwrap().rate_limit, 7);
    assert_eq!(
        error(config(&["--stdout", "--rate-limit", "fast"])),
        "--rate-limit 'fast' is not a whole number"
    );
    assert_eq!(
        error(config(&["--stdout", "--rate-limit", "-5/s"])),
        "--rate-limit must be 0..=100000000, got -5"
    );
    assert_eq!(
        error(with_file("stdout = true\nrate_limit = \"9/m\"\n", &[])),
        "/etc/trapstream/trapstream.toml: line 2: rate_limit '9/m' is not a whole number"
    );
}

#[test]
fn tcp_transport_and_backlog() {
    let c = config(&["--transport", "tcp", "-r", "2", "--tcp-backlog", "1000", "127.0.0.1", "8094"]).unwrap();
    assert_eq!(c.output, Output::Tcp { collector: "127.0.0.1:8094".parse().unwrap(), backlog_bytes: 1000 });
    assert_eq!(c.retry_timeout, Duration::from_secs(2));
    let c = with_file("transport = \"tcp\"\ncollector_ip = \"::1\"\ncollector_port = 9\n", &[]).unwrap();
    assert_eq!(c.output, Output::Tcp { collector: "[::1]:9".parse().unwrap(), backlog_bytes: 4 << 20 });
    assert!(error(config(&["--transport", "sctp", "127.0.0.1", "1"])).contains("invalid value 'sctp'"));
    assert_eq!(
        error(config(&["--transport", "tcp", "--tcp-backlog", "-1", "127.0.0.1", "1"])),
        "--tcp-backlog must be 0..=1073741824, got -1"
    );
}

#[test]
fn exemplars_only_with_aggregation_and_in_range() {
    assert_eq!(config(&["--stdout"]).unwrap().exemplars, 0, "off unless asked for");
    assert_eq!(config(&["--stdout", "-u", "10", "--exemplars", "3"]).unwrap().exemplars, 3);
    assert_eq!(config(&["--stdout", "-u", "10", "--exemplars", "1000"]).unwrap().exemplars, 1000);
    let table: &[(&[&str], &str)] = &[
        (
            &["--stdout", "--exemplars", "3"],
            "--exemplars needs -u (--unique-interval): exemplars are the first packets of counted flows",
        ),
        (&["--stdout", "-u", "10", "--exemplars", "0"], "--exemplars must be 1..=1000, got 0"),
        (&["--stdout", "-u", "10", "--exemplars", "1001"], "--exemplars must be 1..=1000, got 1001"),
        (&["--stdout", "-u", "10", "--exemplars", "-2"], "--exemplars must be 1..=1000, got -2"),
        (&["--stdout", "-u", "10", "--exemplars", "few"], "--exemplars 'few' is not a whole number"),
    ];
    for (args, expected) in table {
        assert_eq!(error(config(args)), *expected, "{args:?}");
    }
    let p = "/etc/trapstream/trapstream.toml";
    assert_eq!(with_file("stdout = true\nunique_interval = 5\nexemplars = 2\n", &[]).unwrap().exemplars, 2);
    assert_eq!(
        error(with_file("stdout = true\nexemplars = 2\n", &[])),
        format!(
            "{p}: line 2: exemplars needs -u (--unique-interval): exemplars are the first packets of counted flows"
        )
    );
    assert_eq!(
        error(with_file("stdout = true\nunique_interval = 5\nexemplars = 5000\n", &[])),
        format!("{p}: line 3: exemplars must be 1..=1000, got 5000")
    );
    // The flag overrides the file's value, and -u from the file counts for the flag.
    assert_eq!(
        with_file("stdout = true\nunique_interval = 5\nexemplars = 2\n", &["--exemplars", "7"])
            .unwrap()
            .exemplars,
        7
    );
}

#[test]
fn top_takes_the_service_file_for_its_filters_not_its_output() {
    let file = "collector_ip = \"192.0.2.10\"\ncollector_port = 8094\nformat = \"influx\"\n\
                source = \"skb\"\n[filters]\ninclude_reasons = [\"NO_SOCKET\"]\n";
    let c = with_file(file, &["top"]).unwrap();
    assert_eq!(c.output, Output::Terminal);
    assert_eq!(c.top_window, Some(Duration::from_secs(10)));
    assert_eq!(c.sources, Sources { devlink: false, skb: true });
    assert_eq!(c.filters.include_reasons, ["NO_SOCKET"]);
    let c = config(&["top", "--source", "all", "--window", "3", "-u", "2", "--exemplars", "4"]).unwrap();
    assert_eq!(c.top_window, Some(Duration::from_secs(3)));
    assert_eq!(c.unique_interval, Some(Duration::from_secs(2)));
    assert_eq!(c.exemplars, 4);
    // Streaming is unchanged by the subcommand's existence.
    assert_eq!(config(&["--stdout"]).unwrap().top_window, None);
}

#[test]
fn top_refuses_outputs_in_one_line() {
    for (args, needle) in [
        (&["top", "--stdout"][..], "top shows the drops in this terminal and takes no --stdout"),
        (&["top", "192.0.2.1", "8094"], "takes no collector (COLLECTOR_IP)"),
        (&["top", "-b", "5"], "takes no --batch-size"),
        (&["top", "--transport", "tcp"], "takes no --transport"),
        (&["--stdout", "top"], "top comes before its flags"),
        (&["top", "--window", "0"], "--window must be 1..=3600, got 0"),
        (&["top", "--window", "1.5"], "--window '1.5' is not a whole number"),
        (&["top", "--no-such-flag"], "unexpected argument '--no-such-flag'"),
    ] {
        let text = error(config(args));
        assert!(text.contains(needle), "{args:?}: {text}");
    }
}
