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

    /// Set for `trapstream top` (a live view in the terminal instead of a stream).
    #[arg(skip)]
    pub top: Option<TopArgs>,
}

/// What `trapstream top` takes besides the capture flags it shares with streaming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopArgs {
    /// --window: seconds the rates are averaged over, as typed.
    pub window: Option<String>,
}

/// The flags `top` shares with streaming (clap ids, the field names): what
/// is captured and how. The rest say where a stream goes; `top` takes them
/// hidden only so that a stray one is refused with a line that says why.
const TOP_FLAGS: &[&str] = &[
    "source",
    "trap_types",
    "unique_interval",
    "exemplars",
    "lru_size",
    "rate_limit",
    "ring_size",
    "channel_depth",
    "config",
    "verbose",
    "check_config",
];

/// Parse argv. Help and version print and exit 0; any other problem is one
/// line in an `Error::Usage`.
pub fn parse<I, T>(args: I) -> Result<Cli>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_none_or(|first| first != "top") {
        // Streaming: the flags parsed exactly as before `top` existed (a
        // stray third positional is an unexpected argument, not a
        // subcommand); only help comes from the command that lists `top`.
        let cli = Cli::try_parse_from(&args).map_err(|err| match err.kind() {
            clap::error::ErrorKind::DisplayHelp => {
                command().try_get_matches_from(&args).map_or_else(clap_error, |_| clap_error(err))
            }
            _ => clap_error(err),
        })?;
        if cli.collector_ip.as_deref() == Some("top") {
            return Err(Error::Usage("top comes before its flags: trapstream top [OPTIONS]".into()));
        }
        return Ok(cli);
    }
    let matches = build(true).try_get_matches_from(&args).map_err(clap_error)?;
    let Some(("top", sub)) = matches.subcommand() else {
        return Err(Error::Usage("top comes before its flags: trapstream top [OPTIONS]".into()));
    };
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(sub).map_err(clap_error)?;
    for arg in <Cli as clap::CommandFactory>::command().get_arguments() {
        let id = arg.get_id().as_str();
        if !TOP_FLAGS.contains(&id) && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            let name = match (arg.get_long(), arg.get_value_names()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some([name, ..])) => format!("collector ({name})"),
                (None, _) => id.to_string(),
            };
            return Err(Error::Usage(format!(
                "top shows the drops in this terminal and takes no {name}: that is for streaming \
                 (see trapstream --help)"
            )));
        }
    }
    cli.top = Some(TopArgs { window: sub.get_one::<String>("window").cloned() });
    Ok(cli)
}

/// Help and version print and exit 0; any other problem is one line.
fn clap_error(err: clap::Error) -> Error {
    match err.kind() {
        clap::error::ErrorKind::DisplayHelp
        | clap::error::ErrorKind::DisplayVersion
        | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        _ => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            Error::Usage(first.trim_start_matches("error: ").to_string())
        }
    }
}

/// For things that must stay in step with the flags (man page, completions,
/// tests). `top` is built from the same flags, so the two cannot drift.
pub fn command() -> clap::Command {
    build(false)
}

/// `refusing`: `top` also takes the flags that say where a stream goes,
/// hidden, so that `parse` can refuse one with a line that says why (and
/// `Cli` finds every field it reads). Completions list hidden flags, so the
/// command they are made from has none.
fn build(refusing: bool) -> clap::Command {
    let stream = <Cli as clap::CommandFactory>::command();
    let shared = stream.get_arguments().filter_map(|arg| {
        let shared = TOP_FLAGS.contains(&arg.get_id().as_str());
        (shared || refusing).then(|| arg.clone().hide(!shared))
    });
    let top = clap::Command::new("top")
        .about("A live view of the busiest drop reasons and traps, ingress ports and flows (q quits)")
        .long_about(
            "A live view, like top(1), of the busiest drop reasons and traps, ingress ports and flows over \
             a sliding window, with rates and totals, and trapstream's ledger (seen, shown, lost) in a \
             status line. Keys: v or Tab switches the view, s the sort column, q or Ctrl-C quits. Needs a \
             terminal; it takes the capture flags and the configuration file's filters, not an output.",
        )
        .args(shared.collect::<Vec<_>>())
        .arg(
            clap::Arg::new("window")
                .long("window")
                .value_name("SECONDS")
                .allow_negative_numbers(true)
                .help("Seconds the rates are averaged over, 1..=3600 [default: 10]"),
        );
    stream
        .subcommand(top)
        // `trapstream --stdout top` is a mistake, not a collector named top.
        .args_conflicts_with_subcommands(true)
        // `help` would be a second subcommand; --help does its work.
        .disable_help_subcommand(true)
}

/// An IP address as an operator might type it (IPv6 may be in brackets).
pub fn parse_ip(what: &str, text: &str) -> Result<IpAddr> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse().map_err(|_| Error::Usage(format!("{what} '{text}' is not an IPv4 or IPv6 address")))
}
