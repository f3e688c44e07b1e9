//! One compact line per record for people at a terminal (`--stdout -f text`).

use std::fmt::Write as _;

use super::{ByteWriter, Context, Seconds, Summary};
use crate::record::{Network, Origin, Record, Transport};

pub struct TextEncoder;

impl TextEncoder {
    pub(super) fn encode(&mut self, _ctx: &Context, rec: &Record, s: &Summary<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        let mut w = ByteWriter(out);
        let (what, trap) = match &rec.origin {
            Origin::Devlink(t) => (t.trap_name.as_str(), Some(t)),
            Origin::Skb(_) => (&*s.drop_reason, None),
        };
        let wjh = trap.and_then(|t| t.wjh);
        let _ = write!(w, "{} {}", Seconds(rec.time_ns), s.ingress_port);
        if let Some(port) = s.egress_port {
            let _ = write!(w, " out {port}");
        }
        if let Some(lag) = wjh.and_then(|w| w.egress_lag) {
            let _ = write!(w, " lag {}", lag.name.as_str());
        }
        let _ = write!(w, " {} {} [{}]", s.message, what, s.severity);
        let p = &rec.packet;
        if let Some(v) = p.vlans[0] {
            let _ = write!(w, " vlan {}", v.vid);
        }
        if let Some(v) = p.vlans[1] {
            let _ = write!(w, ".{}", v.vid);
        }
        match (&p.network, p.transport) {
            (Network::Ip(ip), Transport::Tcp { src_port, dst_port, .. })
            | (Network::Ip(ip), Transport::Udp { src_port, dst_port, .. }) => {
                let proto = if matches!(p.transport, Transport::Tcp { .. }) { "tcp" } else { "udp" };
                let _ = write!(
                    w,
                    " {proto} {}:{} > {}:{}",
                    Bracketed(ip.src),
                    src_port,
                    Bracketed(ip.dst),
                    dst_port
                );
            }
            (Network::Ip(ip), Transport::Icmp { kind, code } | Transport::Icmpv6 { kind, code }) => {
                let name = if matches!(p.transport, Transport::Icmp { .. }) { "icmp" } else { "icmp6" };
                let _ = write!(w, " {name} {} > {} type {kind} code {code}", ip.src, ip.dst);
            }
            (Network::Ip(ip), _) => {
                let _ = write!(w, " ip proto {} {} > {}", ip.protocol, ip.src, ip.dst);
            }
            (Network::Arp(a), _) => {
                let _ =
                    write!(w, " arp op {} {} ({}) > {}", a.operation, a.sender_ip, a.sender_mac, a.target_ip);
            }
            (Network::None, _) => match p.ethernet {
                Some(eth) => {
                    let _ = write!(w, " {} > {} ethertype {:#06x}", eth.src, eth.dst, p.ether_type);
                }
                None => {
                    let _ = write!(w, " ethertype {:#06x}", p.ether_type);
                }
            },
        }
        if let Network::Ip(ip) = &p.network {
            let _ = write!(w, " ttl {} len {}", ip.ttl, ip.length);
        }
        // The vendor SDK's facts, scaled where the SDK says how.
        if let Some(a) = trap.and_then(|t| t.acl) {
            let _ = write!(w, " acl {} rule {:#x}", a.direction.as_str(), a.value);
        }
        if let Some(tc) = wjh.and_then(|w| w.traffic_class) {
            let _ = write!(w, " tc {tc}");
        }
        if let Some(o) = wjh.and_then(|w| w.occupancy) {
            let _ = match o.bytes() {
                Some(bytes) => write!(w, " occ {bytes}B"),
                None => write!(w, " occ raw {}", o.raw),
            };
        }
        if let Some(l) = wjh.and_then(|w| w.latency) {
            let _ = match l.ns() {
                Some(ns) => write!(w, " lat {ns}ns"),
                None => write!(w, " lat raw {}", l.raw),
            };
        }
        // Kernel names and operator overrides may hold control characters:
        // one record stays one line.
        for b in &mut out[start..] {
            if b.is_ascii_control() {
                *b = b'?';
            }
        }
    }
}

/// IPv6 addresses in brackets so the port separator stays readable.
struct Bracketed(std::net::IpAddr);

impl std::fmt::Display for Bracketed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            std::net::IpAddr::V4(a) => write!(f, "{a}"),
            std::net::IpAddr::V6(a) => write!(f, "[{a}]"),
        }
    }
}
