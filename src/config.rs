//! Flags → one validated `Config`. Every check that can fail on operator input
//! lives here, so the rest of the program works with values that are known good.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::cli::{self, Cli, Format, Source, TrapTypeArg};
use crate::error::{Error, Result};

/// UDP payload limit for IPv4 (65535 - 20 - 8).
pub const MAX_UDP_PAYLOAD: usize = 65507;
const MIN_DATAGRAM: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub devlink: bool,
    pub skb: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Udp { collector: SocketAddr },
    Stdout,
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
    pub retry_timeout: Duration,
    pub stats_interval: Option<Duration>,
    pub ring_size: u32,
    pub channel_depth: usize,
    pub verbose: bool,
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Config> {
        let output = match (cli.stdout, &cli.collector_ip, &cli.collector_port) {
            (true, None, None) => Output::Stdout,
            (true, _, _) => {
                return Err(usage("--stdout takes no collector address and port"));
            }
            (false, Some(ip), Some(port)) => Output::Udp {
                collector: SocketAddr::new(cli::parse_ip("collector address", ip)?, parse_port(port)?),
            },
            (false, Some(_), None) => return Err(usage("missing COLLECTOR_PORT after COLLECTOR_IP")),
            (false, None, _) => {
                return Err(usage("a collector (COLLECTOR_IP COLLECTOR_PORT) or --stdout is required"))
            }
        };
        if cli.format == Format::Text && output != Output::Stdout {
            return Err(usage("-f text is for --stdout only; collectors take json or influx"));
        }

        let batch_size = parse_count("--batch-size", &cli.batch_size, 1, 1 << 20)?;
        let batch_interval = parse_seconds("--interval", &cli.interval, false)?;
        let max_datagram = parse_count("--max-datagram", &cli.max_datagram, MIN_DATAGRAM, MAX_UDP_PAYLOAD)?;
        let retry_timeout = parse_seconds("--retry-timeout", &cli.retry_timeout, false)?;
        let stats = parse_seconds("--stats-interval", &cli.stats_interval, false)?;
        let unique_interval = match &cli.unique_interval {
            Some(text) => Some(parse_seconds("--unique-interval", text, true)?),
            None => None,
        };
        let ring_size = parse_count("--ring-size", &cli.ring_size, 4096, 1 << 30)?;
        if !ring_size.is_power_of_two() {
            return Err(usage(format!("--ring-size must be a power of two, got {ring_size}")));
        }
        let channel_depth = parse_count("--channel-depth", &cli.channel_depth, 1, 1 << 24)?;

        let device_ip = match &cli.device_ip {
            Some(text) => cli::parse_ip("--device-ip", text)?,
            None => default_device_ip(&output),
        };

        let sources = match cli.source {
            Source::Devlink => Sources { devlink: true, skb: false },
            Source::Skb => Sources { devlink: false, skb: true },
            Source::All => Sources { devlink: true, skb: true },
        };
        let trap_type_mask = cli.trap_types.iter().fold(0u32, |mask, t| {
            mask | 1
                << match t {
                    TrapTypeArg::Drop => 0,
                    TrapTypeArg::Exception => 1,
                    TrapTypeArg::Control => 2,
                }
        });

        Ok(Config {
            output,
            format: cli.format,
            batch_size,
            batch_interval,
            max_datagram,
            device_ip,
            sources,
            trap_type_mask,
            unique_interval,
            retry_timeout,
            stats_interval: (!stats.is_zero()).then_some(stats),
            ring_size: ring_size as u32,
            channel_depth,
            verbose: cli.verbose,
        })
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

fn parse_port(text: &str) -> Result<u16> {
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(usage(format!("COLLECTOR_PORT must be 1..65535, got {port}"))),
        Err(_) => Err(usage(format!("COLLECTOR_PORT '{text}' is not a port number"))),
    }
}

fn parse_count(flag: &str, text: &str, min: usize, max: usize) -> Result<usize> {
    let value: usize = text.parse().map_err(|_| usage(format!("{flag} '{text}' is not a whole number")))?;
    if value < min || value > max {
        return Err(usage(format!("{flag} must be {min}..={max}, got {value}")));
    }
    Ok(value)
}

fn parse_seconds(flag: &str, text: &str, positive: bool) -> Result<Duration> {
    let value: f64 =
        text.parse().map_err(|_| usage(format!("{flag} '{text}' is not a number of seconds")))?;
    if !value.is_finite() || value < 0.0 || (positive && value == 0.0) || value > 86_400.0 * 365.0 {
        let lower = if positive { "more than 0" } else { "0 or more" };
        return Err(usage(format!("{flag} must be {lower} seconds, got {text}")));
    }
    Ok(Duration::from_secs_f64(value))
}

/// The source address the kernel picks to reach the collector: what a
/// collector sees as the sender, and what identifies this switch. Connecting a
/// UDP socket sends nothing; it only runs the route lookup.
fn default_device_ip(output: &Output) -> IpAddr {
    let Output::Udp { collector } = output else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        let argv = std::iter::once("trapstream").chain(args.iter().copied());
        Config::from_cli(&cli::parse(argv)?)
    }

    fn error(args: &[&str]) -> String {
        match config(args) {
            Ok(c) => panic!("{args:?} was accepted: {c:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
                let text = e.to_string();
                assert_eq!(text.lines().count(), 1, "{args:?}: not one line: {text:?}");
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
        assert_eq!(c.sources, Sources { devlink: true, skb: false });
        assert_eq!(c.trap_type_mask, 0b011, "control traps are off by default");
        assert_eq!(c.stats_interval, Some(Duration::from_secs(60)));
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
        let c =
            config(&["--stdout", "--source", "all", "-f", "text", "--trap-types", "drop,control"]).unwrap();
        assert_eq!(c.output, Output::Stdout);
        assert_eq!(c.sources, Sources { devlink: true, skb: true });
        assert_eq!(c.trap_type_mask, 0b101);
        assert_eq!(c.format, Format::Text);
    }

    #[test]
    fn bad_input_is_one_line_and_status_2() {
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
            (&["-d", "nope", "127.0.0.1", "1"], "--device-ip 'nope' is not an IPv4 or IPv6 address"),
            (&[], "a collector (COLLECTOR_IP COLLECTOR_PORT) or --stdout is required"),
            (&["127.0.0.1"], "missing COLLECTOR_PORT after COLLECTOR_IP"),
            (&["--stdout", "127.0.0.1", "1"], "--stdout takes no collector address and port"),
            (
                &["-f", "text", "127.0.0.1", "1"],
                "-f text is for --stdout only; collectors take json or influx",
            ),
        ];
        for (args, expected) in table {
            assert_eq!(error(args), *expected, "{args:?}");
        }
        // clap's own errors are cut to their first line too.
        assert!(error(&["-f", "xml", "--stdout"]).contains("invalid value 'xml'"));
        assert!(error(&["--source", "asic", "--stdout"]).contains("invalid value 'asic'"));
        assert!(error(&["--bogus", "--stdout"]).contains("unexpected argument '--bogus'"));
    }
}
