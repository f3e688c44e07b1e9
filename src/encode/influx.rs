//! InfluxDB line protocol in the original's schema: measurement
//! `DroppedPackets`, the same tag/field split and names, keys in byte order
//! (what InfluxDB sorts to anyway), and the trap time as the line timestamp.
//!
//! Keys are literals with their `,` and `=`; the tags fixed by the trap or
//! drop reason come pre-escaped from a cache; values go through `write`
//! (no `core::fmt`). The bytes are those of the previous encoder, which
//! formatted every value through `Display` and escaped it byte by byte.

use std::collections::VecDeque;

use super::cache::{Escaped, TrapCache};
use super::write::{self, influx as escape, Position};
use super::{Context, Summary};
use crate::inthash::IntSet;
use crate::netdb::{Named, PortProtocol};
use crate::record::{FlowKind, Network, Origin, Record, Transport};

pub const MEASUREMENT: &str = "DroppedPackets";

#[derive(Default)]
pub struct InfluxEncoder {
    stamps: RecentStamps,
    cache: TrapCache<Fragments>,
    /// `,deviceIP=…`, or nothing for an empty device IP.
    device_ip: Escaped,
    clock: write::Clock,
}

/// The tags fixed by a record's trap or drop reason, each with its leading
/// comma, in the places the sorted tag list puts them.
struct Fragments {
    /// description.
    head: Vec<u8>,
    /// devlinkDevice, dropReason, dropType.
    mid: Vec<u8>,
    /// message.
    message: Vec<u8>,
    /// severity, skbDropReason, source.
    tail: Vec<u8>,
    /// trapGroup, trapName, trapType.
    trap: Vec<u8>,
}

/// `,key=value` with the value escaped as a tag value. InfluxDB rejects
/// empty tag values: an absent value is an absent tag.
fn tag(out: &mut Vec<u8>, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(b',');
    escape(out, key, Position::Key);
    out.push(b'=');
    escape(out, value, Position::Key);
}

impl Fragments {
    fn build(s: &Summary<'_>, rec: &Record) -> Fragments {
        let trap = match &rec.origin {
            Origin::Devlink(t) => Some(t),
            Origin::Skb(_) => None,
        };
        let mut head = Vec::new();
        tag(&mut head, "description", s.description);
        let mut mid = Vec::new();
        if let Some(t) = trap.filter(|_| s.devlink_device) {
            tag(&mut mid, "devlinkDevice", &format!("{}/{}", t.bus_name.as_str(), t.device_name.as_str()));
        }
        tag(&mut mid, "dropReason", &s.drop_reason);
        tag(&mut mid, "dropType", s.drop_type);
        let mut message = Vec::new();
        tag(&mut message, "message", s.message);
        let mut tail = Vec::new();
        tag(&mut tail, "severity", s.severity);
        if trap.is_none() {
            tag(&mut tail, "skbDropReason", &s.drop_reason);
        }
        tag(&mut tail, "source", s.source);
        let mut trap_tags = Vec::new();
        if let Some(t) = trap {
            tag(&mut trap_tags, "trapGroup", t.trap_group.as_str());
            tag(&mut trap_tags, "trapName", t.trap_name.as_str());
            tag(&mut trap_tags, "trapType", s.trap_type);
        }
        Fragments { head, mid, message, tail, trap: trap_tags }
    }
}

/// `,key=` then an integer field.
/// These helpers are inlined so that each literal key is copied as a
/// few fixed-size stores rather than by a call to memcpy.
#[inline(always)]
fn int(out: &mut Vec<u8>, key: &[u8], v: impl Into<u64>) {
    out.extend_from_slice(key);
    write::int(out, v);
    out.push(b'i');
}

/// Line protocol integers are signed 64-bit: larger values are clamped.
#[inline(always)]
fn uint(out: &mut Vec<u8>, key: &[u8], v: u64) {
    int(out, key, v.min(i64::MAX as u64));
}

#[inline(always)]
fn boolean(out: &mut Vec<u8>, key: &[u8], v: bool) {
    out.extend_from_slice(key);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// A string field: `,key="` then what `value` writes (which needs no
/// escaping: digits, hex, addresses) then `"`.
#[inline(always)]
fn string(out: &mut Vec<u8>, key: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(key);
    out.push(b'"');
    value(out);
    out.push(b'"');
}

/// "53 (domain)" as a string field, the name escaped.
#[inline(always)]
fn named(out: &mut Vec<u8>, key: &[u8], n: Named<'_, impl Into<u64> + Copy>) {
    string(out, key, |out| {
        write::int(out, n.value());
        out.extend_from_slice(b" (");
        escape(out, n.name().unwrap_or("unknown"), Position::StringValue);
        out.push(b')');
    });
}

impl InfluxEncoder {
    pub(super) fn encode(&mut self, ctx: &Context, rec: &Record, out: &mut Vec<u8>) {
        let f = self.cache.get(ctx, rec, Fragments::build);
        let p = &rec.packet;
        let trap = match &rec.origin {
            Origin::Devlink(t) => Some(t),
            Origin::Skb(_) => None,
        };
        let ip = match &p.network {
            Network::Ip(ip) => Some(ip),
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

        // Tags, in byte order of their keys. Tags are what a dashboard groups
        // by and each value is a series: the vendor SDK's ports, LAG, traffic
        // class and ACL direction have few values and are tags; occupancy,
        // latency and the ACL rule value are measurements or ids that vary
        // per packet or rule, so fields.
        out.extend_from_slice(MEASUREMENT.as_bytes());
        if let Some(a) = acl {
            tag(out, "aclDirection", a.direction.as_str());
        }
        // -u: which kind of record (flow, exemplar, overflow); few values, a tag to select by.
        if let Some(flow) = rec.flow {
            out.extend_from_slice(b",aggregation=");
            out.extend_from_slice(flow.kind.as_str().as_bytes());
        }
        out.extend_from_slice(&f.head);
        out.extend_from_slice(self.device_ip.get(&ctx.device_ip, |o, ip| tag(o, "deviceIP", ip)));
        out.extend_from_slice(&f.mid);
        if let Some(l) = &lag {
            tag(out, "egressLag", l.name.as_str());
        }
        if let Some(e) = &rec.egress {
            tag(out, "egressPort", e.name.as_str());
        }
        // Never empty (N/A): the tag is always there.
        out.extend_from_slice(b",ingressPort=");
        escape(out, super::ingress_port(rec), Position::Key);
        out.extend_from_slice(&f.message);
        if let Some(eth) = p.ethernet {
            out.extend_from_slice(b",packet_ethernet_dstMac=");
            write::mac(out, eth.dst);
            out.extend_from_slice(b",packet_ethernet_srcMac=");
            write::mac(out, eth.src);
        }
        if let Some(ip) = ip {
            out.extend_from_slice(b",packet_ip_srcIp=");
            write::ip(out, ip.src);
        }
        out.extend_from_slice(match super::packet_type(rec) {
            "TRANSPORT" => b",packet_packetType=transport",
            "IP" => b",packet_packetType=ip",
            "ARP" => b",packet_packetType=arp",
            "ETHERNET" => b",packet_packetType=ethernet",
            _ => b",packet_packetType=none",
        });
        if let Some((_, _, dst_port)) = ports {
            out.extend_from_slice(b",packet_transport_dstPort=");
            write::int(out, dst_port);
        }
        out.extend_from_slice(&f.tail);
        if let Some(tc) = wjh.and_then(|w| w.traffic_class) {
            out.extend_from_slice(b",trafficClass=");
            write::int(out, tc);
        }
        out.extend_from_slice(&f.trap);

        // Fields, in byte order of their keys. Each is written with a
        // leading comma; the first one's becomes the space that ends the tags.
        let fields = out.len();
        if let Some(a) = acl {
            int(out, b",aclRuleValue=", a.value);
        }
        if let Some(flow) = rec.flow {
            if flow.kind == FlowKind::Overflow {
                boolean(out, b",aggregationOverflow=", true);
            }
            uint(out, b",bytes=", flow.bytes);
            uint(out, b",count=", flow.packets);
        }
        if let Some(e) = rec.egress {
            int(out, b",egressIfIndex=", e.ifindex);
        }
        if let Some(l) = lag {
            int(out, b",egressLagIfIndex=", l.ifindex);
        }
        if let Some(flow) = rec.flow {
            string(out, b",firstSeen=", |o| write::seconds(o, flow.first_ns));
        }
        if let Some(c) = trap.and_then(|t| t.cookie.as_ref()) {
            string(out, b",flowActionCookie=", |o| write::hex_bytes(o, c.captured()));
            int(out, b",flowActionCookieLength=", c.len);
        }
        int(out, b",ingressIfIndex=", rec.ingress.ifindex);
        if let Some(flow) = rec.flow {
            string(out, b",lastSeen=", |o| write::seconds(o, flow.last_ns));
        }
        if let Some(l) = wjh.and_then(|w| w.latency) {
            if let Some(ns) = l.ns() {
                uint(out, b",latencyNs=", ns);
            }
            uint(out, b",latencyRaw=", l.raw);
        }
        if rec.ingress.netns_ino != 0 {
            int(out, b",netnsIno=", rec.ingress.netns_ino);
        }
        if let Network::Arp(a) = &p.network {
            int(out, b",packet_arp_operation=", a.operation);
            string(out, b",packet_arp_senderIp=", |o| write::ipv4(o, a.sender_ip));
            string(out, b",packet_arp_senderMac=", |o| write::mac(o, a.sender_mac));
            string(out, b",packet_arp_targetIp=", |o| write::ipv4(o, a.target_ip));
            string(out, b",packet_arp_targetMac=", |o| write::mac(o, a.target_mac));
        }
        if p.ethernet.is_some() {
            let [outer, inner] = p.vlans;
            if let Some(v) = outer {
                int(out, b",packet_ethernet_dei=", v.dei as u8);
            }
            int(out, b",packet_ethernet_etherType=", p.ether_type);
            string(out, b",packet_ethernet_etherTypeName=", |o| write::ether_type(o, p.ether_type));
            if let Some(v) = inner {
                int(out, b",packet_ethernet_innerDei=", v.dei as u8);
                int(out, b",packet_ethernet_innerPcp=", v.pcp);
                int(out, b",packet_ethernet_innerVlanId=", v.vid);
            }
            if let Some(v) = outer {
                int(out, b",packet_ethernet_pcp=", v.pcp);
                string(out, b",packet_ethernet_vlanTpid=", |o| write::ether_type(o, v.tpid));
                int(out, b",packet_ethernet_vlanId=", v.vid);
            }
        }
        if let Transport::Icmp { kind, code } | Transport::Icmpv6 { kind, code } = p.transport {
            int(out, b",packet_icmp_code=", code);
            int(out, b",packet_icmp_type=", kind);
        }
        if let Some(ip) = ip {
            let v4 = ip.src.is_ipv4();
            if v4 {
                boolean(out, b",packet_ip_dontFragment=", ip.dont_fragment);
            }
            string(out, b",packet_ip_dstIp=", |o| write::ip(o, ip.dst));
            if let Some(label) = ip.flow_label {
                int(out, b",packet_ip_flowLabel=", label);
            }
            if let Some(frag) = ip.fragment {
                int(out, b",packet_ip_fragOffset=", frag.offset);
            }
            if let Some(id) = ip.id {
                int(out, b",packet_ip_id=", id);
            }
            int(out, b",packet_ip_length=", ip.length);
            if let Some(frag) = ip.fragment {
                boolean(out, b",packet_ip_moreFragments=", frag.more);
            }
            int(out, b",packet_ip_protocol=", ip.protocol);
            named(out, b",packet_ip_protocolName=", ctx.netdb.protocol(ip.protocol));
            int(out, b",packet_ip_tos=", ip.tos);
            int(out, b",packet_ip_ttl=", ip.ttl);
            int(out, b",packet_ip_version=", if v4 { 4u8 } else { 6 });
        }
        int(out, b",packet_length=", p.len);
        if let Some((proto, src_port, dst_port)) = ports {
            named(out, b",packet_transport_dstPortName=", ctx.netdb.service(proto, dst_port));
            int(out, b",packet_transport_srcPort=", src_port);
            named(out, b",packet_transport_srcPortName=", ctx.netdb.service(proto, src_port));
            match p.transport {
                Transport::Tcp { flags, .. } => {
                    string(out, b",packet_transport_tcpFlags=", |o| write::tcp_flags(o, flags))
                }
                Transport::Udp { length, .. } => int(out, b",packet_transport_udpLength=", length),
                _ => {}
            }
        }
        if let Some(o) = wjh.and_then(|w| w.occupancy) {
            if let Some(bytes) = o.bytes() {
                uint(out, b",tcOccupancyBytes=", bytes);
            }
            uint(out, b",tcOccupancyRaw=", o.raw);
        }
        string(out, b",timestamp=", |o| self.clock.seconds(o, rec.time_ns));
        // Never out of range: ingressIfIndex and timestamp are always written.
        if let Some(first) = out.get_mut(fields) {
            *first = b' ';
        }

        // Line protocol timestamps are signed 64-bit.
        out.push(b' ');
        let stamp = self.stamps.unique(rec.time_ns.min(i64::MAX as u64 - RECENT_STAMPS as u64));
        self.clock.nanos(out, stamp);
    }
}

/// Two points with the same series and timestamp overwrite each other in
/// InfluxDB. A timestamp already used by one of the last lines is moved on by
/// 1 ns until it is free: only exact collisions move, and by nanoseconds, so
/// records out of time order (flows drained in hash order) keep their times.
///
/// Records mostly come in time order: while the recent stamps rise
/// throughout, a later one is free without a look-up and an earlier one is
/// found by binary search. A hash set of them is kept only while some are
/// out of order (three hash operations per line were a tenth of encoding it).
#[derive(Default)]
struct RecentStamps {
    /// The last RECENT_STAMPS stamps, oldest first; no two are equal.
    order: VecDeque<u64>,
    /// Neighbours in `order` where the later is not above the earlier.
    descents: usize,
    /// Every stamp in `order`, while `descents > 0`; empty otherwise.
    used: IntSet<u64>,
}

const RECENT_STAMPS: usize = 4096;

impl RecentStamps {
    fn unique(&mut self, mut ns: u64) -> u64 {
        if self.descents > 0 {
            while self.used.contains(&ns) {
                ns = ns.saturating_add(1);
            }
        } else if self.order.back().is_some_and(|&last| ns <= last) {
            while self.order.binary_search(&ns).is_ok() {
                ns = ns.saturating_add(1);
            }
        }
        if self.order.len() == RECENT_STAMPS {
            if let Some(old) = self.order.pop_front() {
                if self.order.front().is_some_and(|&next| next <= old) {
                    self.descents -= 1;
                }
                if !self.used.is_empty() {
                    self.used.remove(&old);
                }
            }
        }
        if self.order.back().is_some_and(|&last| ns <= last) {
            self.descents += 1;
        }
        self.order.push_back(ns);
        if self.descents == 0 {
            // The last stamp out of order has aged out (or none was). Only
            // then: clearing even an empty table rewrites its control bytes.
            if !self.used.is_empty() {
                self.used.clear();
            }
        } else if self.used.is_empty() {
            // Out of order from now on: the set starts with every stamp.
            self.used.extend(self.order.iter().copied());
        } else {
            self.used.insert(ns);
        }
        ns
    }
}

#[cfg(test)]
pub(super) fn escape_for_test(text: &str, pos: &str) -> String {
    let pos = match pos {
        "measurement" => Position::Measurement,
        "key" => Position::Key,
        _ => Position::StringValue,
    };
    let mut out = Vec::new();
    escape(&mut out, text, pos);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod stamp_tests {
    use super::{RecentStamps, RECENT_STAMPS};
    use std::collections::{HashSet, VecDeque};

    /// The rule as written before the sorted fast path: a set and a queue.
    #[derive(Default)]
    struct Reference {
        used: HashSet<u64>,
        order: VecDeque<u64>,
    }

    impl Reference {
        fn unique(&mut self, mut ns: u64) -> u64 {
            while self.used.contains(&ns) {
                ns += 1;
            }
            if self.order.len() == RECENT_STAMPS {
                let old = self.order.pop_front().unwrap();
                self.used.remove(&old);
            }
            self.used.insert(ns);
            self.order.push_back(ns);
            ns
        }
    }

    #[test]
    fn stamps_match_the_set_and_queue_rule_in_and_out_of_order() {
        let mut next = crate::encode::write::tests::rng(5);
        let (mut fast, mut slow) = (RecentStamps::default(), Reference::default());
        let mut t = 1_700_000_000_000_000_000u64;
        for i in 0..60_000u64 {
            let r = next();
            // Phases: rising with repeats, a burst out of order (flows in
            // hash order), rising again long enough for it to age out.
            let ns = match (i / 5000) % 3 {
                0 | 2 => {
                    t += r % 3;
                    t
                }
                _ => t - r % 20_000,
            };
            assert_eq!(fast.unique(ns), slow.unique(ns), "record {i}");
        }
        assert_eq!(fast.descents, 0, "the out-of-order stamps aged out");
        assert!(fast.used.is_empty());
    }
}
