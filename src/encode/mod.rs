//! Record → bytes, in the output schema of the original trapstream (JSON,
//! InfluxDB line protocol) plus a compact text line for people. Encoders append
//! to a caller's buffer and allocate nothing per record on the common path.

mod cache;
mod comment;
mod influx;
mod json;
mod text;
mod write;

pub use comment::pcap_comment;

use std::borrow::Cow;
use std::fmt;

use std::collections::HashMap;

use crate::capture::DropReasons;
use crate::cli::Format;
use crate::config::TaxonomyOverride;
use crate::netdb::NetDb;
use crate::record::{Network, Origin, Record, Transport};
use crate::stats::Snapshot;
use crate::taxonomy::{self, Kind};

/// Everything an encoder needs besides the record, fixed at start-up.
#[derive(Debug, Default)]
pub struct Context {
    pub device_ip: String,
    pub netdb: NetDb,
    pub drop_reasons: DropReasons,
    /// Per-trap replacements from the configuration file.
    pub taxonomy: HashMap<String, TaxonomyOverride>,
}

/// One encoder per format; `encode` appends exactly one record, without a
/// separator (framing belongs to the transport).
pub enum Encoder {
    Json(json::JsonEncoder),
    Influx(influx::InfluxEncoder),
    Text(text::TextEncoder),
}

impl Encoder {
    pub fn new(format: Format) -> Encoder {
        match format {
            Format::Json => Encoder::Json(json::JsonEncoder::default()),
            Format::Influx => Encoder::Influx(influx::InfluxEncoder::default()),
            Format::Text => Encoder::Text(text::TextEncoder),
        }
    }

    /// trapstream's own counters as one record: measurement `trapstream_stats`
    /// (Influx), or an object with "measurement": "trapstream_stats" (JSON),
    /// so that operators see losses where they see drops.
    pub fn encode_stats(&mut self, ctx: &Context, snapshot: &Snapshot, out: &mut Vec<u8>) {
        use std::fmt::Write as _;
        let fields = snapshot.fields();
        match self {
            Encoder::Json(_) => {
                let mut object = serde_json::Map::new();
                object.insert("measurement".into(), STATS_MEASUREMENT.into());
                object.insert("deviceIP".into(), ctx.device_ip.clone().into());
                object.insert("timestamp".into(), Seconds(snapshot.time_ns).to_string().into());
                for (name, value) in fields {
                    object.insert(name.into(), value.into());
                }
                let _ = serde_json::to_writer(&mut *out, &object);
            }
            Encoder::Influx(_) => {
                let mut w = ByteWriter(out);
                let _ = write!(w, "{STATS_MEASUREMENT},deviceIP={}", ctx.device_ip);
                for (i, (name, value)) in fields.iter().enumerate() {
                    let _ = write!(w, "{}{name}={value}i", if i == 0 { ' ' } else { ',' });
                }
                let _ = write!(w, " {}", snapshot.time_ns);
            }
            Encoder::Text(_) => {
                let _ = write!(ByteWriter(out), "{} trapstream_stats {snapshot}", Seconds(snapshot.time_ns));
            }
        }
    }

    pub fn encode(&mut self, ctx: &Context, rec: &Record, out: &mut Vec<u8>) {
        match self {
            // These two derive the summary only when their per-trap cache
            // misses (see `cache`).
            Encoder::Json(e) => e.encode(ctx, rec, out),
            Encoder::Influx(e) => e.encode(ctx, rec, out),
            Encoder::Text(e) => e.encode(ctx, rec, &Summary::of(ctx, rec), out),
        }
    }
}

/// The values every format reports, derived once per record.
pub(crate) struct Summary<'a> {
    pub ingress_port: &'a str,
    /// Kernel drops on the transmit path; vendor SDK traps that name their egress port.
    pub egress_port: Option<&'a str>,
    pub description: &'a str,
    pub severity: &'a str,
    pub drop_type: &'a str,
    pub drop_reason: Cow<'a, str>,
    pub message: &'a str,
    /// `trapType` of a devlink report: the kernel's, except for vendor SDK
    /// reports (whose kernel type is always drop), where the taxonomy's.
    pub trap_type: &'static str,
    /// `devlinkDevice` is reported (not for the SDK's dummy instance).
    pub devlink_device: bool,
    pub source: &'static str,
}

/// `message` values. The original only knew drops ("fwdDrop"); exceptions,
/// control traps and the kernel's own drops get names in the same style.
pub const MESSAGE_DROP: &str = "fwdDrop";
pub const MESSAGE_EXCEPTION: &str = "fwdException";
pub const MESSAGE_CONTROL: &str = "fwdControl";
/// A vendor SDK threshold event (congestion or latency): not a drop.
pub const MESSAGE_THRESHOLD: &str = "fwdThreshold";
pub const MESSAGE_KERNEL_DROP: &str = "kernelDrop";

/// The measurement of trapstream's own counters.
pub const STATS_MEASUREMENT: &str = "trapstream_stats";

/// What a missing value reads as (the original printed "N/A" for unknowns).
pub const NOT_AVAILABLE: &str = "N/A";

const KERNEL_DROP_DESCRIPTION: &str =
    "Packet dropped by the Linux network stack; see skbDropReason (enum skb_drop_reason)";

impl<'a> Summary<'a> {
    fn of(ctx: &'a Context, rec: &'a Record) -> Summary<'a> {
        let ingress_port = ingress_port(rec);
        let egress_port = rec.egress.as_ref().map(|e| e.name.as_str());
        match &rec.origin {
            Origin::Devlink(trap) => {
                let name = trap.trap_name.as_str();
                let sdk = trap.is_vendor_sdk();
                // The SDK reports every trap as a drop; its type is the table's.
                let (kind, taxon) = if sdk {
                    taxonomy::classify_sdk(name)
                } else {
                    (trap.trap_type, taxonomy::classify(name, trap.trap_type))
                };
                let local = ctx.taxonomy.get(name);
                let pick =
                    |over: Option<&'a String>, built_in: &'a str| over.map_or(built_in, String::as_str);
                let group = if trap.trap_group.is_empty() {
                    taxonomy::lookup(name).map_or("", |t| t.group)
                } else {
                    trap.trap_group.as_str()
                };
                let message = match kind {
                    Kind::Drop => MESSAGE_DROP,
                    Kind::Exception => MESSAGE_EXCEPTION,
                    Kind::Control => MESSAGE_CONTROL,
                    Kind::Threshold => MESSAGE_THRESHOLD,
                };
                Summary {
                    ingress_port,
                    egress_port,
                    description: pick(local.and_then(|o| o.description.as_ref()), taxon.description),
                    severity: pick(local.and_then(|o| o.severity.as_ref()), taxon.severity),
                    drop_type: if sdk { sdk_drop_type(group) } else { drop_type(group) },
                    drop_reason: Cow::Borrowed(pick(
                        local.and_then(|o| o.drop_reason.as_ref()),
                        taxon.drop_reason,
                    )),
                    message: pick(local.and_then(|o| o.message.as_ref()), message),
                    trap_type: kind.as_str(),
                    devlink_device: !sdk && !trap.device_name.is_empty(),
                    source: "devlink",
                }
            }
            Origin::Skb(drop) => Summary {
                ingress_port,
                egress_port,
                description: KERNEL_DROP_DESCRIPTION,
                severity: "Notice",
                drop_type: "kernel",
                drop_reason: ctx.drop_reasons.name(drop.reason),
                message: MESSAGE_KERNEL_DROP,
                trap_type: "",
                devlink_device: false,
                source: "skb",
            },
        }
    }
}

/// `ingressPort`: the name, or N/A for a packet this host sent.
fn ingress_port(rec: &Record) -> &str {
    if rec.ingress.name.is_empty() {
        NOT_AVAILABLE
    } else {
        rec.ingress.name.as_str()
    }
}

/// The trap group up to its first '_': l3_exceptions → l3, as the original did.
pub(crate) fn drop_type(group: &str) -> &str {
    match group.split('_').next() {
        Some(prefix) if !prefix.is_empty() => prefix,
        _ => NOT_AVAILABLE,
    }
}

/// dropType for the vendor SDK's groups, in the words devlink's groups get:
/// its `router` group is devlink's `l3_*`; `l2`, `tunnel`, `acl` and `buffer`
/// already read as devlink's prefixes do. A group the SDK is not known to
/// use is its own dropType, whole: cutting it at '_' as devlink's are cut
/// would invent a word it never said. No group at all is N/A.
pub(crate) fn sdk_drop_type(group: &str) -> &str {
    match group {
        "router" => "l3",
        "" => NOT_AVAILABLE,
        other => other,
    }
}

/// The deepest layer decoded, in the original's words.
fn packet_type(rec: &Record) -> &'static str {
    let p = &rec.packet;
    match (&p.network, &p.transport) {
        (Network::Ip(_), Transport::Tcp { .. } | Transport::Udp { .. }) => "TRANSPORT",
        (Network::Ip(_), _) => "IP",
        (Network::Arp(_), _) => "ARP",
        (Network::None, _) if p.ethernet.is_some() => "ETHERNET",
        (Network::None, _) => "NONE",
    }
}

/// Seconds since the epoch with nanoseconds, as a string: "1611931294.010481600".
pub(crate) struct Seconds(pub u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

// The Display helpers below are what the previous encoders used; the tests
// keep them as the reference the byte writers (`write`) are checked against.
#[cfg(test)]
pub(crate) struct Hex<'a>(pub &'a [u8]);

#[cfg(test)]
impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
/// The devlink handle: "bus/device", e.g. "netdevsim/netdevsim10", "pci/0000:03:00.0".
pub(crate) struct DevlinkHandle<'a>(pub &'a str, pub &'a str);

#[cfg(test)]
impl fmt::Display for DevlinkHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

#[cfg(test)]
/// TCP flags by name, "SYN|ACK".
pub(crate) struct TcpFlags(pub u8);

#[cfg(test)]
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Writes formatted text into a byte buffer without an intermediate String.
pub(crate) struct ByteWriter<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod sdk_tests;
#[cfg(test)]
pub(crate) mod tests;
