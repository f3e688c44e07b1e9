//! Human-readable texts for devlink packet traps.
//!
//! A trap event only carries the devlink trap name; the collector-facing
//! record also needs `dropReason`, `description` (a corrective action) and
//! `severity`, which the original trapstream took from NVIDIA's "What Just
//! Happened" (WJH) taxonomy. This module holds one entry per generic devlink
//! trap (plus the few driver-specific ones Spectrum and netdevsim report),
//! built from `tests/data/devlink-traps.tsv` and
//! `tests/data/wjh-reasons.tsv` (copies of the reference tables). Where a WJH reason maps to a trap its
//! texts are copied verbatim, because existing dashboards match on those
//! strings; the remaining traps carry texts written in the same style.

use std::collections::HashMap;
use std::sync::OnceLock;

/// devlink trap type (enum devlink_trap_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapType {
    Drop,
    Exception,
    Control,
}

impl TrapType {
    /// "drop" | "exception" | "control" (the devlink names).
    pub fn as_str(self) -> &'static str {
        match self {
            TrapType::Drop => "drop",
            TrapType::Exception => "exception",
            TrapType::Control => "control",
        }
    }
}

/// What the built-in table knows about one generic devlink trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapInfo {
    pub name: &'static str,
    pub trap_type: TrapType,
    /// the group mlxsw registers it in (from the TSV), e.g. "l3_exceptions";
    /// "" if none listed
    pub group: &'static str,
    /// WJH reason text where a WJH reason maps to this trap, otherwise a
    /// concise text of our own in the same style
    pub drop_reason: &'static str,
    /// WJH corrective action where one exists, otherwise our own short
    /// corrective action in the same style
    pub description: &'static str,
    /// one of "Critical", "Error", "Warning", "Notice", "Info" (WJH's where it exists)
    pub severity: &'static str,
}

/// The texts to put in a record (borrowed, no allocation per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taxon<'a> {
    pub drop_reason: &'a str,
    pub description: &'a str,
    pub severity: &'a str,
}

// The original printed "N/A" for traps it did not know, which told the
// operator nothing; pointing at devlink gives them a next step instead.
const UNKNOWN_TRAP_DESCRIPTION: &str = "Driver-specific trap: look it up with 'devlink trap show'";

/// Every generic devlink trap, one entry each, in the TSV's order.
///
/// The driver-specific traps the TSV lists (`irif_disabled`, `erif_disabled`,
/// `fid_miss`) are included too: Spectrum and netdevsim report them, and two of
/// them have WJH counterparts.
pub static TRAPS: &[TrapInfo] = &[
    TrapInfo {
        name: "source_mac_is_multicast",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Source MAC is multicast",
        description: "Bad packet was received from peer",
        severity: "Error",
    },
    TrapInfo {
        name: "vlan_tag_mismatch",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "VLAN tagging mismatch",
        description: "Validate the VLAN tag configuration on both ends of the link",
        severity: "Error",
    },
    TrapInfo {
        name: "ingress_vlan_filter",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Ingress VLAN filtering",
        description: "Validate the VLAN membership configuration on both ends of the link",
        severity: "Error",
    },
    TrapInfo {
        name: "ingress_spanning_tree_filter",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Ingress spanning tree filter",
        description: "Expected behavior",
        severity: "Notice",
    },
    // WJH 207 (Multicast egress port list is empty) also maps here from a
    // source; mlxsw folds both into this trap, so the lower id, 206, is kept.
    TrapInfo {
        name: "port_list_is_empty",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Unicast MAC table action discard",
        description: "Validate MAC table for this destination MAC",
        severity: "Error",
    },
    TrapInfo {
        name: "port_loopback_filter",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Port loopback filter",
        description: "Validate MAC table for this destination MAC",
        severity: "Error",
    },
    TrapInfo {
        name: "blackhole_route",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Blackhole route",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ttl_value_is_too_small",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "TTL value is too small",
        description: "Actual path is longer than the TTL",
        severity: "Warning",
    },
    // Mainline mlxsw does not register this trap (only netdevsim does, in
    // buffer_drops), so the group is left empty as the TSV says.
    TrapInfo {
        name: "tail_drop",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "Tail drop",
        description: "Monitor network congestion",
        severity: "Warning",
    },
    TrapInfo {
        name: "non_ip",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Non-IP packet",
        description: "Destination MAC is the router, packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "uc_dip_over_mc_dmac",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Unicast destination IP but multicast destination MAC",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "dip_is_loopback_address",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Destination IP is loopback address",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_is_mc",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Source IP is multicast",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_is_loopback_address",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Source IP is loopback address",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_header_corrupted",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Checksum or IPver or IPv4 IHL too short",
        description: "Bad cable or bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv4_sip_is_limited_bc",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "IPv4 source IP is limited broadcast",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv6_mc_dip_reserved_scope",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "IPv6 destination in multicast scope FFx0:/16",
        description: "Expected behavior - packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "ipv6_mc_dip_interface_local_scope",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "IPv6 destination in multicast scope FFx1:/16",
        description: "Expected behavior - packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "mtu_value_is_too_small",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "Packet size is larger than router interface MTU",
        description: "Validate the router interface MTU configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "unresolved_neigh",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        // The original trapstream printed this exact text (seed README); dashboards
        // built on it match the string, so it wins over WJH's "Unresolved neighbor/next hop".
        drop_reason: "Unresolved  neighbor /next-hop",
        description: "Validate ARP table for the neighbor/next hop",
        severity: "Warning",
    },
    // No WJH reason exists; the reason text is the one the original
    // trapstream printed, so dashboards keep matching. Its Error is lowered
    // to Warning because, as for the other l3_exceptions, the kernel handles
    // the packet in software.
    TrapInfo {
        name: "mc_reverse_path_forwarding",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "Multicast reverse-path forwarding (RPF) error",
        description: "Validate the multicast routing table and the RPF interface for this source",
        severity: "Warning",
    },
    // No WJH reason exists. The original reused WJH 301 ("Non-routable
    // packet", Error), which misdescribes a route configured to reject.
    TrapInfo {
        name: "reject_route",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "Reject route",
        description: "Validate the unreachable/prohibit routes for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ipv4_lpm_miss",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "IPv4 routing table (LPM) unicast miss",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ipv6_lpm_miss",
        trap_type: TrapType::Exception,
        group: "l3_exceptions",
        drop_reason: "IPv6 routing table (LPM) unicast miss",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "non_routable_packet",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Non-routable packet",
        description: "Expected behavior",
        severity: "Notice",
    },
    TrapInfo {
        name: "decap_error",
        trap_type: TrapType::Exception,
        group: "tunnel_drops",
        drop_reason: "Decapsulation error",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    TrapInfo {
        name: "overlay_smac_is_mc",
        trap_type: TrapType::Drop,
        group: "tunnel_drops",
        drop_reason: "Overlay switch - Source MAC is multicast",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    // WJH 602 (Ingress router ACL) also maps here, but only by inference:
    // the trap does not tell bind points apart, so source-backed 601 is kept.
    TrapInfo {
        name: "ingress_flow_action_drop",
        trap_type: TrapType::Drop,
        group: "acl_drops",
        drop_reason: "Ingress port ACL",
        description: "Validate ACL configuration",
        severity: "Notice",
    },
    // WJH 604 (Egress port ACL) also maps here; both are inferred because
    // the trap does not tell bind points apart, so the lower id, 603, is kept.
    TrapInfo {
        name: "egress_flow_action_drop",
        trap_type: TrapType::Drop,
        group: "acl_drops",
        drop_reason: "Egress router ACL",
        description: "Validate ACL configuration",
        severity: "Notice",
    },
    TrapInfo {
        name: "stp",
        trap_type: TrapType::Control,
        group: "stp",
        drop_reason: "STP BPDU",
        description: "No action needed; BPDUs go to the CPU for the spanning tree protocol",
        severity: "Info",
    },
    TrapInfo {
        name: "lacp",
        trap_type: TrapType::Control,
        group: "lacp",
        drop_reason: "LACP PDU",
        description: "No action needed; LACPDUs go to the CPU for link aggregation",
        severity: "Info",
    },
    TrapInfo {
        name: "lldp",
        trap_type: TrapType::Control,
        group: "lldp",
        drop_reason: "LLDP frame",
        description: "No action needed; LLDPDUs go to the CPU for the LLDP agent",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_query",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "IGMP query",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v1_report",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv1 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v2_report",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv2 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v3_report",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv3 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v2_leave",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv2 leave group",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_query",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "MLD query",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v1_report",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "MLDv1 listener report",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v2_report",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "MLDv2 listener report",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v1_done",
        trap_type: TrapType::Control,
        group: "mc_snooping",
        drop_reason: "MLDv1 listener done",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_dhcp",
        trap_type: TrapType::Control,
        group: "dhcp",
        drop_reason: "DHCPv4 packet",
        description: "No action needed; DHCP goes to the CPU for the DHCP relay or server",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dhcp",
        trap_type: TrapType::Control,
        group: "dhcp",
        drop_reason: "DHCPv6 packet",
        description: "No action needed; DHCP goes to the CPU for the DHCP relay or server",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_request",
        trap_type: TrapType::Control,
        group: "neigh_discovery",
        drop_reason: "ARP request",
        description: "No action needed; ARP goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_response",
        trap_type: TrapType::Control,
        group: "neigh_discovery",
        drop_reason: "ARP response",
        description: "No action needed; ARP goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_overlay",
        trap_type: TrapType::Control,
        group: "neigh_discovery",
        drop_reason: "Overlay ARP packet",
        description:
            "No action needed; ARP decapsulated from the overlay goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_neigh_solicit",
        trap_type: TrapType::Control,
        group: "neigh_discovery",
        drop_reason: "IPv6 neighbor solicitation",
        description: "No action needed; neighbor discovery goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_neigh_advert",
        trap_type: TrapType::Control,
        group: "neigh_discovery",
        drop_reason: "IPv6 neighbor advertisement",
        description: "No action needed; neighbor discovery goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_bfd",
        trap_type: TrapType::Control,
        group: "bfd",
        drop_reason: "IPv4 BFD packet",
        description: "No action needed; BFD goes to the CPU for the BFD daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_bfd",
        trap_type: TrapType::Control,
        group: "bfd",
        drop_reason: "IPv6 BFD packet",
        description: "No action needed; BFD goes to the CPU for the BFD daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_ospf",
        trap_type: TrapType::Control,
        group: "ospf",
        drop_reason: "IPv4 OSPF packet",
        description: "No action needed; OSPF goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_ospf",
        trap_type: TrapType::Control,
        group: "ospf",
        drop_reason: "IPv6 OSPF packet",
        description: "No action needed; OSPF goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_bgp",
        trap_type: TrapType::Control,
        group: "bgp",
        drop_reason: "IPv4 BGP packet",
        description: "No action needed; BGP goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_bgp",
        trap_type: TrapType::Control,
        group: "bgp",
        drop_reason: "IPv6 BGP packet",
        description: "No action needed; BGP goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_vrrp",
        trap_type: TrapType::Control,
        group: "vrrp",
        drop_reason: "IPv4 VRRP packet",
        description: "No action needed; VRRP goes to the CPU for the VRRP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_vrrp",
        trap_type: TrapType::Control,
        group: "vrrp",
        drop_reason: "IPv6 VRRP packet",
        description: "No action needed; VRRP goes to the CPU for the VRRP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_pim",
        trap_type: TrapType::Control,
        group: "pim",
        drop_reason: "IPv4 PIM packet",
        description: "No action needed; PIM goes to the CPU for the multicast routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_pim",
        trap_type: TrapType::Control,
        group: "pim",
        drop_reason: "IPv6 PIM packet",
        description: "No action needed; PIM goes to the CPU for the multicast routing daemon",
        severity: "Info",
    },
    // This is a control trap (the kernel forwards the packet and sends a
    // redirect), but WJH 325 is its counterpart, so its Warning is kept for
    // dashboards that match on it.
    TrapInfo {
        name: "uc_loopback",
        trap_type: TrapType::Control,
        group: "uc_loopback",
        drop_reason: "Router interface loopback",
        description: "Validate the interface configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "local_route",
        trap_type: TrapType::Control,
        group: "local_delivery",
        drop_reason: "Packet to a local address",
        description: "No action needed; packets for local routes are delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "external_route",
        trap_type: TrapType::Control,
        group: "external_delivery",
        drop_reason: "Route via an external interface",
        description:
            "No action needed; the CPU forwards packets whose route leaves through a non-ASIC interface",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_uc_dip_link_local_scope",
        trap_type: TrapType::Control,
        group: "local_delivery",
        drop_reason: "IPv6 link-local unicast destination",
        description: "No action needed; link-local unicast is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dip_all_nodes",
        trap_type: TrapType::Control,
        group: "ipv6",
        drop_reason: "IPv6 all-nodes multicast destination",
        description: "No action needed; ff02::1 traffic is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dip_all_routers",
        trap_type: TrapType::Control,
        group: "ipv6",
        drop_reason: "IPv6 all-routers multicast destination",
        description: "No action needed; ff02::2 traffic is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_solicit",
        trap_type: TrapType::Control,
        group: "ipv6",
        drop_reason: "IPv6 router solicitation",
        description: "No action needed; router discovery goes to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_advert",
        trap_type: TrapType::Control,
        group: "ipv6",
        drop_reason: "IPv6 router advertisement",
        description: "No action needed; router discovery goes to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_redirect",
        trap_type: TrapType::Control,
        group: "ipv6",
        drop_reason: "IPv6 redirect",
        description: "No action needed; redirects go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_router_alert",
        trap_type: TrapType::Control,
        group: "local_delivery",
        drop_reason: "IPv4 router alert option",
        description: "No action needed; router alert packets go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_alert",
        trap_type: TrapType::Control,
        group: "local_delivery",
        drop_reason: "IPv6 router alert option",
        description: "No action needed; router alert packets go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ptp_event",
        trap_type: TrapType::Control,
        group: "ptp_event",
        drop_reason: "PTP event message",
        description: "No action needed; PTP goes to the CPU for time stamping",
        severity: "Info",
    },
    TrapInfo {
        name: "ptp_general",
        trap_type: TrapType::Control,
        group: "ptp_general",
        drop_reason: "PTP general message",
        description: "No action needed; PTP goes to the CPU for the PTP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "flow_action_sample",
        trap_type: TrapType::Control,
        group: "acl_sample",
        drop_reason: "Sampled by tc action",
        description: "No action needed; a tc sample action copied this packet to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "flow_action_trap",
        trap_type: TrapType::Control,
        group: "acl_trap",
        drop_reason: "Trapped by tc action",
        description: "No action needed; a tc trap action sent this packet to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "early_drop",
        trap_type: TrapType::Drop,
        group: "buffer_drops",
        drop_reason: "WRED",
        description: "Monitor network congestion",
        severity: "Warning",
    },
    TrapInfo {
        name: "vxlan_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "VXLAN header parsing error",
        description: "Check the sender for malformed VXLAN headers",
        severity: "Error",
    },
    TrapInfo {
        name: "llc_snap_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "LLC/SNAP header parsing error",
        description: "Check the sender for malformed LLC/SNAP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "vlan_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "VLAN header parsing error",
        description: "Check the sender for malformed VLAN headers",
        severity: "Error",
    },
    TrapInfo {
        name: "pppoe_ppp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "PPPoE/PPP header parsing error",
        description: "Check the sender for malformed PPPoE/PPP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "mpls_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "MPLS header parsing error",
        description: "Check the sender for malformed MPLS headers",
        severity: "Error",
    },
    TrapInfo {
        name: "arp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "ARP header parsing error",
        description: "Check the sender for malformed ARP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_1_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "First IP header parsing error",
        description: "Check the sender for malformed IP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_n_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "Last IP header parsing error",
        description: "Check the sender for malformed IP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "gre_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "GRE header parsing error",
        description: "Check the sender for malformed GRE headers",
        severity: "Error",
    },
    TrapInfo {
        name: "udp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "UDP header parsing error",
        description: "Check the sender for malformed UDP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "tcp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "TCP header parsing error",
        description: "Check the sender for malformed TCP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ipsec_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "IPsec header parsing error",
        description: "Check the sender for malformed IPsec headers",
        severity: "Error",
    },
    TrapInfo {
        name: "sctp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "SCTP header parsing error",
        description: "Check the sender for malformed SCTP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "dccp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "DCCP header parsing error",
        description: "Check the sender for malformed DCCP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "gtp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "GTP header parsing error",
        description: "Check the sender for malformed GTP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "esp_parsing",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "ESP header parsing error",
        description: "Check the sender for malformed ESP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "blackhole_nexthop",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Blackhole ARP/neighbor",
        description: "Validate ARP table for the next hop",
        severity: "Warning",
    },
    // mlx5e reports this when the NIC's own MAC filter drops a frame, which
    // is normal outside promiscuous mode.
    TrapInfo {
        name: "dmac_filter",
        trap_type: TrapType::Drop,
        group: "",
        drop_reason: "Destination MAC filtered",
        description:
            "Validate the destination MAC: it is not the port's address and the port is not promiscuous",
        severity: "Notice",
    },
    TrapInfo {
        name: "eapol",
        trap_type: TrapType::Control,
        group: "eapol",
        drop_reason: "802.1X EAPOL frame",
        description: "No action needed; EAPOL goes to the CPU for the 802.1X authenticator",
        severity: "Info",
    },
    // No WJH reason exists; a locked port dropping an unauthenticated host
    // is 802.1X working as configured, hence Notice.
    TrapInfo {
        name: "locked_port",
        trap_type: TrapType::Drop,
        group: "l2_drops",
        drop_reason: "Locked port - source MAC not authorized",
        description: "Validate 802.1X authorization for this source MAC on the locked bridge port",
        severity: "Notice",
    },
    TrapInfo {
        name: "irif_disabled",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Ingress router interface is disabled",
        description: "Validate your configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "erif_disabled",
        trap_type: TrapType::Drop,
        group: "l3_drops",
        drop_reason: "Egress router interface is disabled",
        description: "Validate your configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "fid_miss",
        trap_type: TrapType::Exception,
        group: "",
        drop_reason: "No FID for port and VLAN",
        description: "Validate the VLAN membership configuration of the bridge port",
        severity: "Warning",
    },
];

/// Look a trap up by its exact devlink name.
pub fn lookup(trap_name: &str) -> Option<&'static TrapInfo> {
    // Built once on first use so TRAPS can stay in the TSV's order (easy to
    // diff against the reference) while per-event lookups stay O(1).
    static INDEX: OnceLock<HashMap<&'static str, &'static TrapInfo>> = OnceLock::new();
    INDEX.get_or_init(|| TRAPS.iter().map(|t| (t.name, t)).collect()).get(trap_name).copied()
}

/// The texts for a trap. Known traps: the table. Unknown traps (a driver-specific
/// trap name not in the table) still get a sensible record: drop_reason = the trap
/// name itself, description = a fixed generic text telling the operator to look the
/// trap up with `devlink trap show`, severity by type (Drop -> "Error",
/// Exception -> "Warning", Control -> "Info").
pub fn classify(trap_name: &str, trap_type: TrapType) -> Taxon<'_> {
    match lookup(trap_name) {
        Some(info) => {
            Taxon { drop_reason: info.drop_reason, description: info.description, severity: info.severity }
        }
        None => Taxon {
            drop_reason: trap_name,
            description: UNKNOWN_TRAP_DESCRIPTION,
            severity: match trap_type {
                TrapType::Drop => "Error",
                TrapType::Exception => "Warning",
                TrapType::Control => "Info",
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const DEVLINK_TRAPS_TSV: &str = include_str!("../tests/data/devlink-traps.tsv");
    const WJH_REASONS_TSV: &str = include_str!("../tests/data/wjh-reasons.tsv");

    const SEVERITIES: [&str; 5] = ["Critical", "Error", "Warning", "Notice", "Info"];

    // The TSVs annotate some cells, e.g. "irif_disabled (mlxsw-specific)" or
    // "buffer_drops (Spectrum-2+)"; the devlink name is the part before that.
    fn strip_note(cell: &str) -> &str {
        cell.split(" (").next().unwrap().trim()
    }

    fn rows(tsv: &str) -> impl Iterator<Item = Vec<&str>> {
        tsv.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| l.split('\t').collect())
    }

    fn parse_type(s: &str) -> TrapType {
        match s {
            "drop" => TrapType::Drop,
            "exception" => TrapType::Exception,
            "control" => TrapType::Control,
            other => panic!("unknown trap type {other:?} in devlink-traps.tsv"),
        }
    }

    fn tsv_trap_names() -> HashSet<&'static str> {
        rows(DEVLINK_TRAPS_TSV).map(|r| strip_note(r[0])).collect()
    }

    #[test]
    fn table_matches_devlink_traps_tsv() {
        let tsv: Vec<_> = rows(DEVLINK_TRAPS_TSV).collect();
        assert_eq!(TRAPS.len(), tsv.len(), "one entry per TSV row");
        for (info, row) in TRAPS.iter().zip(&tsv) {
            assert_eq!(row.len(), 5, "malformed row {row:?}");
            let name = strip_note(row[0]);
            let group = match strip_note(row[3]) {
                "-" => "",
                g => g,
            };
            assert_eq!(info.name, name, "TRAPS must follow the TSV's order");
            assert_eq!(info.trap_type, parse_type(row[1]), "type of {name}");
            assert_eq!(info.group, group, "group of {name}");
            assert_eq!(lookup(name), Some(info), "lookup({name})");
        }
    }

    #[test]
    fn wjh_texts_are_copied_verbatim() {
        let names = tsv_trap_names();
        // trap -> (comes from a source?, wjh id, row); the best candidate wins.
        let mut chosen: HashMap<&str, (bool, u32, Vec<&str>)> = HashMap::new();
        for row in rows(WJH_REASONS_TSV) {
            assert_eq!(row.len(), 9, "malformed row {row:?}");
            let Ok(id) = row[0].parse::<u32>() else {
                continue; // "-": a trap with no WJH reason
            };
            let trap = strip_note(row[5]);
            if !names.contains(trap) {
                continue;
            }
            let sourced = row[8].starts_with("source");
            let better = match chosen.get(trap) {
                None => true,
                Some(&(s, i, _)) => (sourced, std::cmp::Reverse(id)) > (s, std::cmp::Reverse(i)),
            };
            if better {
                chosen.insert(trap, (sourced, id, row));
            }
        }
        assert!(!chosen.is_empty());
        for (trap, (_, id, row)) in &chosen {
            let info = lookup(trap).unwrap_or_else(|| panic!("{trap} missing"));
            // The one text kept from the original tool instead of WJH's (see the table).
            let expected_reason =
                if *trap == "unresolved_neigh" { "Unresolved  neighbor /next-hop" } else { row[2] };
            assert_eq!(info.drop_reason, expected_reason, "{trap}: reason of WJH {id}");
            assert_eq!(info.severity, row[3], "{trap}: severity of WJH {id}");
            assert_eq!(info.description, row[4], "{trap}: action of WJH {id}");
        }
    }

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for t in TRAPS {
            assert!(seen.insert(t.name), "duplicate entry {}", t.name);
        }
    }

    #[test]
    fn texts_are_present_and_severities_valid() {
        for t in TRAPS {
            assert!(SEVERITIES.contains(&t.severity), "{}: {}", t.name, t.severity);
            assert!(!t.drop_reason.is_empty(), "{}: empty drop_reason", t.name);
            assert!(!t.description.is_empty(), "{}: empty description", t.name);
        }
    }

    #[test]
    fn known_trap_uses_table() {
        let t = classify("ttl_value_is_too_small", TrapType::Drop);
        assert_eq!(t.drop_reason, "TTL value is too small");
        assert_eq!(t.description, "Actual path is longer than the TTL");
        assert_eq!(t.severity, "Warning");
    }

    #[test]
    fn unknown_trap_falls_back() {
        for (ty, severity) in
            [(TrapType::Drop, "Error"), (TrapType::Exception, "Warning"), (TrapType::Control, "Info")]
        {
            let t = classify("some_asic_specific_trap", ty);
            assert_eq!(t.drop_reason, "some_asic_specific_trap");
            assert_eq!(t.description, UNKNOWN_TRAP_DESCRIPTION);
            assert!(t.description.contains("devlink trap show"));
            assert_eq!(t.severity, severity);
        }
        assert_eq!(lookup("some_asic_specific_trap"), None);
        // Lookup is exact: the TSV's annotated spelling is not a devlink name.
        assert_eq!(lookup("irif_disabled (mlxsw-specific)"), None);
        assert_eq!(lookup("TTL_VALUE_IS_TOO_SMALL"), None);
    }

    #[test]
    fn ttl_value_is_too_small_is_an_l3_exception() {
        let t = lookup("ttl_value_is_too_small").expect("in table");
        assert_eq!(t.trap_type, TrapType::Exception);
        assert_eq!(t.group, "l3_exceptions");
    }

    #[test]
    fn trap_type_names_match_devlink() {
        assert_eq!(TrapType::Drop.as_str(), "drop");
        assert_eq!(TrapType::Exception.as_str(), "exception");
        assert_eq!(TrapType::Control.as_str(), "control");
    }
}
