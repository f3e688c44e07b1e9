//! JSON in the original's schema: the seed README's keys, nesting and key
//! order first, trapstream's additions after them.
//!
//! Written by hand rather than through serde: a record is ~50 keys, most of
//! them fixed literals, and serde_json spent most of the time escaping the
//! same trap texts and formatting numbers through `core::fmt`. Here the texts
//! fixed by the trap come pre-escaped from a cache, keys are literals with
//! their punctuation, and values go through `write`. The output is the
//! bytes serde_json produced (the golden tests and a differential test
//! against the previous serde encoder hold it to that).

use super::cache::{Escaped, TrapCache};
use super::write::{self, json_quoted, json_str};
use super::{Context, Summary};
use crate::netdb::{Named, PortProtocol};
use crate::record::{FlowKind, Network, Origin, Record, Transport};

#[derive(Default)]
pub struct JsonEncoder {
    cache: TrapCache<Fragments>,
    device_ip: Escaped,
    clock: write::Clock,
}

/// The parts of a record fixed by its trap or drop reason, escaped, with the
/// keys and punctuation around them.
struct Fragments {
    /// From the end of `ingressPort`'s value to the start of `timestamp`'s.
    texts: Vec<u8>,
    /// From the end of `timestamp`'s value to the start of `packetType`'s.
    message: Vec<u8>,
    /// `source` and the key of `ingressIfIndex`.
    source: Vec<u8>,
    /// trapName, trapGroup, trapType, devlinkDevice (devlink reports only).
    trap: Vec<u8>,
    /// skbDropReason (kernel drops only).
    skb: Vec<u8>,
}

impl Fragments {
    fn build(s: &Summary<'_>, rec: &Record) -> Fragments {
        let mut texts = Vec::new();
        for (key, value) in [
            ("\",\"description\":\"", s.description),
            ("\",\"severity\":\"", s.severity),
            ("\",\"dropType\":\"", s.drop_type),
            ("\",\"dropReason\":\"", &s.drop_reason),
        ] {
            texts.extend_from_slice(key.as_bytes());
            json_str(&mut texts, value);
        }
        texts.extend_from_slice(b"\",\"timestamp\":\"");
        let mut message = b"\",\"message\":\"".to_vec();
        json_str(&mut message, s.message);
        message.extend_from_slice(b"\",\"packet\":{\"packetType\":\"");
        let mut source = b",\"source\":".to_vec();
        json_quoted(&mut source, s.source);
        source.extend_from_slice(b",\"ingressIfIndex\":");
        let (mut trap, mut skb) = (Vec::new(), Vec::new());
        match &rec.origin {
            Origin::Devlink(t) => {
                trap.extend_from_slice(b",\"trapName\":");
                json_quoted(&mut trap, t.trap_name.as_str());
                trap.extend_from_slice(b",\"trapGroup\":");
                json_quoted(&mut trap, t.trap_group.as_str());
                trap.extend_from_slice(b",\"trapType\":");
                json_quoted(&mut trap, s.trap_type);
                if s.devlink_device {
                    trap.extend_from_slice(b",\"devlinkDevice\":\"");
                    json_str(&mut trap, t.bus_name.as_str());
                    trap.push(b'/');
                    json_str(&mut trap, t.device_name.as_str());
                    trap.push(b'"');
                }
            }
            Origin::Skb(_) => {
                skb.extend_from_slice(b",\"skbDropReason\":");
                json_quoted(&mut skb, &s.drop_reason);
            }
        }
        Fragments { texts, message, source, trap, skb }
    }
}

/// `,"key":` then an integer.
/// These helpers are inlined so that each literal key is copied as a
/// few fixed-size stores rather than by a call to memcpy.
#[inline(always)]
fn int(out: &mut Vec<u8>, key: &[u8], v: impl Into<u64>) {
    out.extend_from_slice(key);
    write::int(out, v);
}

#[inline(always)]
fn opt_int<T: Into<u64>>(out: &mut Vec<u8>, key: &[u8], v: Option<T>) {
    if let Some(v) = v {
        int(out, key, v);
    }
}

#[inline(always)]
fn boolean(out: &mut Vec<u8>, key: &[u8], v: bool) {
    out.extend_from_slice(key);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// "53 (domain)", "40000 (unknown)", quoted, as `Named` displays it.
#[inline(always)]
fn named(out: &mut Vec<u8>, key: &[u8], n: Named<'_, impl Into<u64> + Copy>) {
    out.extend_from_slice(key);
    out.push(b'"');
    write::int(out, n.value());
    out.extend_from_slice(b" (");
    json_str(out, n.name().unwrap_or("unknown"));
    out.extend_from_slice(b")\"");
}

/// `,"key":"` then `seconds` then `"`.
fn seconds(out: &mut Vec<u8>, key: &[u8], ns: u64) {
    out.extend_from_slice(key);
    write::seconds(out, ns);
    out.push(b'"');
}

impl JsonEncoder {
    pub(super) fn encode(&mut self, ctx: &Context, rec: &Record, out: &mut Vec<u8>) {
        let f = self.cache.get(ctx, rec, Fragments::build);
        let p = &rec.packet;
        out.extend_from_slice(b"{\"deviceIP\":\"");
        out.extend_from_slice(self.device_ip.get(&ctx.device_ip, json_str));
        out.extend_from_slice(b"\",\"ingressPort\":\"");
        json_str(out, super::ingress_port(rec));
        out.extend_from_slice(&f.texts);
        self.clock.seconds(out, rec.time_ns);
        out.extend_from_slice(&f.message);
        out.extend_from_slice(super::packet_type(rec).as_bytes());
        out.push(b'"');

        if let Some(eth) = p.ethernet {
            let [outer, inner] = p.vlans;
            out.extend_from_slice(b",\"ETHERNET\":{\"etherTypeName\":\"");
            write::ether_type(out, p.ether_type);
            int(out, b"\",\"etherType\":", p.ether_type);
            out.extend_from_slice(b",\"srcMac\":\"");
            write::mac(out, eth.src);
            out.extend_from_slice(b"\",\"dstMac\":\"");
            write::mac(out, eth.dst);
            int(out, b"\",\"vlanId\":", outer.map_or(0, |v| v.vid));
            int(out, b",\"pcp\":", outer.map_or(0, |v| v.pcp));
            if let Some(v) = outer {
                int(out, b",\"dei\":", v.dei as u8);
                out.extend_from_slice(b",\"vlanTpid\":\"");
                write::ether_type(out, v.tpid);
                out.push(b'"');
            }
            if let Some(v) = inner {
                int(out, b",\"innerVlanId\":", v.vid);
                int(out, b",\"innerPcp\":", v.pcp);
                int(out, b",\"innerDei\":", v.dei as u8);
            }
            out.push(b'}');
        }
        match &p.network {
            Network::Arp(a) => {
                int(out, b",\"ARP\":{\"operation\":", a.operation);
                out.extend_from_slice(b",\"senderMac\":\"");
                write::mac(out, a.sender_mac);
                out.extend_from_slice(b"\",\"senderIp\":\"");
                write::ipv4(out, a.sender_ip);
                out.extend_from_slice(b"\",\"targetMac\":\"");
                write::mac(out, a.target_mac);
                out.extend_from_slice(b"\",\"targetIp\":\"");
                write::ipv4(out, a.target_ip);
                out.extend_from_slice(b"\"}");
            }
            Network::Ip(ip) => {
                let v4 = ip.src.is_ipv4();
                out.extend_from_slice(b",\"IP\":{\"srcIp\":\"");
                write::ip(out, ip.src);
                out.extend_from_slice(b"\",\"dstIp\":\"");
                write::ip(out, ip.dst);
                int(out, b"\",\"protocol\":", ip.protocol);
                named(out, b",\"protocolName\":", ctx.netdb.protocol(ip.protocol));
                int(out, b",\"length\":", ip.length);
                int(out, b",\"tos\":", ip.tos);
                int(out, b",\"ttl\":", ip.ttl);
                int(out, b",\"version\":", if v4 { 4u8 } else { 6 });
                opt_int(out, b",\"id\":", ip.id);
                if v4 {
                    boolean(out, b",\"dontFragment\":", ip.dont_fragment);
                }
                if let Some(frag) = ip.fragment {
                    int(out, b",\"fragOffset\":", frag.offset);
                    boolean(out, b",\"moreFragments\":", frag.more);
                }
                opt_int(out, b",\"flowLabel\":", ip.flow_label);
                out.push(b'}');
            }
            Network::None => {}
        }
        let transport = |out: &mut Vec<u8>, proto, src: u16, dst: u16| {
            int(out, b",\"TRANSPORT\":{\"srcPort\":", src);
            int(out, b",\"dstPort\":", dst);
            named(out, b",\"srcPortName\":", ctx.netdb.service(proto, src));
            named(out, b",\"dstPortName\":", ctx.netdb.service(proto, dst));
        };
        match p.transport {
            Transport::Tcp { src_port, dst_port, flags } => {
                transport(out, PortProtocol::Tcp, src_port, dst_port);
                out.extend_from_slice(b",\"tcpFlags\":\"");
                write::tcp_flags(out, flags);
                out.extend_from_slice(b"\"}");
            }
            Transport::Udp { src_port, dst_port, length } => {
                transport(out, PortProtocol::Udp, src_port, dst_port);
                int(out, b",\"udpLength\":", length);
                out.push(b'}');
            }
            Transport::Icmp { kind, code } | Transport::Icmpv6 { kind, code } => {
                int(out, b",\"ICMP\":{\"type\":", kind);
                int(out, b",\"code\":", code);
                out.push(b'}');
            }
            Transport::None => {}
        }
        int(out, b",\"length\":", p.len);
        out.push(b'}');

        out.extend_from_slice(&f.source);
        write::int(out, rec.ingress.ifindex);
        let trap = match &rec.origin {
            Origin::Devlink(t) => Some(t),
            Origin::Skb(_) => None,
        };
        let wjh = trap.and_then(|t| t.wjh);
        let lag = wjh.and_then(|w| w.egress_lag);
        if let Some(e) = &rec.egress {
            out.extend_from_slice(b",\"egressPort\":");
            json_quoted(out, e.name.as_str());
            int(out, b",\"egressIfIndex\":", e.ifindex);
        }
        if let Some(l) = &lag {
            out.extend_from_slice(b",\"egressLag\":");
            json_quoted(out, l.name.as_str());
            int(out, b",\"egressLagIfIndex\":", l.ifindex);
        }
        if rec.ingress.netns_ino != 0 {
            int(out, b",\"netnsIno\":", rec.ingress.netns_ino);
        }
        out.extend_from_slice(&f.trap);
        if let Some(t) = trap {
            if let Some(c) = &t.cookie {
                out.extend_from_slice(b",\"flowActionCookie\":\"");
                write::hex_bytes(out, c.captured());
                int(out, b"\",\"flowActionCookieLength\":", c.len);
            }
            if let Some(a) = t.acl {
                int(out, b",\"aclRuleValue\":", a.value);
                out.extend_from_slice(b",\"aclDirection\":");
                json_quoted(out, a.direction.as_str());
            }
        }
        if let Some(w) = wjh {
            opt_int(out, b",\"trafficClass\":", w.traffic_class);
            if let Some(o) = w.occupancy {
                int(out, b",\"tcOccupancyRaw\":", o.raw);
                opt_int(out, b",\"tcOccupancyBytes\":", o.bytes());
            }
            if let Some(l) = w.latency {
                int(out, b",\"latencyRaw\":", l.raw);
                opt_int(out, b",\"latencyNs\":", l.ns());
            }
        }
        out.extend_from_slice(&f.skb);
        if let Some(flow) = rec.flow {
            int(out, b",\"count\":", flow.packets);
            int(out, b",\"bytes\":", flow.bytes);
            seconds(out, b",\"firstSeen\":\"", flow.first_ns);
            seconds(out, b",\"lastSeen\":\"", flow.last_ns);
            if flow.kind == FlowKind::Overflow {
                out.extend_from_slice(b",\"aggregationOverflow\":true");
            }
            out.extend_from_slice(b",\"aggregation\":\"");
            out.extend_from_slice(flow.kind.as_str().as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }
}
