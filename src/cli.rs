//! The command line: the original tool's flags (and their underscore spellings)
//! plus trapstream's own. Parsing only; `config` validates and resolves.

use std::ffi::OsString;
use std::net::IpAddr;

use clap::{Parser, ValueEnum};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Influx,
    /// A compact human line per event (only with --stdout).
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportArg {
    /// Batched datagrams, whole records each (what Telegraf's socket_listener expects).
    Udp,
    /// One connection, a batch per line, reconnecting every --retry-timeout (the original's transport).
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// devlink_trap_report: packets trapped or dropped by a switch ASIC.
    Devlink,
    /// skb:kfree_skb: packets dropped by the kernel's own network stack.
    Skb,
    /// Both.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrapTypeArg {
    Drop,
    Exception,
    Control,
    /// A vendor SDK's buffer threshold events (congestion, latency): not drops.
    Threshold,
}

#[derive(Debug, Parser, Default)]
#[command(
    name = "trapstream",
    version,
    about = "Stream packet traps from switch ASICs (devlink) and kernel drops, dissected in eBPF, \
             to a collector as JSON or InfluxDB line protocol",
    after_help = "Flags override the configuration file; defaults apply to what neither sets.\n\n\
                  Examples:\n  trapstream --stdout --source skb\n  trapstream -f influx -b 50 192.0.2.10 8094\n  \
                  trapstream --config /etc/trapstream/trapstream.toml"
)]
pub struct Cli {
    /// Collector address (IPv4 or IPv6); not needed with --stdout.
    #[arg(value_name = "COLLECTOR_IP")]
    pub collector_ip: Option<String>,

    /// Collector UDP port.
    #[arg(value_name = "COLLECTOR_PORT")]
    pub collector_port: Option<String>,

    /// Seconds a batch may wait for more events after its first one, fractions accepted [default: 5].
    #[arg(short = 'i', long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub interval: Option<String>,

    /// Most events in one batch [default: 20].
    #[arg(
        short = 'b',
        long = "batch-size",
        alias = "batch_size",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub batch_size: Option<String>,

    /// Value of deviceIP in every record [default: the local address used to reach the collector].
    #[arg(short = 'd', long = "device-ip", alias = "device_ip", value_name = "IP")]
    pub device_ip: Option<String>,

    /// Output format [default: json].
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<Format>,

    /// Count per {flow, trap} in the kernel and report the counts every SECONDS.
    #[arg(
        short = 'u',
        long = "unique-interval",
        alias = "unique_interval",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub unique_interval: Option<String>,

    /// Seconds between reconnection attempts (TCP transport) [default: 10].
    #[arg(
        short = 'r',
        long = "retry-timeout",
        alias = "retry_timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub retry_timeout: Option<String>,

    /// How records reach the collector [default: udp].
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,

    /// Bytes of batches held while a TCP collector is down; older ones are dropped and counted [default: 4194304].
    #[arg(long = "tcp-backlog", value_name = "BYTES", allow_negative_numbers = true)]
    pub tcp_backlog: Option<String>,

    /// Also log every record.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Write one record per line to standard output instead of a collector.
    #[arg(long)]
    pub stdout: bool,

    /// Which kernel events to capture [default: devlink].
    #[arg(long, value_enum)]
    pub source: Option<Source>,

    /// Trap types to report, comma-separated: drop, exception, control, threshold (vendor SDK
    /// buffer threshold events) [default: drop,exception,threshold].
    #[arg(long = "trap-types", value_enum, value_delimiter = ',')]
    pub trap_types: Option<Vec<TrapTypeArg>>,

    /// Largest UDP datagram to send, in bytes, 64..=65507 [default: 1400].
    #[arg(long = "max-datagram", value_name = "BYTES", allow_negative_numbers = true)]
    pub max_datagram: Option<String>,

    /// Seconds between counter reports in the log; 0 turns them off [default: 60].
    #[arg(long = "stats-interval", value_name = "SECONDS", allow_negative_numbers = true)]
    pub stats_interval: Option<String>,

    /// Ring buffer size in bytes, a power of two of at least one page [default: 4194304].
    #[arg(long = "ring-size", value_name = "BYTES", allow_negative_numbers = true)]
    pub ring_size: Option<String>,

    /// Records the poll thread may queue for the sender before counting losses [default: 16384].
    #[arg(long = "channel-depth", value_name = "N", allow_negative_numbers = true)]
    pub channel_depth: Option<String>,

    /// With -u: send the first N packets (1..=1000) of each new flow at once, each alone, and count the rest.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub exemplars: Option<String>,

    /// Keys each in-kernel flow table holds with -u [default: 1024].
    #[arg(long = "lru-size", alias = "lru_size", value_name = "N", allow_negative_numbers = true)]
    pub lru_size: Option<String>,

    /// Most events a second each trap (or drop reason) may emit, e.g. 1000 or 1000/s; the kernel counts what it suppresses [default: no limit].
    #[arg(long = "rate-limit", alias = "rate_limit", value_name = "N/s", allow_hyphen_values = true)]
    pub rate_limit: Option<String>,

    /// Also write the packets themselves as pcapng to PATH, or to standard output with `-`
    /// (e.g. `--pcap - | wireshark -k -i -`); with `-` no collector is needed.
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub pcap: Option<String>,

    /// Bytes of each packet --pcap captures, 1..=1024 [default: 256, what the dissector reads].
    #[arg(long = "pcap-snaplen", value_name = "BYTES", allow_negative_numbers = true)]
    pub pcap_snaplen: Option<String>,

    /// Start a new --pcap file before the current one grows past BYTES (at least 4096) [default: never].
    #[arg(long = "pcap-rotate-size", value_name = "BYTES", allow_negative_numbers = true)]
    pub pcap_rotate_size: Option<String>,

    /// Files --pcap-rotate-size keeps, the current one included: PATH, PATH.1, ... [default: 10].
    #[arg(long = "pcap-rotate-files", value_name = "N", allow_negative_numbers = true)]
    pub pcap_rotate_files: Option<String>,

    /// TOML configuration file; flags override it.
    #[arg(short = 'c', long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,

    /// Validate the flags and configuration file, then exit without capturing.
    #[arg(long = "check-config")]
    pub check_config: bool,
}

/// Parse argv. Help and version print and exit 0; any other problem is one
/// line in an `Error::Usage`.
pub fn parse<I, T>(args: I) -> Result<Cli>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => {
                let rendered = err.to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                Err(Error::Usage(first.trim_start_matches("error: ").to_string()))
            }
        },
    }
}

/// For things that must stay in step with the flags (man page, completions, tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// An IP address as an operator might type it (IPv6 may be in brackets).
pub fn parse_ip(what: &str, text: &str) -> Result<IpAddr> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse().map_err(|_| Error::Usage(format!("{what} '{text}' is not an IPv4 or IPv6 address")))
}
