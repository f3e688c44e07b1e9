//! InfluxDB line protocol in the original's schema: measurement
//! `DroppedPackets`, the same tag/field split and names, keys in byte order
//! (what InfluxDB sorts to anyway), and the trap time as the line timestamp.

use std::fmt::{Display, Write as _};

use super::json::EtherTypeName;
use crate::encode::{ByteWriter, Context, DevlinkHandle, Hex, Seconds, Summary, TcpFlags};
use crate::netdb::PortProtocol;
use crate::record::{FlowKind, Network, Origin, Record, Transport};

pub const MEASUREMENT: &str = "DroppedPackets";

#[derive(Default)]
pub struct InfluxEncoder {
    stamps: RecentStamps,
    /// Reused for formatting values that need escaping: no allocation per line.
    scratch: String,
}

/// Where a piece of text goes decides what must be escaped in it.
#[derive(Clone, Copy)]
enum Position {
    /// Measurement: comma and space.
    Measurement,
    /// Tag key, tag value, field key: comma, equals sign and space.
    Key,
    /// String field value (inside double quotes): double quote.
    StringValue,
}

/// Append `text` escaped for `pos`. Backslashes are doubled everywhere, so a
/// value ending in `\` cannot swallow the delimiter after it; newlines, which
/// line protocol cannot carry, become spaces.
fn escape(out: &mut Vec<u8>, text: &str, pos: Position) {
    for &b in text.as_bytes() {
        let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
        let special = matches!(
            (pos, b),
            (_, b'\\')
                | (Position::Measurement, b',' | b' ')
                | (Position::Key, b',' | b'=' | b' ')
                | (Position::StringValue, b'"')
        );
        if special {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Writes one line: tags first (in the order they are added, which the
/// caller keeps sorted), then fields.
struct Line<'o> {
    out: &'o mut Vec<u8>,
    fields: usize,
    scratch: &'o mut String,
}

impl<'o> Line<'o> {
    fn start(out: &'o mut Vec<u8>, scratch: &'o mut String) -> Self {
        escape(out, MEASUREMENT, Position::Measurement);
        Line { out, fields: 0, scratch }
    }

    fn tag(&mut self, key: &str, value: impl Display) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        // InfluxDB rejects empty tag values: an absent value is an absent tag.
        if self.scratch.is_empty() {
            return;
        }
        self.out.push(b',');
        escape(self.out, key, Position::Key);
        self.out.push(b'=');
        escape(self.out, self.scratch, Position::Key);
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        escape(self.out, key, Position::Key);
        self.out.push(b'=');
    }

    fn int(&mut self, key: &str, value: impl Into<i64>) {
        self.key(key);
        let _ = write!(ByteWriter(self.out), "{}i", value.into());
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn string(&mut self, key: &str, value: impl Display) {
        self.key(key);
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        self.out.push(b'"');
        escape(self.out, self.scratch, Position::StringValue);
        self.out.push(b'"');
    }

    fn end(self, timestamp_ns: u64) {
        let _ = write!(ByteWriter(self.out), " {timestamp_ns}");
    }
}

impl InfluxEncoder {
    pub(crate) fn encode(&mut self, ctx: &Context, rec: &Record, s: &Summary<'_>, out: &mut Vec<u8>) {
        let p = &rec.packet;
        let trap = match &rec.origin {
            Origin::Devlink(t) => Some(t),
            Origin::Skb(_) => None,
        };
        let ip = match &p.network {
            Network::Ip(ip) => Some(ip),
            _ => None,
        };
        let arp = match &p.network {
            Network::Arp(a) => Some(a),
            _ => None,
        };
        let ports = match p.transport {
            Transport::Tcp { src_port, dst_port, .. } => Some((PortProtocol::Tcp, src_port, dst_port)),
            Transport::Udp { src_port, dst_port, .. } => Some((PortProtocol::Udp, src_port, dst_port)),
            _ => None,
        };

        let wjh = trap.and_then(|t| t.wjh);
        let lag = wjh.and_then(|w| w.egress_lag);
        let acl = trap.and_then(|t| t.acl);

        let mut line = Line::start(out, &mut self.scratch);
        // Tags, in byte order of their keys. Tags are what a dashboard groups
        // by and each value is a series: the vendor SDK's ports, LAG, traffic
        // class and ACL direction have few values and are tags; occupancy,
        // latency and the ACL rule value are measurements or ids that vary
        // per packet or rule, so fields.
        if let Some(a) = acl {
            line.tag("aclDirection", a.direction.as_str());
        }
        if let Some(f) = rec.flow {
            line.tag("aggregation", f.kind.as_str());
        }
        line.tag("description", s.description);
        line.tag("deviceIP", &ctx.device_ip);
        if let Some(t) = trap.filter(|_| s.devlink_device) {
            line.tag("devlinkDevice", DevlinkHandle(t.bus_name.as_str(), t.device_name.as_str()));
        }
        line.tag("dropReason", &s.drop_reason);
        line.tag("dropType", s.drop_type);
        if let Some(l) = &lag {
            line.tag("egressLag", l.name.as_str());
        }
        if let Some(port) = s.egress_port {
            line.tag("egressPort", port);
        }
        line.tag("ingressPort", s.ingress_port);
        line.tag("message", s.message);
        if let Some(eth) = p.ethernet {
            line.tag("packet_ethernet_dstMac", eth.dst);
            line.tag("packet_ethernet_srcMac", eth.src);
        }
        if let Some(ip) = ip {
            line.tag("packet_ip_srcIp", ip.src);
        }
        let lower_type = LowerCase(crate::encode::packet_type(rec));
        line.tag("packet_packetType", lower_type);
        if let Some((_, _, dst_port)) = ports {
            line.tag("packet_transport_dstPort", dst_port);
        }
        line.tag("severity", s.severity);
        if trap.is_none() {
            line.tag("skbDropReason", &s.drop_reason);
        }
        line.tag("source", s.source);
        if let Some(tc) = wjh.and_then(|w| w.traffic_class) {
            line.tag("trafficClass", tc);
        }
        if let Some(t) = trap {
            line.tag("trapGroup", t.trap_group.as_str());
            line.tag("trapName", t.trap_name.as_str());
            line.tag("trapType", s.trap_type);
        }

        // Fields, in byte order of their keys.
        if let Some(a) = acl {
            line.int("aclRuleValue", a.value);
        }
        if let Some(f) = rec.flow {
            if f.kind == FlowKind::Overflow {
                line.boolean("aggregationOverflow", true);
            }
            line.int("bytes", saturating_i64(f.bytes));
            line.int("count", saturating_i64(f.packets));
        }
        if let Some(e) = rec.egress {
            line.int("egressIfIndex", e.ifindex);
        }
        if let Some(l) = lag {
            line.int("egressLagIfIndex", l.ifindex);
        }
        if let Some(f) = rec.flow {
            line.string("firstSeen", Seconds(f.first_ns));
        }
        if let Some(c) = trap.and_then(|t| t.cookie.as_ref()) {
            line.string("flowActionCookie", Hex(c.captured()));
            line.int("flowActionCookieLength", c.len);
        }
        line.int("ingressIfIndex", rec.ingress.ifindex);
        if let Some(f) = rec.flow {
            line.string("lastSeen", Seconds(f.last_ns));
        }
        if let Some(l) = wjh.and_then(|w| w.latency) {
            if let Some(ns) = l.ns() {
                line.int("latencyNs", saturating_i64(ns));
            }
            line.int("latencyRaw", saturating_i64(l.raw));
        }
        if rec.ingress.netns_ino != 0 {
            line.int("netnsIno", rec.ingress.netns_ino);
        }
        if let Some(a) = arp {
            line.int("packet_arp_operation", a.operation);
            line.string("packet_arp_senderIp", a.sender_ip);
            line.string("packet_arp_senderMac", a.sender_mac);
            line.string("packet_arp_targetIp", a.target_ip);
            line.string("packet_arp_targetMac", a.target_mac);
        }
        if p.ethernet.is_some() {
            let [outer, inner] = p.vlans;
            if let Some(v) = outer {
                line.int("packet_ethernet_dei", v.dei as u8);
            }
            line.int("packet_ethernet_etherType", p.ether_type);
            line.string("packet_ethernet_etherTypeName", EtherTypeName(p.ether_type));
            if let Some(v) = inner {
                line.int("packet_ethernet_innerDei", v.dei as u8);
                line.int("packet_ethernet_innerPcp", v.pcp);
                line.int("packet_ethernet_innerVlanId", v.vid);
            }
            if let Some(v) = outer {
                line.int("packet_ethernet_pcp", v.pcp);
                line.string("packet_ethernet_vlanTpid", EtherTypeName(v.tpid));
                line.int("packet_ethernet_vlanId", v.vid);
            }
        }
        if let Transport::Icmp { kind, code } | Transport::Icmpv6 { kind, code } = p.transport {
            line.int("packet_icmp_code", code);
            line.int("packet_icmp_type", kind);
        }
        if let Some(ip) = ip {
            let v4 = ip.src.is_ipv4();
            if v4 {
                line.boolean("packet_ip_dontFragment", ip.dont_fragment);
            }
            line.string("packet_ip_dstIp", ip.dst);
            if let Some(label) = ip.flow_label {
                line.int("packet_ip_flowLabel", label);
            }
            if let Some(f) = ip.fragment {
                line.int("packet_ip_fragOffset", f.offset);
            }
            if let Some(id) = ip.id {
                line.int("packet_ip_id", id);
            }
            line.int("packet_ip_length", ip.length);
            if let Some(f) = ip.fragment {
                line.boolean("packet_ip_moreFragments", f.more);
            }
            line.int("packet_ip_protocol", ip.protocol);
            line.string("packet_ip_protocolName", ctx.netdb.protocol(ip.protocol));
            line.int("packet_ip_tos", ip.tos);
            line.int("packet_ip_ttl", ip.ttl);
            line.int("packet_ip_version", if v4 { 4 } else { 6 });
        }
        line.int("packet_length", p.len);
        if let Some((proto, src_port, dst_port)) = ports {
            line.string("packet_transport_dstPortName", ctx.netdb.service(proto, dst_port));
            line.int("packet_transport_srcPort", src_port);
            line.string("packet_transport_srcPortName", ctx.netdb.service(proto, src_port));
            match p.transport {
                Transport::Tcp { flags, .. } => line.string("packet_transport_tcpFlags", TcpFlags(flags)),
                Transport::Udp { length, .. } => line.int("packet_transport_udpLength", length),
                _ => {}
            }
        }
        if let Some(o) = wjh.and_then(|w| w.occupancy) {
            if let Some(bytes) = o.bytes() {
                line.int("tcOccupancyBytes", saturating_i64(bytes));
            }
            line.int("tcOccupancyRaw", saturating_i64(o.raw));
        }
        line.string("timestamp", Seconds(rec.time_ns));

        // Line protocol timestamps are signed 64-bit.
        line.end(self.stamps.unique(rec.time_ns.min(i64::MAX as u64 - RECENT_STAMPS as u64)));
    }
}

/// Line protocol integers are signed 64-bit: larger values are clamped.
fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Two points with the same series and timestamp overwrite each other in
/// InfluxDB. A timestamp already used by one of the last lines is moved on by
/// 1 ns until it is free: only exact collisions move, and by nanoseconds, so
/// records out of time order (flows drained in hash order) keep their times.
#[derive(Default)]
struct RecentStamps {
    used: std::collections::HashSet<u64>,
    order: std::collections::VecDeque<u64>,
}

const RECENT_STAMPS: usize = 4096;

impl RecentStamps {
    fn unique(&mut self, mut ns: u64) -> u64 {
        while self.used.contains(&ns) {
            ns = ns.saturating_add(1);
        }
        if self.order.len() == RECENT_STAMPS {
            if let Some(old) = self.order.pop_front() {
                self.used.remove(&old);
            }
        }
        self.used.insert(ns);
        self.order.push_back(ns);
        ns
    }
}

struct LowerCase<'a>(&'a str);

impl Display for LowerCase<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.chars().try_for_each(|c| f.write_char(c.to_ascii_lowercase()))
    }
}
