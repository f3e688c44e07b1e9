//! The packet's own bytes, when the kernel copied them (`--pcap`): what
//! follows `struct ts_event` in a record flagged `TS_EV_RAW`.

use crate::abi;
use crate::error::{Error, Result};

/// `struct ts_raw.link` (TS_RAW_LINK_*).
const TS_RAW_LINK_ETHER: u8 = 1;
const TS_RAW_LINK_IP: u8 = 2;
const RAW_HEADER_SIZE: usize = 16;
const _: () = assert!(std::mem::size_of::<abi::ts_raw>() == RAW_HEADER_SIZE);

/// Where a frame's bytes start, which decides how a reader decodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// At the Ethernet header.
    Ethernet,
    /// At the IPv4 or IPv6 header: devices without one (tun, ipip, GRE in IP mode).
    Ip,
}

/// The captured bytes of one packet, as it was on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub link: Link,
    /// The packet's length, of which `bytes` is the captured start.
    pub orig_len: u32,
    pub bytes: Vec<u8>,
}

/// The bytes after the event, or None when the kernel could locate none.
/// `tail` is the record past `struct ts_event`.
pub(super) fn decode_raw(tail: &[u8]) -> Result<Option<RawFrame>> {
    let size_error = || Error::RecordSize { len: tail.len(), expected: RAW_HEADER_SIZE };
    let header = tail.get(..RAW_HEADER_SIZE).ok_or_else(size_error)?;
    let mut raw = abi::ts_raw::default();
    plain::copy_from_bytes(&mut raw, header).map_err(|_| size_error())?;
    let cap = usize::from(raw.cap_len);
    let bytes = tail
        .get(RAW_HEADER_SIZE..RAW_HEADER_SIZE + cap)
        .ok_or(Error::RecordSize { len: tail.len(), expected: RAW_HEADER_SIZE + cap })?;
    let link = match raw.link {
        TS_RAW_LINK_ETHER => Link::Ethernet,
        TS_RAW_LINK_IP => Link::Ip,
        _ => return Ok(None),
    };
    let mut frame = RawFrame { link, orig_len: raw.orig_len.max(raw.cap_len.into()), bytes: bytes.to_vec() };
    // A tag the device kept in skb metadata was on the wire after the two
    // MAC addresses: put it back, as a capture on the port would show it.
    // The kernel's length counts it already (dissect).
    if raw.vlan_accel != 0 && link == Link::Ethernet && frame.bytes.len() >= 12 {
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&raw.vlan_tpid.to_be_bytes());
        tag[2..].copy_from_slice(&raw.vlan_tci.to_be_bytes());
        frame.bytes.splice(12..12, tag);
    }
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(link: u8, accel: Option<(u16, u16)>, bytes: &[u8], orig_len: u32) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&orig_len.to_ne_bytes());
        t.extend_from_slice(&(bytes.len() as u16).to_ne_bytes());
        t.push(link);
        t.push(accel.is_some() as u8);
        let (tpid, tci) = accel.unwrap_or((0, 0));
        t.extend_from_slice(&tpid.to_ne_bytes());
        t.extend_from_slice(&tci.to_ne_bytes());
        t.extend_from_slice(&[0; 4]);
        t.extend_from_slice(bytes);
        t
    }

    #[test]
    fn a_tag_from_skb_metadata_goes_back_after_the_mac_addresses() {
        let frame: Vec<u8> = (0..20).collect();
        let got = decode_raw(&tail(TS_RAW_LINK_ETHER, Some((0x8100, 0x2064)), &frame, 64)).unwrap().unwrap();
        assert_eq!(got.link, Link::Ethernet);
        assert_eq!(got.orig_len, 64, "the kernel's length, which counts the tag");
        assert_eq!(&got.bytes[..12], &frame[..12]);
        assert_eq!(&got.bytes[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&got.bytes[16..], &frame[12..]);
    }

    #[test]
    fn ip_frames_keep_their_bytes_and_nothing_located_is_no_frame() {
        let packet = [0x45u8, 0, 0, 20];
        let got = decode_raw(&tail(TS_RAW_LINK_IP, Some((0x8100, 5)), &packet, 20)).unwrap().unwrap();
        assert_eq!((got.link, got.orig_len, got.bytes.as_slice()), (Link::Ip, 20, &packet[..]));
        assert_eq!(decode_raw(&tail(0, None, &[], 0)).unwrap(), None);
        // A captured length past the record is an error, not a read past it.
        let mut short = tail(TS_RAW_LINK_IP, None, &packet, 20);
        short.truncate(short.len() - 1);
        assert!(decode_raw(&short).is_err());
    }
}
