//! Raw ring-buffer bytes → an owned, typed `Record`. The only module that
//! knows the kernel ABI (`include/trapstream.h`); nothing else sees a C struct.
//!
//! A Record holds no heap data (fixed-size strings, `IpAddr`s), so decoding an
//! event and moving it through the channel allocates nothing.

use std::fmt;

use crate::abi;
use crate::error::{Error, Result};
use crate::taxonomy::Kind;

mod packet;
mod raw;
mod sdk;
pub use packet::*;
pub use raw::{Link, RawFrame};
pub use sdk::{AclDirection, AclRule, Latency, Occupancy, Wjh};

/// A short string copied out of a kernel `char[N]`: NUL-terminated, maybe not UTF-8.
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

/// The text alone: the bytes past it are whatever the kernel's buffer held
/// after the NUL (clearing them cost a memset per name per record).
impl<const N: usize> PartialEq for FixedStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for FixedStr<N> {}

impl<const N: usize> FixedStr<N> {
    pub fn from_c(raw: &[i8; N]) -> Self {
        // The whole array at once and a word-wise search beat a loop per
        // byte. What follows the NUL is kept but never read (see `eq`).
        let mut bytes = raw.map(|c| c as u8);
        let len = c_len(&bytes);
        // Kernel names are ASCII; anything else is shown, not trusted, so
        // replace bytes that would make the slice invalid UTF-8.
        if !bytes[..len].is_ascii() && std::str::from_utf8(&bytes[..len]).is_err() {
            for b in &mut bytes[..len] {
                if !b.is_ascii() {
                    *b = b'?';
                }
            }
        }
        FixedStr { len: len as u8, bytes }
    }

    pub fn new(text: &str) -> Self {
        let mut bytes = [0u8; N];
        let mut len = text.len().min(N);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        FixedStr { len: len as u8, bytes }
    }

    pub fn as_str(&self) -> &str {
        // from_c and new only store valid UTF-8 prefixes.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The bytes, without `as_str`'s UTF-8 check (for hashing).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where the first NUL is (the length if none), eight bytes at a time.
fn c_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    for (i, chunk) in words.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // The high bit of each zero byte, and maybe of bytes above the first
        // zero (a borrow runs upwards); the lowest one set is the first zero.
        let zeros = w.wrapping_sub(ONES) & !w & HIGHS;
        if zeros != 0 {
            return i * 8 + (zeros.trailing_zeros() / 8) as usize;
        }
    }
    let tail = words.remainder();
    bytes.len() - tail.len() + tail.iter().position(|&b| b == 0).unwrap_or(tail.len())
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        FixedStr { len: 0, bytes: [0; N] }
    }
}

// Unboxed on purpose: a Record holds no heap data (see the module's comment).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A devlink trap report: the packet was trapped or dropped by an ASIC.
    Devlink(DevlinkTrap),
    /// A packet freed by the kernel with a drop reason (skb:kfree_skb).
    Skb(SkbDrop),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevlinkTrap {
    pub trap_name: FixedStr<48>,
    pub trap_group: FixedStr<32>,
    /// The type the kernel side reported: devlink's for a devlink driver's
    /// traps; for the vendor SDK's (which says drop for all) the taxonomy's,
    /// which user space gave the kernel in `sdk_trap_types`.
    pub trap_type: Kind,
    pub bus_name: FixedStr<16>,
    pub device_name: FixedStr<32>,
    pub cookie: Option<FlowActionCookie>,
    /// The vendor SDK's ACL drops: the rule its cookie names.
    pub acl: Option<AclRule>,
    /// SONiC kernels only: the SDK's extended metadata.
    pub wjh: Option<Wjh>,
}

impl DevlinkTrap {
    /// A report from NVIDIA's Switch SDK (SONiC, Cumulus-class hosts), told by
    /// the bus of the dummy devlink instance it reports through. Its
    /// `trap_type` is always drop and its devlink handle names no device.
    pub fn is_vendor_sdk(&self) -> bool {
        is_sdk_bus(&self.bus_name)
    }
}

fn is_sdk_bus(bus_name: &FixedStr<16>) -> bool {
    bus_name.as_str() == crate::taxonomy::SDK_DEVLINK_BUS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowActionCookie {
    /// Length in the kernel; may exceed the captured bytes.
    pub len: u16,
    captured: u8,
    bytes: [u8; 32],
}

impl FlowActionCookie {
    pub fn captured(&self) -> &[u8] {
        &self.bytes[..self.captured as usize]
    }

    pub fn is_truncated(&self) -> bool {
        usize::from(self.len) > self.captured().len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkbDrop {
    /// `enum skb_drop_reason` value; None when the kernel does not report one (before 5.17).
    pub reason: Option<u32>,
    /// True for frames injected by the dissector test entry.
    pub synthetic: bool,
}

/// The port a packet came in on. Empty name and ifindex 0 when it came from
/// this host itself (a kernel drop on the transmit path); a forwarded packet
/// dropped on its way out has the ingress ifindex but no name (the kernel
/// keeps only the index by then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingress {
    pub name: FixedStr<16>,
    pub ifindex: u32,
    /// Network namespace of the device the packet was reported on.
    pub netns_ino: u32,
}

/// The device a packet was leaving by: for a kernel drop on the transmit
/// path the device it was reported on; for a vendor SDK trap on a SONiC
/// kernel the egress port the SDK reported (a LAG's member port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Egress {
    pub name: FixedStr<16>,
    pub ifindex: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// When the kernel saw the packet: nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The same instant on CLOCK_BOOTTIME, as the kernel reported it.
    pub boot_ns: u64,
    pub origin: Origin,
    pub ingress: Ingress,
    /// The device the packet was leaving by: kernel drops on the transmit
    /// path, vendor SDK traps that report an egress port.
    pub egress: Option<Egress>,
    pub packet: Packet,
    /// With aggregation (-u): how many packets this record stands for.
    pub flow: Option<FlowCount>,
}

/// Packets counted in the kernel for one {trap, port, flow} between flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowCount {
    pub packets: u64,
    /// Frame bytes.
    pub bytes: u64,
    /// Unix time in ns of the first and last packet.
    pub first_ns: u64,
    pub last_ns: u64,
    /// Which kind of -u record this is.
    pub kind: FlowKind,
}

/// What a -u record is: every one carries `count`, so that summing it over
/// all of them gives the packets seen; this says how it came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Packets counted into the kernel's table and drained.
    Flow,
    /// One packet sent alone because the table had no room for its key.
    Overflow,
    /// One of the first packets of a new flow, sent alone at once (--exemplars).
    Exemplar,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Flow => "flow",
            FlowKind::Overflow => "overflow",
            FlowKind::Exemplar => "exemplar",
        }
    }
}

// ABI constants, mirrored from include/trapstream.h (the skeleton carries types, not macros).
const TS_KIND_EVENT: u8 = 1;
const TS_EV_AGG_OVERFLOW: u8 = 1;
const TS_EV_EXEMPLAR: u8 = 2;
const TS_EV_RAW: u8 = 4;
const TS_SOURCE_DEVLINK: u8 = 1;
const TS_SOURCE_SKB: u8 = 2;
const TS_SOURCE_TEST: u8 = 3;
const TS_TRAP_TYPE_DROP: u8 = 0;
const TS_TRAP_TYPE_EXCEPTION: u8 = 1;
const TS_TRAP_TYPE_CONTROL: u8 = 2;
const TS_TRAP_TYPE_THRESHOLD: u8 = 3;
const TS_DROP_REASON_UNKNOWN: u32 = u32::MAX;

/// Size of `struct ts_event`; also asserted against the generated type.
pub const EVENT_SIZE: usize = 384;
/// The leading part of it that a kernel drop's record carries (TS_SKB_EVENT_SIZE).
pub const SKB_EVENT_SIZE: usize = 160;
/// Sizes of `struct ts_flow_key` and `struct ts_flow`.
pub const FLOW_KEY_SIZE: usize = 80;
pub const FLOW_SIZE: usize = 32 + EVENT_SIZE;
/// Size of `struct ts_flow_key4`, the twin key of a flow without IPv6 addresses.
pub const FLOW_KEY4_SIZE: usize = 56;
/// Size of `struct ts_flow_count`, one CPU's slot of a flow's counts.
pub const FLOW_COUNT_SIZE: usize = 24;
const _: () = assert!(std::mem::size_of::<abi::ts_event>() == EVENT_SIZE);
const _: () = assert!(std::mem::size_of::<abi::ts_packet>() == 112);
const _: () = assert!(std::mem::offset_of!(abi::ts_event, trap_name) == SKB_EVENT_SIZE);
const _: () = assert!(std::mem::offset_of!(abi::ts_event, flags) < SKB_EVENT_SIZE);
const _: () = assert!(std::mem::size_of::<abi::ts_wjh>() == 64);
const _: () = assert!(std::mem::size_of::<abi::ts_flow_key>() == FLOW_KEY_SIZE);
const _: () = assert!(std::mem::size_of::<abi::ts_flow>() == FLOW_SIZE);
const _: () = assert!(std::mem::size_of::<abi::ts_flow_count>() == FLOW_COUNT_SIZE);
const _: () = assert!(std::mem::size_of::<abi::ts_flow_key4>() == FLOW_KEY4_SIZE);

/// Where the addresses and ports lie in the wide key and the compact one;
/// everything before the addresses is laid out alike in both.
const KEY_SRC: usize = std::mem::offset_of!(abi::ts_flow_key, ip_src);
const KEY_DST: usize = std::mem::offset_of!(abi::ts_flow_key, ip_dst);
const KEY_PORTS: usize = std::mem::offset_of!(abi::ts_flow_key, sport);
const KEY4_DST: usize = std::mem::offset_of!(abi::ts_flow_key4, ip_dst);
const KEY4_PORTS: usize = std::mem::offset_of!(abi::ts_flow_key4, sport);
const _: () = assert!(std::mem::offset_of!(abi::ts_flow_key4, ip_src) == KEY_SRC);
const _: () = assert!(KEY4_DST == KEY_SRC + 4 && KEY4_PORTS == KEY4_DST + 4);
const _: () = assert!(KEY4_PORTS + 4 == FLOW_KEY4_SIZE);
const _: () = assert!(KEY_PORTS + 4 == FLOW_KEY_SIZE);

/// The flow table's key (`struct ts_flow_key`) of a compact twin key: the
/// four-byte addresses in the first bytes of the wide ones, zeros after
/// them, as the kernel keys the same flow in its table (count_flow).
/// None when `compact` is not a whole compact key.
pub fn widen_flow_key(compact: &[u8]) -> Option<[u8; FLOW_KEY_SIZE]> {
    if compact.len() != FLOW_KEY4_SIZE {
        return None;
    }
    let mut key = [0u8; FLOW_KEY_SIZE];
    key[..KEY_SRC + 4].copy_from_slice(&compact[..KEY_SRC + 4]);
    key[KEY_DST..KEY_DST + 4].copy_from_slice(&compact[KEY4_DST..KEY4_PORTS]);
    key[KEY_PORTS..].copy_from_slice(&compact[KEY4_PORTS..]);
    Some(key)
}

/// The ABI's value for a trap type (TS_TRAP_TYPE_*): what `sdk_trap_types`
/// holds and what bit `1 << value` of the kernel's trap-type mask stands for.
pub fn trap_type_value(kind: Kind) -> u8 {
    match kind {
        Kind::Drop => TS_TRAP_TYPE_DROP,
        Kind::Exception => TS_TRAP_TYPE_EXCEPTION,
        Kind::Control => TS_TRAP_TYPE_CONTROL,
        Kind::Threshold => TS_TRAP_TYPE_THRESHOLD,
    }
}

/// The inverse of [`trap_type_value`]. The kernel side passes on no other
/// value, so another one means the record is not what it should be.
fn trap_type_of(value: u8) -> Result<Kind> {
    [Kind::Drop, Kind::Exception, Kind::Control, Kind::Threshold]
        .into_iter()
        .find(|&kind| trap_type_value(kind) == value)
        .ok_or(Error::TrapType(value))
}

/// Decode one ring-buffer record. `boot_to_wall_ns` converts CLOCK_BOOTTIME to
/// Unix time (see `clock`).
// Inlined, and the Record returned alone (not in a tuple with the raw
// frame): each move of it on the way out was a 408-byte memcpy.
#[inline]
pub fn decode(bytes: &[u8], boot_to_wall_ns: i64) -> Result<Record> {
    let size = event_size(bytes);
    let short = || Error::RecordSize { len: bytes.len(), expected: size };
    let part = bytes.get(..size).ok_or_else(short)?;
    // A whole record in the ring is read where it lies (the ring aligns
    // records to 8 bytes); a short or unaligned one is copied once, over zeros.
    // Zeroed only when needed: 384 bytes of memset otherwise run per record.
    let mut copy: EventBytes;
    let raw = match plain::from_bytes::<abi::ts_event>(part) {
        Ok(raw) => raw,
        Err(_) => {
            copy = EventBytes([0; EVENT_SIZE]);
            copy.0[..size].copy_from_slice(part);
            plain::from_bytes::<abi::ts_event>(&copy.0).map_err(|_| short())?
        }
    };
    let mut rec = decode_event(raw, boot_to_wall_ns)?;
    let alone = if raw.flags & TS_EV_AGG_OVERFLOW != 0 {
        Some(FlowKind::Overflow)
    } else if raw.flags & TS_EV_EXEMPLAR != 0 {
        Some(FlowKind::Exemplar)
    } else {
        None
    };
    // A -u packet sent alone is a flow of one, so that sums over counts hold.
    rec.flow = alone.map(|kind| FlowCount {
        packets: 1,
        bytes: u64::from(rec.packet.len),
        first_ns: rec.time_ns,
        last_ns: rec.time_ns,
        kind,
    });
    Ok(rec)
}

/// How many bytes of `ts_event` a record has: a kernel drop's record stops
/// before the devlink fields, which read as zero; a devlink trap's is whole.
fn event_size(bytes: &[u8]) -> usize {
    let source = bytes.get(1).copied();
    if bytes.len() < EVENT_SIZE && source != Some(TS_SOURCE_DEVLINK) {
        SKB_EVENT_SIZE
    } else {
        EVENT_SIZE
    }
}

/// Decode one ring-buffer record and the packet's bytes it carries, if the
/// kernel was asked for them (`--pcap`) and could locate them.
pub fn decode_with_raw(bytes: &[u8], boot_to_wall_ns: i64) -> Result<(Record, Option<RawFrame>)> {
    let rec = decode(bytes, boot_to_wall_ns)?;
    // The flags lie in every record's first part (decode read them there).
    let flags = bytes.get(std::mem::offset_of!(abi::ts_event, flags)).copied().unwrap_or(0);
    let raw = match flags & TS_EV_RAW {
        0 => None,
        // Raw bytes follow only a whole event: a short record saying so is malformed.
        _ => raw::decode_raw(
            bytes.get(EVENT_SIZE..).ok_or(Error::RecordSize { len: bytes.len(), expected: EVENT_SIZE })?,
        )?,
    };
    Ok((rec, raw))
}

/// Room for one `ts_event`, aligned as it is.
#[repr(C, align(8))]
struct EventBytes([u8; EVENT_SIZE]);
const _: () = assert!(std::mem::align_of::<abi::ts_event>() <= std::mem::align_of::<EventBytes>());

/// The packet count of a drained flow-table value, readable even when the
/// rest of it does not decode (`struct ts_flow` starts with it).
pub fn flow_packets(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < FLOW_SIZE {
        return None;
    }
    bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes)
}

/// Decode one drained flow-table value: the first packet's event, with the counts.
pub fn decode_flow(bytes: &[u8], boot_to_wall_ns: i64) -> Result<Record> {
    if bytes.len() < FLOW_SIZE {
        return Err(Error::RecordSize { len: bytes.len(), expected: FLOW_SIZE });
    }
    let mut raw = abi::ts_flow::default();
    plain::copy_from_bytes(&mut raw, &bytes[..FLOW_SIZE])
        .map_err(|_| Error::RecordSize { len: bytes.len(), expected: FLOW_SIZE })?;
    let mut rec = decode_event(&raw.exemplar, boot_to_wall_ns)?;
    if let Origin::Devlink(trap) = &mut rec.origin {
        trap.wjh = trap.wjh.map(Wjh::without_measurements);
    }
    let wall = |ns: u64| ns.saturating_add_signed(boot_to_wall_ns);
    rec.time_ns = wall(raw.last_ns);
    rec.boot_ns = raw.last_ns;
    rec.flow = Some(FlowCount {
        packets: raw.packets,
        bytes: raw.bytes,
        first_ns: wall(raw.first_ns),
        last_ns: wall(raw.last_ns),
        kind: FlowKind::Flow,
    });
    Ok(rec)
}

#[inline]
fn decode_event(raw: &abi::ts_event, boot_to_wall_ns: i64) -> Result<Record> {
    if raw.kind != TS_KIND_EVENT {
        return Err(Error::RecordKind(raw.kind));
    }
    let mut sdk_egress = None;
    let origin = match raw.source {
        TS_SOURCE_DEVLINK => {
            let (egress, wjh) = sdk::decode_wjh(&raw.wjh);
            sdk_egress = egress;
            // Built whole in one expression: a trap finished after it was
            // built was copied (272 bytes) on its way into the Record.
            let trap_name = FixedStr::from_c(&raw.trap_name);
            let bus_name = FixedStr::from_c(&raw.bus_name);
            let cookie = (raw.cookie_len > 0).then(|| FlowActionCookie {
                len: raw.cookie_len,
                captured: raw.cookie_len.min(raw.cookie.len() as u16) as u8,
                bytes: raw.cookie,
            });
            let acl = cookie.and_then(|c| {
                sdk::decode_acl(is_sdk_bus(&bus_name), trap_name.as_str(), c.captured(), c.len)
            });
            Origin::Devlink(DevlinkTrap {
                trap_name,
                trap_group: FixedStr::from_c(&raw.trap_group),
                trap_type: trap_type_of(raw.trap_type)?,
                bus_name,
                device_name: FixedStr::from_c(&raw.dev_name),
                cookie,
                acl,
                wjh,
            })
        }
        TS_SOURCE_SKB | TS_SOURCE_TEST => Origin::Skb(SkbDrop {
            reason: (raw.drop_reason != TS_DROP_REASON_UNKNOWN).then_some(raw.drop_reason),
            synthetic: raw.source == TS_SOURCE_TEST,
        }),
        other => return Err(Error::RecordKind(other)),
    };
    let device =
        Ingress { name: FixedStr::from_c(&raw.ifname), ifindex: raw.ifindex, netns_ino: raw.netns_ino };
    let (ingress, egress) = direction(raw, device);
    let egress = egress.or(sdk_egress);
    Ok(Record {
        time_ns: raw.time_ns.saturating_add_signed(boot_to_wall_ns),
        boot_ns: raw.time_ns,
        origin,
        ingress,
        egress,
        packet: decode_packet(&raw.pkt),
        flow: None,
    })
}

/// Which way the reported device faces. A devlink trap's device is always its
/// input port. A kernel drop's device (skb->dev) is the ingress port only if
/// the packet came in there: the stack records the arrival port in skb_iif
/// when it takes a packet in, so skb_iif 0 means this host sent it, and
/// another index means it was forwarded; either way skb->dev is then the way
/// out.
fn direction(raw: &abi::ts_event, device: Ingress) -> (Ingress, Option<Egress>) {
    if raw.source != TS_SOURCE_SKB || device.ifindex == 0 || raw.skb_iif == device.ifindex {
        return (device, None);
    }
    let egress = Egress { name: device.name, ifindex: device.ifindex };
    let ingress = Ingress { name: FixedStr::default(), ifindex: raw.skb_iif, netns_ino: device.netns_ino };
    (ingress, Some(egress))
}

#[cfg(test)]
mod tests;
