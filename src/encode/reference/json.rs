//! JSON in the original's schema: the seed README's keys, nesting and key
//! order first, trapstream's additions after them. serde keeps field order
//! and writes straight into the caller's buffer.

use serde::ser::{Serialize, Serializer};

use crate::encode::{Context, DevlinkHandle, Hex, Seconds, Summary, TcpFlags};
use crate::netdb::PortProtocol;
use crate::record::{FlowKind, Network, Origin, Record, Transport};

pub struct JsonEncoder;

/// A Display value serialised as a JSON string, with no intermediate String.
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    #[serde(rename = "deviceIP")]
    device_ip: &'a str,
    #[serde(rename = "ingressPort")]
    ingress_port: &'a str,
    description: &'a str,
    severity: &'a str,
    #[serde(rename = "dropType")]
    drop_type: &'a str,
    #[serde(rename = "dropReason")]
    drop_reason: &'a str,
    timestamp: Text<Seconds>,
    message: &'a str,
    packet: JsonPacket<'a>,
    source: &'a str,
    #[serde(rename = "ingressIfIndex")]
    ingress_ifindex: u32,
    #[serde(rename = "egressPort", skip_serializing_if = "Option::is_none")]
    egress_port: Option<&'a str>,
    #[serde(rename = "egressIfIndex", skip_serializing_if = "Option::is_none")]
    egress_ifindex: Option<u32>,
    #[serde(rename = "egressLag", skip_serializing_if = "Option::is_none")]
    egress_lag: Option<&'a str>,
    #[serde(rename = "egressLagIfIndex", skip_serializing_if = "Option::is_none")]
    egress_lag_ifindex: Option<u32>,
    #[serde(rename = "netnsIno", skip_serializing_if = "is_zero")]
    netns_ino: u32,
    #[serde(rename = "trapName", skip_serializing_if = "Option::is_none")]
    trap_name: Option<&'a str>,
    #[serde(rename = "trapGroup", skip_serializing_if = "Option::is_none")]
    trap_group: Option<&'a str>,
    #[serde(rename = "trapType", skip_serializing_if = "Option::is_none")]
    trap_type: Option<&'a str>,
    #[serde(rename = "devlinkDevice", skip_serializing_if = "Option::is_none")]
    devlink_device: Option<Text<DevlinkHandle<'a>>>,
    #[serde(rename = "flowActionCookie", skip_serializing_if = "Option::is_none")]
    flow_action_cookie: Option<Text<Hex<'a>>>,
    #[serde(rename = "flowActionCookieLength", skip_serializing_if = "Option::is_none")]
    flow_action_cookie_len: Option<u16>,
    #[serde(rename = "aclRuleValue", skip_serializing_if = "Option::is_none")]
    acl_rule_value: Option<u32>,
    #[serde(rename = "aclDirection", skip_serializing_if = "Option::is_none")]
    acl_direction: Option<&'a str>,
    #[serde(rename = "trafficClass", skip_serializing_if = "Option::is_none")]
    traffic_class: Option<u16>,
    #[serde(rename = "tcOccupancyRaw", skip_serializing_if = "Option::is_none")]
    tc_occupancy_raw: Option<u64>,
    #[serde(rename = "tcOccupancyBytes", skip_serializing_if = "Option::is_none")]
    tc_occupancy_bytes: Option<u64>,
    #[serde(rename = "latencyRaw", skip_serializing_if = "Option::is_none")]
    latency_raw: Option<u64>,
    #[serde(rename = "latencyNs", skip_serializing_if = "Option::is_none")]
    latency_ns: Option<u64>,
    #[serde(rename = "skbDropReason", skip_serializing_if = "Option::is_none")]
    skb_drop_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(rename = "firstSeen", skip_serializing_if = "Option::is_none")]
    first_seen: Option<Text<Seconds>>,
    #[serde(rename = "lastSeen", skip_serializing_if = "Option::is_none")]
    last_seen: Option<Text<Seconds>>,
    #[serde(rename = "aggregationOverflow", skip_serializing_if = "Option::is_none")]
    aggregation_overflow: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregation: Option<&'static str>,
}

#[derive(serde::Serialize)]
struct JsonPacket<'a> {
    #[serde(rename = "packetType")]
    packet_type: &'a str,
    #[serde(rename = "ETHERNET", skip_serializing_if = "Option::is_none")]
    ethernet: Option<JsonEthernet>,
    #[serde(rename = "ARP", skip_serializing_if = "Option::is_none")]
    arp: Option<JsonArp>,
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<JsonIp<'a>>,
    #[serde(rename = "TRANSPORT", skip_serializing_if = "Option::is_none")]
    transport: Option<JsonTransport<'a>>,
    #[serde(rename = "ICMP", skip_serializing_if = "Option::is_none")]
    icmp: Option<JsonIcmp>,
    length: u32,
}

#[derive(serde::Serialize)]
struct JsonEthernet {
    #[serde(rename = "etherTypeName")]
    ether_type_name: Text<EtherTypeName>,
    #[serde(rename = "etherType")]
    ether_type: u16,
    #[serde(rename = "srcMac")]
    src_mac: Text<crate::record::Mac>,
    #[serde(rename = "dstMac")]
    dst_mac: Text<crate::record::Mac>,
    #[serde(rename = "vlanId")]
    vlan_id: u16,
    pcp: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    dei: Option<u8>,
    #[serde(rename = "vlanTpid", skip_serializing_if = "Option::is_none")]
    vlan_tpid: Option<Text<EtherTypeName>>,
    #[serde(rename = "innerVlanId", skip_serializing_if = "Option::is_none")]
    inner_vlan_id: Option<u16>,
    #[serde(rename = "innerPcp", skip_serializing_if = "Option::is_none")]
    inner_pcp: Option<u8>,
    #[serde(rename = "innerDei", skip_serializing_if = "Option::is_none")]
    inner_dei: Option<u8>,
}

/// "0x800", as the original formatted EtherTypes.
pub(crate) struct EtherTypeName(pub u16);

impl std::fmt::Display for EtherTypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[derive(serde::Serialize)]
struct JsonArp {
    operation: u16,
    #[serde(rename = "senderMac")]
    sender_mac: Text<crate::record::Mac>,
    #[serde(rename = "senderIp")]
    sender_ip: Text<std::net::Ipv4Addr>,
    #[serde(rename = "targetMac")]
    target_mac: Text<crate::record::Mac>,
    #[serde(rename = "targetIp")]
    target_ip: Text<std::net::Ipv4Addr>,
}

#[derive(serde::Serialize)]
struct JsonIp<'a> {
    #[serde(rename = "srcIp")]
    src_ip: Text<std::net::IpAddr>,
    #[serde(rename = "dstIp")]
    dst_ip: Text<std::net::IpAddr>,
    protocol: u8,
    #[serde(rename = "protocolName")]
    protocol_name: Text<crate::netdb::Named<'a, u8>>,
    length: u16,
    tos: u8,
    ttl: u8,
    version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    #[serde(rename = "dontFragment", skip_serializing_if = "Option::is_none")]
    dont_fragment: Option<bool>,
    #[serde(rename = "fragOffset", skip_serializing_if = "Option::is_none")]
    frag_offset: Option<u32>,
    #[serde(rename = "moreFragments", skip_serializing_if = "Option::is_none")]
    more_fragments: Option<bool>,
    #[serde(rename = "flowLabel", skip_serializing_if = "Option::is_none")]
    flow_label: Option<u32>,
}

#[derive(serde::Serialize)]
struct JsonTransport<'a> {
    #[serde(rename = "srcPort")]
    src_port: u16,
    #[serde(rename = "dstPort")]
    dst_port: u16,
    #[serde(rename = "srcPortName")]
    src_port_name: Text<crate::netdb::Named<'a, u16>>,
    #[serde(rename = "dstPortName")]
    dst_port_name: Text<crate::netdb::Named<'a, u16>>,
    #[serde(rename = "tcpFlags", skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<Text<TcpFlags>>,
    #[serde(rename = "udpLength", skip_serializing_if = "Option::is_none")]
    udp_length: Option<u16>,
}

#[derive(serde::Serialize)]
struct JsonIcmp {
    #[serde(rename = "type")]
    kind: u8,
    code: u8,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl JsonEncoder {
    pub(crate) fn encode(&mut self, ctx: &Context, rec: &Record, s: &Summary<'_>, out: &mut Vec<u8>) {
        let p = &rec.packet;
        let outer = p.vlans[0];
        let inner = p.vlans[1];
        let ethernet = p.ethernet.map(|eth| JsonEthernet {
            ether_type_name: Text(EtherTypeName(p.ether_type)),
            ether_type: p.ether_type,
            src_mac: Text(eth.src),
            dst_mac: Text(eth.dst),
            vlan_id: outer.map_or(0, |v| v.vid),
            pcp: outer.map_or(0, |v| v.pcp),
            dei: outer.map(|v| v.dei as u8),
            vlan_tpid: outer.map(|v| Text(EtherTypeName(v.tpid))),
            inner_vlan_id: inner.map(|v| v.vid),
            inner_pcp: inner.map(|v| v.pcp),
            inner_dei: inner.map(|v| v.dei as u8),
        });
        let (arp, ip) = match &p.network {
            Network::Arp(a) => (
                Some(JsonArp {
                    operation: a.operation,
                    sender_mac: Text(a.sender_mac),
                    sender_ip: Text(a.sender_ip),
                    target_mac: Text(a.target_mac),
                    target_ip: Text(a.target_ip),
                }),
                None,
            ),
            Network::Ip(ip) => (
                None,
                Some(JsonIp {
                    src_ip: Text(ip.src),
                    dst_ip: Text(ip.dst),
                    protocol: ip.protocol,
                    protocol_name: Text(ctx.netdb.protocol(ip.protocol)),
                    length: ip.length,
                    tos: ip.tos,
                    ttl: ip.ttl,
                    version: if ip.src.is_ipv4() { 4 } else { 6 },
                    id: ip.id,
                    dont_fragment: ip.src.is_ipv4().then_some(ip.dont_fragment),
                    frag_offset: ip.fragment.map(|f| f.offset),
                    more_fragments: ip.fragment.map(|f| f.more),
                    flow_label: ip.flow_label,
                }),
            ),
            Network::None => (None, None),
        };
        let ports = |proto, src_port, dst_port| JsonTransport {
            src_port,
            dst_port,
            src_port_name: Text(ctx.netdb.service(proto, src_port)),
            dst_port_name: Text(ctx.netdb.service(proto, dst_port)),
            tcp_flags: None,
            udp_length: None,
        };
        let (transport, icmp) = match p.transport {
            Transport::Tcp { src_port, dst_port, flags } => (
                Some(JsonTransport {
                    tcp_flags: Some(Text(TcpFlags(flags))),
                    ..ports(PortProtocol::Tcp, src_port, dst_port)
                }),
                None,
            ),
            Transport::Udp { src_port, dst_port, length } => (
                Some(JsonTransport {
                    udp_length: Some(length),
                    ..ports(PortProtocol::Udp, src_port, dst_port)
                }),
                None,
            ),
            Transport::Icmp { kind, code } | Transport::Icmpv6 { kind, code } => {
                (None, Some(JsonIcmp { kind, code }))
            }
            Transport::None => (None, None),
        };
        let (trap, drop_reason) = match &rec.origin {
            Origin::Devlink(t) => (Some(t), None),
            Origin::Skb(_) => (None, Some(&*s.drop_reason)),
        };
        let wjh = trap.and_then(|t| t.wjh);
        let lag = wjh.and_then(|w| w.egress_lag);
        let acl = trap.and_then(|t| t.acl);
        let occupancy = wjh.and_then(|w| w.occupancy);
        let latency = wjh.and_then(|w| w.latency);
        let record = JsonRecord {
            device_ip: &ctx.device_ip,
            ingress_port: s.ingress_port,
            description: s.description,
            severity: s.severity,
            drop_type: s.drop_type,
            drop_reason: &s.drop_reason,
            timestamp: Text(Seconds(rec.time_ns)),
            message: s.message,
            packet: JsonPacket {
                packet_type: crate::encode::packet_type(rec),
                ethernet,
                arp,
                ip,
                transport,
                icmp,
                length: p.len,
            },
            source: s.source,
            ingress_ifindex: rec.ingress.ifindex,
            egress_port: s.egress_port,
            egress_ifindex: rec.egress.map(|e| e.ifindex),
            egress_lag: lag.as_ref().map(|l| l.name.as_str()),
            egress_lag_ifindex: lag.map(|l| l.ifindex),
            netns_ino: rec.ingress.netns_ino,
            trap_name: trap.map(|t| t.trap_name.as_str()),
            trap_group: trap.map(|t| t.trap_group.as_str()),
            trap_type: trap.map(|_| s.trap_type),
            devlink_device: trap
                .filter(|_| s.devlink_device)
                .map(|t| Text(DevlinkHandle(t.bus_name.as_str(), t.device_name.as_str()))),
            flow_action_cookie: trap.and_then(|t| t.cookie.as_ref()).map(|c| Text(Hex(c.captured()))),
            flow_action_cookie_len: trap.and_then(|t| t.cookie).map(|c| c.len),
            acl_rule_value: acl.map(|a| a.value),
            acl_direction: acl.map(|a| a.direction.as_str()),
            traffic_class: wjh.and_then(|w| w.traffic_class),
            tc_occupancy_raw: occupancy.map(|o| o.raw),
            tc_occupancy_bytes: occupancy.and_then(|o| o.bytes()),
            latency_raw: latency.map(|l| l.raw),
            latency_ns: latency.and_then(|l| l.ns()),
            skb_drop_reason: drop_reason,
            count: rec.flow.map(|f| f.packets),
            bytes: rec.flow.map(|f| f.bytes),
            first_seen: rec.flow.map(|f| Text(Seconds(f.first_ns))),
            last_seen: rec.flow.map(|f| Text(Seconds(f.last_ns))),
            aggregation_overflow: rec.flow.filter(|f| f.kind == FlowKind::Overflow).map(|_| true),
            aggregation: rec.flow.map(|f| f.kind.as_str()),
        };
        // Writing into a Vec cannot fail, and every value here serialises.
        let _ = serde_json::to_writer(&mut *out, &record);
    }
}
