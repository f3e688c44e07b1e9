//! pcapng blocks (draft-ietf-opsawg-pcapng): a Section Header, Interface
//! Descriptions and Enhanced Packet Blocks, in host byte order (a reader
//! learns it from the Section Header's magic). Each function appends one
//! whole block to a buffer.

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;

/// LINKTYPE_ETHERNET and LINKTYPE_RAW (an IPv4 or IPv6 header first).
pub const LINKTYPE_ETHERNET: u16 = 1;
pub const LINKTYPE_RAW: u16 = 101;

/// Option values are u16-length: longer text is cut (at a character boundary).
const MAX_OPTION: usize = 0xfff0;

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// A block's frame around `body`: type, total length, body, total length.
fn block(out: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    body(out);
    let total = (out.len() - start + 4) as u32;
    out[start + 4..start + 8].copy_from_slice(&total.to_ne_bytes());
    out.extend_from_slice(&total.to_ne_bytes());
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_ne_bytes());
    out.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + pad4(value.len()) - value.len(), 0);
}

fn text_option(out: &mut Vec<u8>, code: u16, text: &str) {
    let mut len = text.len().min(MAX_OPTION);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    if len > 0 {
        option(out, code, &text.as_bytes()[..len]);
    }
}

fn end_of_options(out: &mut Vec<u8>) {
    out.extend_from_slice(&OPT_END.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
}

/// A new section of unknown length: what starts every file (and the stream).
pub fn section_header(out: &mut Vec<u8>, application: &str) {
    block(out, SHB, |b| {
        b.extend_from_slice(&BYTE_ORDER_MAGIC.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&(-1i64).to_ne_bytes());
        text_option(b, SHB_USERAPPL, application);
        end_of_options(b);
    });
}

/// An interface whose packets carry nanosecond timestamps.
pub fn interface(out: &mut Vec<u8>, link_type: u16, snap_len: u32, name: &str, description: &str) {
    block(out, IDB, |b| {
        b.extend_from_slice(&link_type.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&snap_len.to_ne_bytes());
        text_option(b, IF_NAME, name);
        text_option(b, IF_DESCRIPTION, description);
        option(b, IF_TSRESOL, &[9]);
        end_of_options(b);
    });
}

/// One packet: its captured bytes, its length on the wire, Unix time in ns.
pub fn packet(out: &mut Vec<u8>, interface: u32, time_ns: u64, bytes: &[u8], orig_len: u32, comment: &str) {
    block(out, EPB, |b| {
        b.extend_from_slice(&interface.to_ne_bytes());
        b.extend_from_slice(&((time_ns >> 32) as u32).to_ne_bytes());
        b.extend_from_slice(&(time_ns as u32).to_ne_bytes());
        b.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
        b.extend_from_slice(&orig_len.max(bytes.len() as u32).to_ne_bytes());
        b.extend_from_slice(bytes);
        b.resize(b.len() + pad4(bytes.len()) - bytes.len(), 0);
        text_option(b, OPT_COMMENT, comment);
        end_of_options(b);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn blocks_are_padded_and_framed_by_their_length() {
        let mut out = Vec::new();
        section_header(&mut out, "trapstream");
        interface(&mut out, LINKTYPE_ETHERNET, 260, "veth0", "skb drops");
        packet(&mut out, 0, (7u64 << 32) | 9, &[1, 2, 3, 4, 5], 60, "skbDropReason=NO_SOCKET");
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < out.len() {
            let len = u32_at(&out, off + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&out, off + len - 4) as usize, len, "trailing length");
            kinds.push(u32_at(&out, off));
            off += len;
        }
        assert_eq!(off, out.len());
        assert_eq!(kinds, [SHB, IDB, EPB]);
        let epb = &out[out.len() - u32_at(&out, out.len() - 4) as usize..];
        assert_eq!(u32_at(epb, 12), 7, "timestamp high");
        assert_eq!(u32_at(epb, 16), 9, "timestamp low");
        assert_eq!(u32_at(epb, 20), 5, "captured");
        assert_eq!(u32_at(epb, 24), 60, "original");
    }
}
