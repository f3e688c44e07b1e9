//! The command line: the original tool's flags (and their underscore spellings)
//! plus trapstream's own. Parsing only; `config` validates and resolves.

use std::ffi::OsString;
use std::net::IpAddr;

use clap::{Parser, ValueEnum};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Influx,
    /// A compact human line per event (only with --stdout).
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// devlink_trap_report: packets trapped or dropped by a switch ASIC.
    Devlink,
    /// skb:kfree_skb: packets dropped by the kernel's own network stack.
    Skb,
    /// Both.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrapTypeArg {
    Drop,
    Exception,
    Control,
}

#[derive(Debug, Parser)]
#[command(
    name = "trapstream",
    version,
    about = "Stream packet traps from switch ASICs (devlink) and kernel drops, dissected in eBPF, \
             to a collector as JSON or InfluxDB line protocol",
    after_help = "Examples:\n  trapstream --stdout --source skb\n  trapstream -f influx -b 50 192.0.2.10 8094"
)]
pub struct Cli {
    /// Collector address (IPv4 or IPv6); not needed with --stdout.
    #[arg(value_name = "COLLECTOR_IP")]
    pub collector_ip: Option<String>,

    /// Collector UDP port.
    #[arg(value_name = "COLLECTOR_PORT")]
    pub collector_port: Option<String>,

    /// Seconds a batch may wait for more events after its first one (fractions accepted).
    #[arg(short = 'i', long, value_name = "SECONDS", default_value = "5", allow_negative_numbers = true)]
    pub interval: String,

    /// Most events in one batch.
    #[arg(
        short = 'b',
        long = "batch-size",
        alias = "batch_size",
        value_name = "N",
        default_value = "20",
        allow_negative_numbers = true
    )]
    pub batch_size: String,

    /// Value of deviceIP in every record [default: the local address used to reach the collector].
    #[arg(short = 'd', long = "device-ip", alias = "device_ip", value_name = "IP")]
    pub device_ip: Option<String>,

    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// Aggregate per {flow, trap} in the kernel and report counts every SECONDS.
    #[arg(
        short = 'u',
        long = "unique-interval",
        alias = "unique_interval",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub unique_interval: Option<String>,

    /// Seconds between reconnection attempts (TCP transport).
    #[arg(
        short = 'r',
        long = "retry-timeout",
        alias = "retry_timeout",
        value_name = "SECONDS",
        default_value = "10",
        allow_negative_numbers = true
    )]
    pub retry_timeout: String,

    /// Also log every record.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Write one record per line to standard output instead of a collector.
    #[arg(long)]
    pub stdout: bool,

    /// Which kernel events to capture.
    #[arg(long, value_enum, default_value_t = Source::Devlink)]
    pub source: Source,

    /// devlink trap types to report (comma-separated).
    #[arg(long = "trap-types", value_enum, value_delimiter = ',', default_values_t = [TrapTypeArg::Drop, TrapTypeArg::Exception])]
    pub trap_types: Vec<TrapTypeArg>,

    /// Largest UDP datagram to send, in bytes (64..=65507).
    #[arg(
        long = "max-datagram",
        value_name = "BYTES",
        default_value = "1400",
        allow_negative_numbers = true
    )]
    pub max_datagram: String,

    /// Seconds between counter reports in the log; 0 turns them off.
    #[arg(
        long = "stats-interval",
        value_name = "SECONDS",
        default_value = "60",
        allow_negative_numbers = true
    )]
    pub stats_interval: String,

    /// Ring buffer size in bytes (a power of two, at least one page).
    #[arg(long = "ring-size", value_name = "BYTES", default_value = "4194304")]
    pub ring_size: String,

    /// Records the poll thread may queue for the sender before counting losses.
    #[arg(long = "channel-depth", value_name = "N", default_value = "16384")]
    pub channel_depth: String,
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
