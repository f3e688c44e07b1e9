//! Flags and the configuration file → one validated `Config`. Every check that
//! can fail on operator input lives here, so the rest of the program works
//! with values that are known good. Flags override the file; defaults fill in
//! what neither sets. A problem is one line naming the flag, or the file, line
//! and key.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::cli::{self, Cli, Format, Source, TransportArg, TrapTypeArg};
use crate::error::{one_line, Error, Result};
use crate::record;
use crate::taxonomy::Kind;

/// UDP payload limit for IPv4 (65535 - 20 - 8).
pub const MAX_UDP_PAYLOAD: usize = 65507;
const MIN_DATAGRAM: usize = 64;
/// Largest flow table: each key preallocates ~500 bytes of kernel memory.
pub const MAX_FLOW_TABLE: usize = 1 << 20;
/// Most exemplars per new flow: past a few the flow is no longer new, and
/// every one is a full event on the ring buffer.
pub const MAX_EXEMPLARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub devlink: bool,
    pub skb: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Udp {
        collector: SocketAddr,
    },
    Tcp {
        collector: SocketAddr,
        backlog_bytes: usize,
    },
    Stdout,
    /// No record output: --pcap is the only one.
    None,
    Terminal, // `trapstream top`: a live view in this terminal, no stream
}

/// Per-trap replacements for the built-in taxonomy texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxonomyOverride {
    pub drop_reason: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub output: Output,
    pub format: Format,
    pub batch_size: usize,
    pub batch_interval: Duration,
    pub max_datagram: usize,
    pub device_ip: IpAddr,
    pub sources: Sources,
    /// Bit per devlink trap type (TS_TRAP_TYPE_*).
    pub trap_type_mask: u32,
    pub unique_interval: Option<Duration>,
    pub lru_size: u32,
    /// -u only: the first this many packets of each new flow go out alone (0: off).
    pub exemplars: u32,
    /// Events per second per trap; 0 = no limit.
    pub rate_limit: u64,
    pub retry_timeout: Duration,
    pub stats_interval: Option<Duration>,
    pub ring_size: u32,
    pub channel_depth: usize,
    pub verbose: bool,
    pub filters: Filters,
    pub taxonomy: HashMap<String, TaxonomyOverride>,
    /// --check-config: validate, then exit.
    pub check_only: bool,
    /// --pcap: the packets themselves, as pcapng.
    pub pcap: Option<PcapConfig>,
    /// `trapstream top`: the window its rates are averaged over.
    pub top_window: Option<Duration>,
}

const SEVERITIES: [&str; 5] = ["Critical", "Error", "Warning", "Notice", "Info"];

impl Config {
    /// Flags, plus the file they name with --config.
    pub fn load(cli: &Cli) -> Result<Config> {
        match &cli.config {
            None => Config::build(cli, None),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::File { path: path.clone(), message: e.to_string() })?;
                Config::build(cli, Some((path, &text)))
            }
        }
    }

    fn build(cli: &Cli, file: Option<(&PathBuf, &str)>) -> Result<Config> {
        let (src, parsed) = match file {
            Some((path, text)) => {
                let src = Source_ { path, text };
                let parsed: FileConfig = toml::from_str(text).map_err(|e| {
                    let line = e.span().map_or(1, |s| src.line(s.start));
                    Error::File {
                        path: path.clone(),
                        message: format!("line {line}: {}", one_line(e.message().trim())),
                    }
                })?;
                (Some(src), parsed)
            }
            None => (None, FileConfig::default()),
        };

        // The value a flag gave, else the file's, else None.
        let setting = |flag: &'static str,
                       cli_value: &Option<String>,
                       key: &'static str,
                       file_value: Option<(String, std::ops::Range<usize>)>|
         -> Option<Setting<'_>> {
            if let Some(text) = cli_value {
                return Some(Setting { text: text.clone(), origin: Origin::Flag(flag) });
            }
            let (text, span) = file_value?;
            let src = src.as_ref()?;
            Some(Setting { text, origin: Origin::File { path: src.path, line: src.line(span.start), key } })
        };
        fn spanned<T: ToString>(v: &Option<Spanned<T>>) -> Option<(String, std::ops::Range<usize>)> {
            v.as_ref().map(|v| (v.get_ref().to_string(), v.span()))
        }

        let stdout = cli.stdout || parsed.stdout.unwrap_or(false);
        // Checked whatever the output: a bad value is a mistake to report,
        // not a setting to ignore because it does not apply.
        let backlog = setting("--tcp-backlog", &cli.tcp_backlog, "tcp_backlog", spanned(&parsed.tcp_backlog))
            .unwrap_or_else(|| Setting { text: "4194304".into(), origin: Origin::Flag("--tcp-backlog") });
        let backlog_bytes = parse_count(&backlog, 0, 1 << 30)?;
        let collector_ip =
            setting("collector address", &cli.collector_ip, "collector_ip", spanned(&parsed.collector_ip));
        let collector_port =
            setting("COLLECTOR_PORT", &cli.collector_port, "collector_port", spanned(&parsed.collector_port));
        let pcap = pcap::pcap_config(cli, &parsed, &setting)?;
        // Under top, a --pcap key in the file is the service's output too.
        let pcap = if cli.top.is_some() { None } else { pcap };
        if stdout && pcap.as_ref().is_some_and(|p| p.path == PcapPath::Stdout) {
            return Err(usage(
                "--pcap - writes the capture to standard output: it cannot take --stdout's records too",
            ));
        }
        let output = match (stdout, collector_ip, collector_port) {
            // The file's output keys are the service's: `top -c` with the
            // service's file takes its capture settings and filters only.
            _ if cli.top.is_some() => Output::Terminal,
            (false, None, None) if pcap.is_some() => Output::None,
            (true, None, None) => Output::Stdout,
            (true, _, _) => return Err(usage("--stdout takes no collector address and port")),
            (false, Some(ip), Some(port)) => {
                let collector = SocketAddr::new(
                    cli::parse_ip("", &ip.text)
                        .map_err(|_| ip.error(format!("'{}' is not an IPv4 or IPv6 address", ip.text)))?,
                    parse_port(&port)?,
                );
                let transport = cli.transport.or(parsed.transport.as_ref().map(|t| *t.get_ref()));
                match transport.unwrap_or(TransportArg::Udp) {
                    TransportArg::Udp => Output::Udp { collector },
                    TransportArg::Tcp => Output::Tcp { collector, backlog_bytes },
                }
            }
            (false, Some(_), None) => return Err(usage("missing COLLECTOR_PORT after COLLECTOR_IP")),
            (false, None, _) => {
                return Err(usage(
                    "a collector (COLLECTOR_IP COLLECTOR_PORT), --stdout or --pcap is required",
                ))
            }
        };
        let format = cli.format.or(parsed.format.as_ref().map(|f| *f.get_ref())).unwrap_or(Format::Json);
        if format == Format::Text && !matches!(output, Output::Stdout | Output::Terminal) {
            return Err(usage("-f text is for --stdout only; collectors take json or influx"));
        }

        let count = |flag, cli_value: &Option<String>, key, file_value, default: &str, min, max| {
            let s = setting(flag, cli_value, key, file_value);
            parse_count(
                &s.unwrap_or_else(|| Setting { text: default.into(), origin: Origin::Flag(flag) }),
                min,
                max,
            )
        };
        let seconds = |flag, cli_value: &Option<String>, key, file_value, default: &str| {
            let s = setting(flag, cli_value, key, file_value);
            parse_seconds(
                &s.unwrap_or_else(|| Setting { text: default.into(), origin: Origin::Flag(flag) }),
                false,
            )
        };

        let batch_size = count(
            "--batch-size",
            &cli.batch_size,
            "batch_size",
            spanned(&parsed.batch_size),
            "20",
            1,
            1 << 20,
        )?;
        let batch_interval =
            seconds("--interval", &cli.interval, "interval", spanned(&parsed.interval), "5")?;
        let max_datagram = count(
            "--max-datagram",
            &cli.max_datagram,
            "max_datagram",
            spanned(&parsed.max_datagram),
            "1400",
            MIN_DATAGRAM,
            MAX_UDP_PAYLOAD,
        )?;
        let retry_timeout = seconds(
            "--retry-timeout",
            &cli.retry_timeout,
            "retry_timeout",
            spanned(&parsed.retry_timeout),
            "10",
        )?;
        let stats = seconds(
            "--stats-interval",
            &cli.stats_interval,
            "stats_interval",
            spanned(&parsed.stats_interval),
            "60",
        )?;
        let unique_interval = match setting(
            "--unique-interval",
            &cli.unique_interval,
            "unique_interval",
            spanned(&parsed.unique_interval),
        ) {
            Some(s) => Some(parse_seconds(&s, true)?),
            None => None,
        };
        if output == Output::None && unique_interval.is_some() {
            return Err(usage(
                "-u counts packets without their bytes, which --pcap cannot show: give a collector or --stdout too",
            ));
        }
        let ring = setting("--ring-size", &cli.ring_size, "ring_size", spanned(&parsed.ring_size))
            .unwrap_or_else(|| Setting { text: "4194304".into(), origin: Origin::Flag("--ring-size") });
        let ring_size = parse_count(&ring, 4096, 1 << 30)?;
        if !ring_size.is_power_of_two() {
            return Err(ring.error(format!("must be a power of two, got {ring_size}")));
        }
        let channel_depth = count(
            "--channel-depth",
            &cli.channel_depth,
            "channel_depth",
            spanned(&parsed.channel_depth),
            "16384",
            1,
            1 << 24,
        )?;
        let lru_size = count(
            "--lru-size",
            &cli.lru_size,
            "lru_size",
            spanned(&parsed.lru_size),
            "1024",
            4,
            MAX_FLOW_TABLE,
        )?;
        let exemplars = match setting("--exemplars", &cli.exemplars, "exemplars", spanned(&parsed.exemplars))
        {
            None => 0,
            Some(s) => {
                let n = parse_count(&s, 1, MAX_EXEMPLARS)?;
                if unique_interval.is_none() {
                    // Exemplars are the first packets of flows that -u counts: alone they mean nothing.
                    return Err(s.error(
                        "needs -u (--unique-interval): exemplars are the first packets of counted flows",
                    ));
                }
                n as u32
            }
        };

        let rate_limit =
            match setting("--rate-limit", &cli.rate_limit, "rate_limit", spanned(&parsed.rate_limit)) {
                None => 0,
                Some(s) => {
                    let number = Setting {
                        text: s.text.strip_suffix("/s").unwrap_or(&s.text).to_string(),
                        origin: s.origin,
                    };
                    parse_count(&number, 0, 100_000_000)? as u64
                }
            };

        let device_ip = match setting("--device-ip", &cli.device_ip, "device_ip", spanned(&parsed.device_ip))
        {
            Some(s) => cli::parse_ip("", &s.text)
                .map_err(|_| s.error(format!("'{}' is not an IPv4 or IPv6 address", s.text)))?,
            None => default_device_ip(&output),
        };

        let sources =
            match cli.source.or(parsed.source.as_ref().map(|s| *s.get_ref())).unwrap_or(Source::Devlink) {
                Source::Devlink => Sources { devlink: true, skb: false },
                Source::Skb => Sources { devlink: false, skb: true },
                Source::All => Sources { devlink: true, skb: true },
            };
        let trap_types = cli
            .trap_types
            .clone()
            .or(parsed.trap_types.as_ref().map(|t| t.get_ref().clone()))
            // Threshold events only ever come from a vendor SDK, and only
            // where an operator configured the thresholds: they are wanted.
            .unwrap_or_else(|| vec![TrapTypeArg::Drop, TrapTypeArg::Exception, TrapTypeArg::Threshold]);
        // The kernel side tests bit `1 << type` with the ABI's type values.
        let trap_type_mask = trap_types.iter().fold(0u32, |mask, t| {
            let kind = match t {
                TrapTypeArg::Drop => Kind::Drop,
                TrapTypeArg::Exception => Kind::Exception,
                TrapTypeArg::Control => Kind::Control,
                TrapTypeArg::Threshold => Kind::Threshold,
            };
            mask | 1 << record::trap_type_value(kind)
        });

        let filters = match (&parsed.filters, &src) {
            (Some(f), Some(src)) => file_filters(f, src)?,
            _ => Filters::default(),
        };
        let mut taxonomy = HashMap::new();
        if let (Some(table), Some(src)) = (parsed.taxonomy, &src) {
            for (trap, entry) in table {
                if let Some(sev) =
                    entry.severity.as_ref().filter(|s| !SEVERITIES.contains(&s.get_ref().as_str()))
                {
                    let line = src.line(sev.span().start);
                    return Err(Error::File {
                        path: src.path.to_path_buf(),
                        message: format!(
                            "line {line}: taxonomy.{trap}.severity '{}' is not one of {}",
                            sev.get_ref(),
                            SEVERITIES.join(", ")
                        ),
                    });
                }
                let overrides = TaxonomyOverride {
                    drop_reason: entry.drop_reason,
                    description: entry.description,
                    severity: entry.severity.map(Spanned::into_inner),
                    message: entry.message,
                };
                taxonomy.insert(trap, overrides);
            }
        }

        let top_window = match &cli.top {
            None => None,
            Some(top) => {
                let window = Setting {
                    text: top.window.clone().unwrap_or_else(|| "10".into()),
                    origin: Origin::Flag("--window"),
                };
                Some(Duration::from_secs(parse_count(&window, 1, 3600)? as u64))
            }
        };

        Ok(Config {
            output,
            format,
            batch_size,
            batch_interval,
            max_datagram,
            device_ip,
            sources,
            trap_type_mask,
            unique_interval,
            lru_size: lru_size as u32,
            exemplars,
            rate_limit,
            retry_timeout,
            stats_interval: (!stats.is_zero()).then_some(stats),
            ring_size: ring_size as u32,
            channel_depth,
            verbose: cli.verbose || parsed.verbose.unwrap_or(false),
            filters,
            taxonomy,
            check_only: cli.check_config,
            pcap,
            top_window,
        })
    }
}

/// The source address the kernel picks to reach the collector: what a
/// collector sees as the sender, and what identifies this switch. Connecting a
/// UDP socket sends nothing; it only runs the route lookup.
fn default_device_ip(output: &Output) -> IpAddr {
    let (Output::Udp { collector } | Output::Tcp { collector, .. }) = output else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let bind: SocketAddr = match collector {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(bind)
        .and_then(|s| s.connect(collector).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

mod file;
mod pcap;
mod setting;

use file::{file_filters, FileConfig, Source_};
pub use pcap::{PcapConfig, PcapPath, DEFAULT_SNAP_LEN, MAX_SNAP_LEN, MIN_ROTATE_SIZE};
use setting::{parse_count, parse_port, parse_seconds, usage, Origin, Setting};

#[cfg(test)]
mod tests;

/// Kernel-side filters. A packet passes a kind when that kind's include list
/// is empty or names it, and its exclude list does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub include_trap_names: Vec<String>,
    pub exclude_trap_names: Vec<String>,
    pub include_trap_groups: Vec<String>,
    pub exclude_trap_groups: Vec<String>,
    pub include_ports: Vec<String>,
    pub exclude_ports: Vec<String>,
    /// skb drop reasons by name (NO_SOCKET), as the kernel's BTF names them.
    pub include_reasons: Vec<String>,
    pub exclude_reasons: Vec<String>,
    /// Network namespaces by inode (`stat -L -c %i /run/netns/NAME`).
    pub include_netns: Vec<u32>,
    pub exclude_netns: Vec<u32>,
}
