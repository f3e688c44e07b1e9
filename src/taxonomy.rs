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
//!
//! NVIDIA's Switch SDK (SONiC, Cumulus-class hosts) reports through the same
//! tracepoint with names of its own: those not shared with devlink are in
//! [`SDK_TRAPS`] (from `tests/data/sdk-traps.tsv`). The SDK always says "drop",
//! so for its reports the type is the table's ([`Kind`]), which adds
//! `Threshold` for its buffer threshold events.

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

/// What a trap really is, as the table knows it: the three devlink types,
/// plus `Threshold` for the vendor SDK's buffer notifications (a traffic class
/// crossed a congestion or latency threshold; the packet was not dropped).
/// Separate from [`TrapType`], which is what the kernel reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Drop,
    Exception,
    Control,
    Threshold,
}

impl Kind {
    /// "drop" | "exception" | "control" | "threshold".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Drop => "drop",
            Kind::Exception => "exception",
            Kind::Control => "control",
            Kind::Threshold => "threshold",
        }
    }
}

impl From<TrapType> for Kind {
    fn from(t: TrapType) -> Kind {
        match t {
            TrapType::Drop => Kind::Drop,
            TrapType::Exception => Kind::Exception,
            TrapType::Control => Kind::Control,
        }
    }
}

/// What the built-in table knows about one trap (generic devlink or vendor SDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapInfo {
    pub name: &'static str,
    pub trap_type: Kind,
    /// the group mlxsw registers it in (from the TSV), e.g. "l3_exceptions";
    /// for SDK-only traps the SDK's group ("l2", "router", ...); "" if none listed
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
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Source MAC is multicast",
        description: "Bad packet was received from peer",
        severity: "Error",
    },
    TrapInfo {
        name: "vlan_tag_mismatch",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "VLAN tagging mismatch",
        description: "Validate the VLAN tag configuration on both ends of the link",
        severity: "Error",
    },
    TrapInfo {
        name: "ingress_vlan_filter",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Ingress VLAN filtering",
        description: "Validate the VLAN membership configuration on both ends of the link",
        severity: "Error",
    },
    TrapInfo {
        name: "ingress_spanning_tree_filter",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Ingress spanning tree filter",
        description: "Expected behavior",
        severity: "Notice",
    },
    // WJH 207 (Multicast egress port list is empty) also maps here from a
    // source; mlxsw folds both into this trap, so the lower id, 206, is kept.
    TrapInfo {
        name: "port_list_is_empty",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Unicast MAC table action discard",
        description: "Validate MAC table for this destination MAC",
        severity: "Error",
    },
    TrapInfo {
        name: "port_loopback_filter",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Port loopback filter",
        description: "Validate MAC table for this destination MAC",
        severity: "Error",
    },
    TrapInfo {
        name: "blackhole_route",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Blackhole route",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ttl_value_is_too_small",
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "TTL value is too small",
        description: "Actual path is longer than the TTL",
        severity: "Warning",
    },
    // Mainline mlxsw does not register this trap (only netdevsim does, in
    // buffer_drops), so the group is left empty as the TSV says.
    TrapInfo {
        name: "tail_drop",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "Tail drop",
        description: "Monitor network congestion",
        severity: "Warning",
    },
    TrapInfo {
        name: "non_ip",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Non-IP packet",
        description: "Destination MAC is the router, packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "uc_dip_over_mc_dmac",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Unicast destination IP but multicast destination MAC",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "dip_is_loopback_address",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Destination IP is loopback address",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_is_mc",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Source IP is multicast",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_is_loopback_address",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Source IP is loopback address",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_header_corrupted",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Checksum or IPver or IPv4 IHL too short",
        description: "Bad cable or bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv4_sip_is_limited_bc",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "IPv4 source IP is limited broadcast",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv6_mc_dip_reserved_scope",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "IPv6 destination in multicast scope FFx0:/16",
        description: "Expected behavior - packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "ipv6_mc_dip_interface_local_scope",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "IPv6 destination in multicast scope FFx1:/16",
        description: "Expected behavior - packet is not routable",
        severity: "Notice",
    },
    TrapInfo {
        name: "mtu_value_is_too_small",
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "Packet size is larger than router interface MTU",
        description: "Validate the router interface MTU configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "unresolved_neigh",
        trap_type: Kind::Exception,
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
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "Multicast reverse-path forwarding (RPF) error",
        description: "Validate the multicast routing table and the RPF interface for this source",
        severity: "Warning",
    },
    // No WJH reason exists. The original reused WJH 301 ("Non-routable
    // packet", Error), which misdescribes a route configured to reject.
    TrapInfo {
        name: "reject_route",
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "Reject route",
        description: "Validate the unreachable/prohibit routes for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ipv4_lpm_miss",
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "IPv4 routing table (LPM) unicast miss",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "ipv6_lpm_miss",
        trap_type: Kind::Exception,
        group: "l3_exceptions",
        drop_reason: "IPv6 routing table (LPM) unicast miss",
        description: "Validate routing table for this destination IP",
        severity: "Warning",
    },
    TrapInfo {
        name: "non_routable_packet",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Non-routable packet",
        description: "Expected behavior",
        severity: "Notice",
    },
    TrapInfo {
        name: "decap_error",
        trap_type: Kind::Exception,
        group: "tunnel_drops",
        drop_reason: "Decapsulation error",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    TrapInfo {
        name: "overlay_smac_is_mc",
        trap_type: Kind::Drop,
        group: "tunnel_drops",
        drop_reason: "Overlay switch - Source MAC is multicast",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    // WJH 602 (Ingress router ACL) also maps here, but only by inference:
    // the trap does not tell bind points apart, so source-backed 601 is kept.
    TrapInfo {
        name: "ingress_flow_action_drop",
        trap_type: Kind::Drop,
        group: "acl_drops",
        drop_reason: "Ingress port ACL",
        description: "Validate ACL configuration",
        severity: "Notice",
    },
    // WJH 604 (Egress port ACL) also maps here; both are inferred because
    // the trap does not tell bind points apart, so the lower id, 603, is kept.
    TrapInfo {
        name: "egress_flow_action_drop",
        trap_type: Kind::Drop,
        group: "acl_drops",
        drop_reason: "Egress router ACL",
        description: "Validate ACL configuration",
        severity: "Notice",
    },
    TrapInfo {
        name: "stp",
        trap_type: Kind::Control,
        group: "stp",
        drop_reason: "STP BPDU",
        description: "No action needed; BPDUs go to the CPU for the spanning tree protocol",
        severity: "Info",
    },
    TrapInfo {
        name: "lacp",
        trap_type: Kind::Control,
        group: "lacp",
        drop_reason: "LACP PDU",
        description: "No action needed; LACPDUs go to the CPU for link aggregation",
        severity: "Info",
    },
    TrapInfo {
        name: "lldp",
        trap_type: Kind::Control,
        group: "lldp",
        drop_reason: "LLDP frame",
        description: "No action needed; LLDPDUs go to the CPU for the LLDP agent",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_query",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "IGMP query",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v1_report",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv1 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v2_report",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv2 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v3_report",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv3 membership report",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "igmp_v2_leave",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "IGMPv2 leave group",
        description: "No action needed; IGMP goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_query",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "MLD query",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v1_report",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "MLDv1 listener report",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v2_report",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "MLDv2 listener report",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "mld_v1_done",
        trap_type: Kind::Control,
        group: "mc_snooping",
        drop_reason: "MLDv1 listener done",
        description: "No action needed; MLD goes to the CPU for multicast snooping",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_dhcp",
        trap_type: Kind::Control,
        group: "dhcp",
        drop_reason: "DHCPv4 packet",
        description: "No action needed; DHCP goes to the CPU for the DHCP relay or server",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dhcp",
        trap_type: Kind::Control,
        group: "dhcp",
        drop_reason: "DHCPv6 packet",
        description: "No action needed; DHCP goes to the CPU for the DHCP relay or server",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_request",
        trap_type: Kind::Control,
        group: "neigh_discovery",
        drop_reason: "ARP request",
        description: "No action needed; ARP goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_response",
        trap_type: Kind::Control,
        group: "neigh_discovery",
        drop_reason: "ARP response",
        description: "No action needed; ARP goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "arp_overlay",
        trap_type: Kind::Control,
        group: "neigh_discovery",
        drop_reason: "Overlay ARP packet",
        description:
            "No action needed; ARP decapsulated from the overlay goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_neigh_solicit",
        trap_type: Kind::Control,
        group: "neigh_discovery",
        drop_reason: "IPv6 neighbor solicitation",
        description: "No action needed; neighbor discovery goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_neigh_advert",
        trap_type: Kind::Control,
        group: "neigh_discovery",
        drop_reason: "IPv6 neighbor advertisement",
        description: "No action needed; neighbor discovery goes to the CPU for neighbor resolution",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_bfd",
        trap_type: Kind::Control,
        group: "bfd",
        drop_reason: "IPv4 BFD packet",
        description: "No action needed; BFD goes to the CPU for the BFD daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_bfd",
        trap_type: Kind::Control,
        group: "bfd",
        drop_reason: "IPv6 BFD packet",
        description: "No action needed; BFD goes to the CPU for the BFD daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_ospf",
        trap_type: Kind::Control,
        group: "ospf",
        drop_reason: "IPv4 OSPF packet",
        description: "No action needed; OSPF goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_ospf",
        trap_type: Kind::Control,
        group: "ospf",
        drop_reason: "IPv6 OSPF packet",
        description: "No action needed; OSPF goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_bgp",
        trap_type: Kind::Control,
        group: "bgp",
        drop_reason: "IPv4 BGP packet",
        description: "No action needed; BGP goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_bgp",
        trap_type: Kind::Control,
        group: "bgp",
        drop_reason: "IPv6 BGP packet",
        description: "No action needed; BGP goes to the CPU for the routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_vrrp",
        trap_type: Kind::Control,
        group: "vrrp",
        drop_reason: "IPv4 VRRP packet",
        description: "No action needed; VRRP goes to the CPU for the VRRP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_vrrp",
        trap_type: Kind::Control,
        group: "vrrp",
        drop_reason: "IPv6 VRRP packet",
        description: "No action needed; VRRP goes to the CPU for the VRRP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_pim",
        trap_type: Kind::Control,
        group: "pim",
        drop_reason: "IPv4 PIM packet",
        description: "No action needed; PIM goes to the CPU for the multicast routing daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_pim",
        trap_type: Kind::Control,
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
        trap_type: Kind::Control,
        group: "uc_loopback",
        drop_reason: "Router interface loopback",
        description: "Validate the interface configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "local_route",
        trap_type: Kind::Control,
        group: "local_delivery",
        drop_reason: "Packet to a local address",
        description: "No action needed; packets for local routes are delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "external_route",
        trap_type: Kind::Control,
        group: "external_delivery",
        drop_reason: "Route via an external interface",
        description:
            "No action needed; the CPU forwards packets whose route leaves through a non-ASIC interface",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_uc_dip_link_local_scope",
        trap_type: Kind::Control,
        group: "local_delivery",
        drop_reason: "IPv6 link-local unicast destination",
        description: "No action needed; link-local unicast is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dip_all_nodes",
        trap_type: Kind::Control,
        group: "ipv6",
        drop_reason: "IPv6 all-nodes multicast destination",
        description: "No action needed; ff02::1 traffic is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_dip_all_routers",
        trap_type: Kind::Control,
        group: "ipv6",
        drop_reason: "IPv6 all-routers multicast destination",
        description: "No action needed; ff02::2 traffic is delivered to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_solicit",
        trap_type: Kind::Control,
        group: "ipv6",
        drop_reason: "IPv6 router solicitation",
        description: "No action needed; router discovery goes to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_advert",
        trap_type: Kind::Control,
        group: "ipv6",
        drop_reason: "IPv6 router advertisement",
        description: "No action needed; router discovery goes to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_redirect",
        trap_type: Kind::Control,
        group: "ipv6",
        drop_reason: "IPv6 redirect",
        description: "No action needed; redirects go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv4_router_alert",
        trap_type: Kind::Control,
        group: "local_delivery",
        drop_reason: "IPv4 router alert option",
        description: "No action needed; router alert packets go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ipv6_router_alert",
        trap_type: Kind::Control,
        group: "local_delivery",
        drop_reason: "IPv6 router alert option",
        description: "No action needed; router alert packets go to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "ptp_event",
        trap_type: Kind::Control,
        group: "ptp_event",
        drop_reason: "PTP event message",
        description: "No action needed; PTP goes to the CPU for time stamping",
        severity: "Info",
    },
    TrapInfo {
        name: "ptp_general",
        trap_type: Kind::Control,
        group: "ptp_general",
        drop_reason: "PTP general message",
        description: "No action needed; PTP goes to the CPU for the PTP daemon",
        severity: "Info",
    },
    TrapInfo {
        name: "flow_action_sample",
        trap_type: Kind::Control,
        group: "acl_sample",
        drop_reason: "Sampled by tc action",
        description: "No action needed; a tc sample action copied this packet to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "flow_action_trap",
        trap_type: Kind::Control,
        group: "acl_trap",
        drop_reason: "Trapped by tc action",
        description: "No action needed; a tc trap action sent this packet to the CPU",
        severity: "Info",
    },
    TrapInfo {
        name: "early_drop",
        trap_type: Kind::Drop,
        group: "buffer_drops",
        drop_reason: "WRED",
        description: "Monitor network congestion",
        severity: "Warning",
    },
    TrapInfo {
        name: "vxlan_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "VXLAN header parsing error",
        description: "Check the sender for malformed VXLAN headers",
        severity: "Error",
    },
    TrapInfo {
        name: "llc_snap_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "LLC/SNAP header parsing error",
        description: "Check the sender for malformed LLC/SNAP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "vlan_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "VLAN header parsing error",
        description: "Check the sender for malformed VLAN headers",
        severity: "Error",
    },
    TrapInfo {
        name: "pppoe_ppp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "PPPoE/PPP header parsing error",
        description: "Check the sender for malformed PPPoE/PPP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "mpls_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "MPLS header parsing error",
        description: "Check the sender for malformed MPLS headers",
        severity: "Error",
    },
    TrapInfo {
        name: "arp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "ARP header parsing error",
        description: "Check the sender for malformed ARP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_1_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "First IP header parsing error",
        description: "Check the sender for malformed IP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ip_n_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "Last IP header parsing error",
        description: "Check the sender for malformed IP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "gre_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "GRE header parsing error",
        description: "Check the sender for malformed GRE headers",
        severity: "Error",
    },
    TrapInfo {
        name: "udp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "UDP header parsing error",
        description: "Check the sender for malformed UDP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "tcp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "TCP header parsing error",
        description: "Check the sender for malformed TCP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "ipsec_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "IPsec header parsing error",
        description: "Check the sender for malformed IPsec headers",
        severity: "Error",
    },
    TrapInfo {
        name: "sctp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "SCTP header parsing error",
        description: "Check the sender for malformed SCTP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "dccp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "DCCP header parsing error",
        description: "Check the sender for malformed DCCP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "gtp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "GTP header parsing error",
        description: "Check the sender for malformed GTP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "esp_parsing",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "ESP header parsing error",
        description: "Check the sender for malformed ESP headers",
        severity: "Error",
    },
    TrapInfo {
        name: "blackhole_nexthop",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Blackhole ARP/neighbor",
        description: "Validate ARP table for the next hop",
        severity: "Warning",
    },
    // mlx5e reports this when the NIC's own MAC filter drops a frame, which
    // is normal outside promiscuous mode.
    TrapInfo {
        name: "dmac_filter",
        trap_type: Kind::Drop,
        group: "",
        drop_reason: "Destination MAC filtered",
        description:
            "Validate the destination MAC: it is not the port's address and the port is not promiscuous",
        severity: "Notice",
    },
    TrapInfo {
        name: "eapol",
        trap_type: Kind::Control,
        group: "eapol",
        drop_reason: "802.1X EAPOL frame",
        description: "No action needed; EAPOL goes to the CPU for the 802.1X authenticator",
        severity: "Info",
    },
    // No WJH reason exists; a locked port dropping an unauthenticated host
    // is 802.1X working as configured, hence Notice.
    TrapInfo {
        name: "locked_port",
        trap_type: Kind::Drop,
        group: "l2_drops",
        drop_reason: "Locked port - source MAC not authorized",
        description: "Validate 802.1X authorization for this source MAC on the locked bridge port",
        severity: "Notice",
    },
    TrapInfo {
        name: "irif_disabled",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Ingress router interface is disabled",
        description: "Validate your configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "erif_disabled",
        trap_type: Kind::Drop,
        group: "l3_drops",
        drop_reason: "Egress router interface is disabled",
        description: "Validate your configuration",
        severity: "Warning",
    },
    TrapInfo {
        name: "fid_miss",
        trap_type: Kind::Exception,
        group: "",
        drop_reason: "No FID for port and VLAN",
        description: "Validate the VLAN membership configuration of the bridge port",
        severity: "Warning",
    },
];

/// The vendor SDK's own bus name for the dummy devlink instance it reports
/// traps through (NVIDIA Spectrum Switch SDK, sx_netdev: `devlink_dummy`).
pub const SDK_DEVLINK_BUS: &str = "devlink_dummy";

/// The five trap groups the vendor SDK reports (none is a devlink group name).
pub const SDK_GROUPS: [&str; 5] = ["l2", "router", "tunnel", "acl", "buffer"];

// An SDK trap name this table does not know: `devlink trap show` lists nothing
// on that path (the SDK registers no traps with devlink), so point elsewhere.
const UNKNOWN_SDK_TRAP_DESCRIPTION: &str =
    "Vendor SDK trap: look the name up in the switch vendor's What Just Happened documentation";

/// The traps NVIDIA's Spectrum Switch SDK reports (SONiC, Cumulus-class
/// hosts) whose names are not generic devlink traps, in the order of
/// `tests/data/sdk-traps.tsv`. Names the SDK shares with devlink (e.g.
/// `unresolved_neigh`) have their one entry in [`TRAPS`]. The SDK always
/// reports `trap_type` 0 (drop), so `trap_type` here is what decides.
pub static SDK_TRAPS: &[TrapInfo] = &[
    TrapInfo {
        name: "port_isolation_filter",
        trap_type: Kind::Drop,
        group: "l2",
        drop_reason: "MLAG port isolation",
        description: "Expected behavior",
        severity: "Notice",
    },
    TrapInfo {
        name: "dmac_is_reserved",
        trap_type: Kind::Drop,
        group: "l2",
        drop_reason: "Destination MAC is reserved (DMAC=01-80-C2-00-00-0x)",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    // On the SDK path the unicast FDB discard has a name of its own, so WJH 206
    // fits exactly (devlink folds it into port_list_is_empty).
    TrapInfo {
        name: "uc_fdb_filter",
        trap_type: Kind::Drop,
        group: "l2",
        drop_reason: "Unicast MAC table action discard",
        description: "Validate MAC table for this destination MAC",
        severity: "Error",
    },
    TrapInfo {
        name: "smac_equals_dmac",
        trap_type: Kind::Drop,
        group: "l2",
        drop_reason: "Source MAC equals destination MAC",
        description: "Bad packet was received from peer",
        severity: "Error",
    },
    // No WJH reason exists (newer SDKs); texts in the style of WJH 209/210.
    TrapInfo {
        name: "smac_is_zero",
        trap_type: Kind::Drop,
        group: "l2",
        drop_reason: "Source MAC is zero",
        description: "Bad packet was received from peer",
        severity: "Error",
    },
    TrapInfo {
        name: "blackhole_neigh",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Blackhole ARP/neighbor",
        description: "Validate ARP table for the next hop",
        severity: "Warning",
    },
    TrapInfo {
        name: "sip_is_in_class_e",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Source IP is in class E",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_is_unspecified",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Source IP is unspecified",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "mc_dmac_mismatch",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Multicast MAC mismatch",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "sip_equals_dip",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Source IP equals destination IP",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv4_dip_is_local_network",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "IPv4 destination IP is local network (destination=0.0.0.0/8)",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    TrapInfo {
        name: "ipv4_dip_is_link_local",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "IPv4 destination IP is link local (destination in 169.254.0.0/16)",
        description: "Bad packet was received from the peer",
        severity: "Error",
    },
    // No WJH reason exists (newer SDKs). A uRPF failure is either spoofing or
    // asymmetric routing the uRPF mode does not allow, hence Warning.
    TrapInfo {
        name: "packet_source_IP_can't_be_verified",
        trap_type: Kind::Drop,
        group: "router",
        drop_reason: "Unicast reverse-path forwarding (uRPF) check failed",
        description: "Validate the route back to this source IP and the uRPF mode of the ingress router interface",
        severity: "Warning",
    },
    TrapInfo {
        name: "overlay_smac_equals_dmac",
        trap_type: Kind::Drop,
        group: "tunnel",
        drop_reason: "Overlay switch - Source MAC equals destination MAC",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    // No WJH reason exists (newer SDKs); texts in the style of WJH 402/403.
    TrapInfo {
        name: "overlay_smac_is_zero",
        trap_type: Kind::Drop,
        group: "tunnel",
        drop_reason: "Overlay switch - Source MAC is zero",
        description: "The peer sent a bad packet",
        severity: "Error",
    },
    // No WJH reason exists (newer SDKs); isolation working as configured,
    // hence Notice like WJH 201.
    TrapInfo {
        name: "encap_port_isolation",
        trap_type: Kind::Drop,
        group: "tunnel",
        drop_reason: "Encapsulation port isolation",
        description: "Expected behavior; validate the port isolation configuration if this traffic should enter the tunnel",
        severity: "Notice",
    },
    // No WJH reason names the multipoint bind point (newer SDKs); the action
    // is the one every WJH ACL reason gives.
    TrapInfo {
        name: "flow_action_drop",
        trap_type: Kind::Drop,
        group: "acl",
        drop_reason: "Multipoint ACL",
        description: "Validate ACL configuration",
        severity: "Notice",
    },
    // Threshold events: the packet was mirrored to the CPU because its traffic
    // class crossed a configured threshold; it was not dropped.
    TrapInfo {
        name: "congestion_thresh_crossed",
        trap_type: Kind::Threshold,
        group: "buffer",
        drop_reason: "Port TC congestion threshold crossed",
        description: "Monitor network congestion",
        severity: "Notice",
    },
    TrapInfo {
        name: "latency_thresh_crossed",
        trap_type: Kind::Threshold,
        group: "buffer",
        drop_reason: "Packet latency threshold crossed",
        description: "Monitor network congestion",
        severity: "Notice",
    },
];

/// Look a trap up by its exact name (devlink or vendor SDK).
pub fn lookup(trap_name: &str) -> Option<&'static TrapInfo> {
    // Built once on first use so TRAPS can stay in the TSV's order (easy to
    // diff against the reference) while per-event lookups stay O(1).
    static INDEX: OnceLock<HashMap<&'static str, &'static TrapInfo>> = OnceLock::new();
    INDEX.get_or_init(|| TRAPS.iter().chain(SDK_TRAPS).map(|t| (t.name, t)).collect()).get(trap_name).copied()
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

/// The type and texts for a report from the vendor SDK, whose kernel
/// `trap_type` is always 0 (drop) and so says nothing: a known name gets the
/// table's type; an unknown one is taken as the drop the kernel said, with its
/// name as the reason and a pointer to the vendor's documentation (not to
/// `devlink trap show`, which lists nothing on that path).
pub fn classify_sdk(trap_name: &str) -> (Kind, Taxon<'_>) {
    match lookup(trap_name) {
        Some(info) => (
            info.trap_type,
            Taxon { drop_reason: info.drop_reason, description: info.description, severity: info.severity },
        ),
        None => (
            Kind::Drop,
            Taxon { drop_reason: trap_name, description: UNKNOWN_SDK_TRAP_DESCRIPTION, severity: "Error" },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const DEVLINK_TRAPS_TSV: &str = include_str!("../tests/data/devlink-traps.tsv");
    const WJH_REASONS_TSV: &str = include_str!("../tests/data/wjh-reasons.tsv");
    const SDK_TRAPS_TSV: &str = include_str!("../tests/data/sdk-traps.tsv");

    const SEVERITIES: [&str; 5] = ["Critical", "Error", "Warning", "Notice", "Info"];

    // The TSVs annotate some cells, e.g. "irif_disabled (mlxsw-specific)" or
    // "buffer_drops (Spectrum-2+)"; the devlink name is the part before that.
    fn strip_note(cell: &str) -> &str {
        cell.split(" (").next().unwrap().trim()
    }

    fn rows(tsv: &str) -> impl Iterator<Item = Vec<&str>> {
        tsv.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| l.split('\t').collect())
    }

    fn parse_type(s: &str) -> Kind {
        match s {
            "drop" => Kind::Drop,
            "exception" => Kind::Exception,
            "control" => Kind::Control,
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
        for t in TRAPS.iter().chain(SDK_TRAPS) {
            assert!(seen.insert(t.name), "duplicate entry {}", t.name);
        }
    }

    #[test]
    fn texts_are_present_and_severities_valid() {
        for t in TRAPS.iter().chain(SDK_TRAPS) {
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
        assert_eq!(t.trap_type, Kind::Exception);
        assert_eq!(t.group, "l3_exceptions");
    }

    #[test]
    fn trap_type_names_match_devlink() {
        assert_eq!(TrapType::Drop.as_str(), "drop");
        assert_eq!(TrapType::Exception.as_str(), "exception");
        assert_eq!(TrapType::Control.as_str(), "control");
    }

    /// The SDK TSV's rows (comment lines skipped): name, group, syndrome, meaning, upstream, cookie.
    fn sdk_rows() -> Vec<Vec<&'static str>> {
        let rows: Vec<Vec<&str>> = SDK_TRAPS_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        for row in &rows {
            assert_eq!(row.len(), 6, "malformed row {row:?}");
        }
        assert!(rows.len() > 40, "sdk-traps.tsv read wrongly: {} rows", rows.len());
        rows
    }

    #[test]
    fn every_sdk_trap_has_one_entry() {
        let devlink = tsv_trap_names();
        let mut sdk_only = Vec::new();
        for row in sdk_rows() {
            let (name, group) = (row[0], row[1]);
            assert!(SDK_GROUPS.contains(&group), "{name}: group {group:?} is not an SDK group");
            let info = lookup(name).unwrap_or_else(|| panic!("SDK trap {name} has no taxonomy entry"));
            let in_sdk_table = SDK_TRAPS.iter().any(|t| t.name == name);
            if devlink.contains(name) {
                // Shared with devlink: the one entry is the devlink one.
                assert!(!in_sdk_table, "{name} is a devlink trap and must not be repeated in SDK_TRAPS");
                assert!(TRAPS.iter().any(|t| std::ptr::eq(t, info)), "{name}");
            } else {
                assert!(in_sdk_table, "{name} must be in SDK_TRAPS");
                assert_eq!(info.group, group, "group of {name}");
                sdk_only.push(name);
            }
        }
        let table: Vec<_> = SDK_TRAPS.iter().map(|t| t.name).collect();
        assert_eq!(table, sdk_only, "SDK_TRAPS: exactly the SDK-only names, in the TSV's order");
    }

    #[test]
    fn threshold_events_are_not_drops() {
        let mut thresholds = 0;
        for row in sdk_rows() {
            let (name, meaning) = (row[0], row[3]);
            let kind = lookup(name).unwrap().trap_type;
            if meaning.contains("not a drop") {
                assert_eq!(kind, Kind::Threshold, "{name}: {meaning}");
                thresholds += 1;
            } else {
                assert_ne!(kind, Kind::Threshold, "{name}: {meaning}");
            }
        }
        assert_eq!(thresholds, 2);
        // Threshold is the SDK's alone: no devlink trap has it.
        assert!(TRAPS.iter().all(|t| t.trap_type != Kind::Threshold));
    }

    #[test]
    fn sdk_names_take_the_type_of_their_upstream_counterpart() {
        for row in sdk_rows() {
            let (name, upstream) = (row[0], strip_note(row[4]));
            if upstream == "-" || upstream == name {
                continue;
            }
            let theirs = lookup(upstream).unwrap_or_else(|| panic!("{upstream} missing"));
            assert_eq!(lookup(name).unwrap().trap_type, theirs.trap_type, "{name} vs {upstream}");
        }
    }

    #[test]
    fn sdk_wjh_texts_are_copied_verbatim() {
        // SDK-only name -> the WJH reason it is (same hardware syndrome).
        let map = [
            ("port_isolation_filter", 201),
            ("dmac_is_reserved", 202),
            ("uc_fdb_filter", 206),
            ("smac_equals_dmac", 210),
            ("blackhole_neigh", 304),
            ("sip_is_in_class_e", 311),
            ("sip_is_unspecified", 313),
            ("mc_dmac_mismatch", 315),
            ("sip_equals_dip", 316),
            ("ipv4_dip_is_local_network", 318),
            ("ipv4_dip_is_link_local", 319),
            ("overlay_smac_equals_dmac", 403),
            ("congestion_thresh_crossed", 505),
            ("latency_thresh_crossed", 506),
        ];
        let wjh: HashMap<u32, Vec<&str>> =
            rows(WJH_REASONS_TSV).filter_map(|r| Some((r[0].parse().ok()?, r))).collect();
        for (name, id) in map {
            let row = &wjh[&id];
            let info = SDK_TRAPS.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(info.drop_reason, row[2], "{name}: reason of WJH {id}");
            assert_eq!(info.severity, row[3], "{name}: severity of WJH {id}");
            assert_eq!(info.description, row[4], "{name}: action of WJH {id}");
        }
    }

    #[test]
    fn sdk_classification() {
        let (kind, t) = classify_sdk("unresolved_neigh");
        assert_eq!(kind, Kind::Exception);
        assert_eq!(t.drop_reason, "Unresolved  neighbor /next-hop");
        let (kind, t) = classify_sdk("latency_thresh_crossed");
        assert_eq!((kind, t.severity), (Kind::Threshold, "Notice"));
        let (kind, t) = classify_sdk("some_future_sdk_trap");
        assert_eq!(kind, Kind::Drop);
        assert_eq!(t.drop_reason, "some_future_sdk_trap");
        assert_eq!(t.description, UNKNOWN_SDK_TRAP_DESCRIPTION);
        assert_eq!(t.severity, "Error");
        assert_eq!(Kind::Threshold.as_str(), "threshold");
        assert_eq!(Kind::from(TrapType::Exception), Kind::Exception);
    }
}
