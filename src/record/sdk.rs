//! What only NVIDIA's Switch SDK (SONiC, Cumulus-class hosts) reports: SONiC's
//! extended trap metadata (`struct ts_wjh`) and the 4-byte cookie of its ACL
//! drops. Facts from the SDK's public kernel drivers; units are the SDK's.

use super::{Egress, FixedStr};
use crate::abi;

// struct ts_wjh.flags, mirrored from include/trapstream.h.
const TS_WJH_FIELDS: u8 = 1;
const TS_WJH_TC_VALID: u8 = 2;
const TS_WJH_OCC_VALID: u8 = 4;
const TS_WJH_LATENCY_VALID: u8 = 8;

/// SONiC's extension of the trap metadata (the SDK's WJH buffer "linux
/// channel"): present on a trap only where the running kernel's metadata has
/// the fields; each value only where the SDK marked it valid. The egress port
/// itself is the record's `egress` (it is also in the -u flow key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wjh {
    /// The egress LAG, when the packet was leaving by one (`egress` is then its member port).
    pub egress_lag: Option<Egress>,
    /// Egress traffic class.
    pub traffic_class: Option<u16>,
    /// Egress traffic-class buffer occupancy.
    pub occupancy: Option<Occupancy>,
    /// Egress latency.
    pub latency: Option<Latency>,
}

impl Wjh {
    /// Traffic class, occupancy and latency describe one packet: a -u flow
    /// record stands for many, so it keeps only what its key fixes (ports).
    pub fn without_measurements(self) -> Wjh {
        Wjh { egress_lag: self.egress_lag, ..Wjh::default() }
    }
}

/// Buffer occupancy in the hardware's raw units, as the kernel passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    pub raw: u64,
}

/// The SDK's own WJH path reports occupancy as `raw << 13`: 8 KiB units.
const OCCUPANCY_UNIT_SHIFT: u32 = 13;
/// The SDK's own WJH path reports latency as `raw << 6`: 64 ns units.
const LATENCY_UNIT_SHIFT: u32 = 6;

impl Occupancy {
    /// Bytes, scaled as the SDK scales it; None only for a raw value so large
    /// that the bytes do not fit in 64 bits (no real buffer is that big).
    pub fn bytes(self) -> Option<u64> {
        self.raw.checked_mul(1 << OCCUPANCY_UNIT_SHIFT)
    }
}

/// Latency in the hardware's raw units, as the kernel passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub raw: u64,
}

impl Latency {
    /// Nanoseconds, scaled as the SDK scales it; None where that overflows 64 bits.
    pub fn ns(self) -> Option<u64> {
        self.raw.checked_mul(1 << LATENCY_UNIT_SHIFT)
    }
}

/// The egress port and the rest of SONiC's metadata, or nothing when the
/// kernel's metadata has no such fields (every upstream kernel).
pub(super) fn decode_wjh(w: &abi::ts_wjh) -> (Option<Egress>, Option<Wjh>) {
    if w.flags & TS_WJH_FIELDS == 0 {
        return (None, None);
    }
    let valid = |bit: u8| w.flags & bit != 0;
    let port = |ifindex: u32, name: &[i8; 16]| {
        (ifindex != 0).then(|| Egress { name: FixedStr::from_c(name), ifindex })
    };
    let wjh = Wjh {
        egress_lag: port(w.out_lag_ifindex, &w.out_lag_name),
        traffic_class: valid(TS_WJH_TC_VALID).then_some(w.out_tc),
        occupancy: valid(TS_WJH_OCC_VALID).then_some(Occupancy { raw: w.tc_occupancy }),
        latency: valid(TS_WJH_LATENCY_VALID).then_some(Latency { raw: w.latency }),
    };
    (port(w.out_ifindex, &w.out_ifname), Some(wjh))
}

/// The SDK's ACL drop traps, whose 4-byte cookie is the rule's user value.
const ACL_TRAPS: [&str; 3] = ["ingress_flow_action_drop", "egress_flow_action_drop", "flow_action_drop"];

/// An SDK ACL drop's cookie, decoded: the rule's user-defined value and the
/// direction bits the SDK keeps in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclRule {
    /// Bits 17:0 of the cookie: the value the ACL rule was given.
    pub value: u32,
    pub direction: AclDirection,
}

/// Bits 19:18 of an SDK ACL cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclDirection {
    Ingress,
    Egress,
    /// An ACL bound to a group of ports or router interfaces (the SDK's
    /// "bind point"; WJH calls its drops "Multipoint ACL").
    Multipoint,
    /// The value 3, which the SDK does not define: reported as such, not guessed.
    Reserved,
}

impl AclDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            AclDirection::Ingress => "ingress",
            AclDirection::Egress => "egress",
            AclDirection::Multipoint => "multipoint",
            AclDirection::Reserved => "reserved",
        }
    }
}

/// The rule behind a vendor SDK ACL drop. Only the SDK's cookie has this
/// layout: mlxsw's and netdevsim's cookies are the opaque bytes a user gave
/// tc, so `vendor_sdk` must come from the devlink bus, and anything but the
/// SDK's three ACL traps with exactly 4 bytes is left undecoded.
pub(super) fn decode_acl(
    vendor_sdk: bool,
    trap_name: &str,
    cookie: &[u8],
    cookie_len: u16,
) -> Option<AclRule> {
    if !vendor_sdk || cookie_len != 4 || !ACL_TRAPS.contains(&trap_name) {
        return None;
    }
    // The SDK copies the u32 in CPU byte order, little endian on every host
    // it runs on (x86-64, arm64); trapstream runs on that same CPU.
    let word = u32::from_ne_bytes(cookie.get(..4)?.try_into().ok()?);
    let direction = match (word >> 18) & 0b11 {
        0 => AclDirection::Ingress,
        1 => AclDirection::Egress,
        2 => AclDirection::Multipoint,
        _ => AclDirection::Reserved,
    };
    Some(AclRule { value: word & 0x3_ffff, direction })
}
