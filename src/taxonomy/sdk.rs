//! The traps NVIDIA's Switch SDK reports on SONiC and Cumulus-class hosts
//! under names of its own, from `tests/data/sdk-traps.tsv`.

use super::{Kind, TrapInfo};

/// The vendor SDK's own bus name for the dummy devlink instance it reports
/// traps through (NVIDIA Spectrum Switch SDK, sx_netdev: `devlink_dummy`).
pub const SDK_DEVLINK_BUS: &str = "devlink_dummy";

/// The five trap groups the vendor SDK reports (none is a devlink group name).
pub const SDK_GROUPS: [&str; 5] = ["l2", "router", "tunnel", "acl", "buffer"];

// An SDK trap name this table does not know: `devlink trap show` lists nothing
// on that path (the SDK registers no traps with devlink), so point elsewhere.
pub(super) const UNKNOWN_SDK_TRAP_DESCRIPTION: &str =
    "Vendor SDK trap: look the name up in the switch vendor's What Just Happened documentation";

/// The names the vendor SDK shares with generic devlink traps, in the order of
/// `tests/data/sdk-traps.tsv`. Their one entry is in [`TRAPS`](super::TRAPS);
/// they are listed here because the kernel side needs every SDK name's type
/// (see [`sdk_trap_kinds`](super::sdk_trap_kinds)), exceptions such as
/// `unresolved_neigh` and control traps such as `uc_loopback` included.
pub static SDK_SHARED_NAMES: &[&str] = &[
    "vlan_tag_mismatch",
    "ingress_vlan_filter",
    "ingress_spanning_tree_filter",
    "port_list_is_empty",
    "port_loopback_filter",
    "source_mac_is_multicast",
    "non_routable_packet",
    "blackhole_route",
    "ipv6_mc_dip_reserved_scope",
    "ipv6_mc_dip_interface_local_scope",
    "non_ip",
    "uc_dip_over_mc_dmac",
    "dip_is_loopback_address",
    "sip_is_mc",
    "sip_is_loopback_address",
    "ip_header_corrupted",
    "ipv4_sip_is_limited_bc",
    "irif_disabled",
    "erif_disabled",
    "uc_loopback",
    "unresolved_neigh",
    "ipv4_lpm_miss",
    "ipv6_lpm_miss",
    "mtu_value_is_too_small",
    "ttl_value_is_too_small",
    "overlay_smac_is_mc",
    "decap_error",
    "ingress_flow_action_drop",
    "egress_flow_action_drop",
    "tail_drop",
    "early_drop",
];

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
