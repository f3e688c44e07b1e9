//! The dissected packet: what the BPF dissector decoded (`struct ts_packet`)
//! as owned layers, each present only when it was wholly captured.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::abi;

// Layer and fragment bits, mirrored from include/trapstream.h.
pub(super) const TS_L_ETH: u32 = 1 << 0;
pub(super) const TS_L_VLAN1: u32 = 1 << 1;
pub(super) const TS_L_VLAN2: u32 = 1 << 2;
pub(super) const TS_L_ARP: u32 = 1 << 3;
pub(super) const TS_L_IPV4: u32 = 1 << 4;
pub(super) const TS_L_IPV6: u32 = 1 << 5;
pub(super) const TS_L_TCP: u32 = 1 << 6;
pub(super) const TS_L_UDP: u32 = 1 << 7;
pub(super) const TS_L_ICMP: u32 = 1 << 8;
pub(super) const TS_L_ICMP6: u32 = 1 << 9;
pub(super) const TS_L_FRAG: u32 = 1 << 10;
#[cfg(test)]
pub(super) const TS_L_NO_MAC: u32 = 1 << 11;
pub(super) const TS_L_WALK_LIMIT: u32 = 1 << 12;
pub(super) const TS_FRAG_MF: u8 = 1;
pub(super) const TS_FRAG_DF: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    /// Length from the Ethernet header, or from the network header when the
    /// packet has none (L3 devices: tun, WireGuard, ipip, sit, GRE in IP mode).
    pub len: u32,
    /// Bytes the dissector could read.
    pub captured: u16,
    /// None when the packet has no Ethernet header (TS_L_NO_MAC).
    pub ethernet: Option<Ethernet>,
    /// Tags of the Ethernet header (never without one).
    pub vlans: [Option<Vlan>; 2],
    /// EtherType after the VLAN tags (skb->protocol when there is no Ethernet header).
    pub ether_type: u16,
    pub network: Network,
    pub transport: Transport,
    /// More VLAN tags or IPv6 extension headers than the dissector walks.
    pub walk_limited: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    pub src: Mac,
    pub dst: Mac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vlan {
    pub tpid: u16,
    pub vid: u16,
    pub pcp: u8,
    pub dei: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    #[default]
    None,
    Arp(Arp),
    Ip(Ip),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub operation: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// IPv4 total length, IPv6 payload length.
    pub length: u16,
    /// IPv4 TOS byte or IPv6 traffic class: DSCP << 2 | ECN.
    pub tos: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification, or the low 16 bits of an IPv6 fragment id
    /// (None for IPv6 without a fragment header).
    pub id: Option<u16>,
    pub fragment: Option<Fragment>,
    pub dont_fragment: bool,
    /// IPv6 only.
    pub flow_label: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// In bytes.
    pub offset: u32,
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    None,
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        length: u16,
    },
    Icmp {
        kind: u8,
        code: u8,
    },
    Icmpv6 {
        kind: u8,
        code: u8,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(super) fn decode_packet(p: &abi::ts_packet) -> Packet {
    let layers = p.layers;
    let has = |bit: u32| layers & bit != 0;
    let vlan = |i: usize| Vlan {
        tpid: p.vlan_tpid[i],
        vid: p.vlan_tci[i] & 0x0fff,
        pcp: (p.vlan_tci[i] >> 13) as u8,
        dei: p.vlan_tci[i] & 0x1000 != 0,
    };
    let eth = has(TS_L_ETH);
    let network = if has(TS_L_IPV4) || has(TS_L_IPV6) {
        let v4 = has(TS_L_IPV4);
        let (src, dst) = if v4 {
            (ipv4(&p.ip_src), ipv4(&p.ip_dst))
        } else {
            (IpAddr::V6(Ipv6Addr::from(p.ip_src)), IpAddr::V6(Ipv6Addr::from(p.ip_dst)))
        };
        let more = p.frag_flags & TS_FRAG_MF != 0;
        Network::Ip(Ip {
            src,
            dst,
            protocol: p.ip_proto,
            length: p.ip_len,
            tos: p.tos,
            ttl: p.ttl,
            id: (v4 || has(TS_L_FRAG)).then_some(p.ip_id),
            fragment: has(TS_L_FRAG).then_some(Fragment { offset: u32::from(p.frag_off) * 8, more }),
            dont_fragment: v4 && p.frag_flags & TS_FRAG_DF != 0,
            flow_label: (!v4).then_some(p.flow_label),
        })
    } else if has(TS_L_ARP) {
        Network::Arp(Arp {
            operation: p.arp_op,
            sender_mac: Mac(p.arp_sha),
            sender_ip: Ipv4Addr::from(p.arp_spa),
            target_mac: Mac(p.arp_tha),
            target_ip: Ipv4Addr::from(p.arp_tpa),
        })
    } else {
        Network::None
    };
    let transport = if has(TS_L_TCP) {
        Transport::Tcp { src_port: p.sport, dst_port: p.dport, flags: p.tcp_flags }
    } else if has(TS_L_UDP) {
        Transport::Udp { src_port: p.sport, dst_port: p.dport, length: p.udp_len }
    } else if has(TS_L_ICMP) {
        Transport::Icmp { kind: p.icmp_type, code: p.icmp_code }
    } else if has(TS_L_ICMP6) {
        Transport::Icmpv6 { kind: p.icmp_type, code: p.icmp_code }
    } else {
        Transport::None
    };
    Packet {
        len: p.pkt_len,
        captured: p.cap_len,
        ethernet: eth.then_some(Ethernet { src: Mac(p.src_mac), dst: Mac(p.dst_mac) }),
        // A tag is part of an Ethernet header: none is reported without one.
        vlans: [(eth && has(TS_L_VLAN1)).then(|| vlan(0)), (eth && has(TS_L_VLAN2)).then(|| vlan(1))],
        ether_type: p.eth_proto,
        network,
        transport,
        walk_limited: has(TS_L_WALK_LIMIT),
    }
}

fn ipv4(bytes: &[u8; 16]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
}
