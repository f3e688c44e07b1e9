//! Byte writers for the JSON and Influx hot paths: integers, times,
//! addresses, MACs and escaped text appended straight to the output buffer.
//! `core::fmt` costs a virtual call and padding logic per piece, which made
//! up about a fifth of a record's encoding; these produce the same bytes as
//! the `Display` impls they replace (tests below compare them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::record::Mac;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// "00" to "99": two digits per look-up, so a number takes half the
/// dependent divisions a digit at a time would.
static PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// `v` < 10^8 as exactly eight digits, leading zeros kept. The four pairs
/// do not depend on each other, unlike a loop dividing by 100.
fn eight_digits(v: u32) -> [u8; 8] {
    let (high, low) = ((v / 10_000) as usize, (v % 10_000) as usize);
    let [a, b] = [PAIRS[high / 100], PAIRS[high % 100]];
    let [c, d] = [PAIRS[low / 100], PAIRS[low % 100]];
    [a[0], a[1], b[0], b[1], c[0], c[1], d[0], d[1]]
}

/// The decimal digits of `v`, right-aligned in `text` (which must be long
/// enough): eight at a time while more than eight are left.
fn fill(text: &mut [u8], mut v: u64) {
    let mut end = text.len();
    while v >= 100_000_000 {
        text[end - 8..end].copy_from_slice(&eight_digits((v % 100_000_000) as u32));
        v /= 100_000_000;
        end -= 8;
    }
    let mut v = v as u32;
    while v >= 100 {
        text[end - 2..end].copy_from_slice(&PAIRS[(v % 100) as usize]);
        v /= 100;
        end -= 2;
    }
    if v >= 10 {
        text[end - 2..end].copy_from_slice(&PAIRS[v as usize]);
    } else {
        text[end - 1] = b'0' + v as u8;
    }
}

/// How many decimal digits `v` has (1 for 0).
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// The longest u64 in decimal.
const U64_DIGITS: usize = 20;

/// An unsigned integer in decimal. Most values in a record (octets, ports
/// below 10000, lengths, TTLs) have at most four digits: those are written as
/// one 4-byte store and a truncation. Longer ones are built in a 20-byte
/// array and appended whole, then cut: a copy of a fixed size is a few
/// stores, one of a variable size a call to memcpy.
#[inline]
pub(super) fn int(out: &mut Vec<u8>, v: impl Into<u64>) {
    let v = v.into();
    if v >= 10_000 {
        return if v < 100_000_000 { medium_int(out, v as u32) } else { long_int(out, v) };
    }
    let v = v as u32;
    let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10].map(|d| b'0' + d as u8);
    let n = 1 + usize::from(v >= 10) + usize::from(v >= 100) + usize::from(v >= 1000);
    // The last n digits, moved to the front.
    let word = u32::from_be_bytes(digits) << (8 * (4 - n));
    let len = out.len();
    out.extend_from_slice(&word.to_be_bytes());
    out.truncate(len + n);
}

/// Five to eight digits (ephemeral ports, interface indexes, lengths): the
/// eight digits with leading zeros, moved to the front as one word.
fn medium_int(out: &mut Vec<u8>, v: u32) {
    let n = 5 + usize::from(v >= 100_000) + usize::from(v >= 1_000_000) + usize::from(v >= 10_000_000);
    let word = u64::from_be_bytes(eight_digits(v)) << (8 * (8 - n));
    let len = out.len();
    out.extend_from_slice(&word.to_be_bytes());
    out.truncate(len + n);
}

fn long_int(out: &mut Vec<u8>, v: u64) {
    let n = digit_count(v);
    let mut text = [0u8; U64_DIGITS];
    fill(&mut text[..n], v);
    let len = out.len();
    out.extend_from_slice(&text);
    out.truncate(len + n);
}

/// The nine digits after the point, with the point: ".010481600".
fn fraction(ns: u64) -> [u8; 10] {
    let n = (ns % 1_000_000_000) as u32;
    let [a, b, c, d, e, f, g, h] = eight_digits(n % 100_000_000);
    [b'.', b'0' + (n / 100_000_000) as u8, a, b, c, d, e, f, g, h]
}

/// Seconds since the epoch with nanoseconds: "1611931294.010481600", as
/// `super::Seconds` displays it.
pub(super) fn seconds(out: &mut Vec<u8>, ns: u64) {
    int(out, ns / 1_000_000_000);
    out.extend_from_slice(&fraction(ns));
}

/// A record's own time, twice per record in line protocol (the `timestamp`
/// field in seconds and the line's nanosecond timestamp) and once in JSON.
/// Consecutive records fall in the same second: its digits are kept and
/// only the nine below it are written anew.
#[derive(Default)]
pub(super) struct Clock {
    /// The second whose digits are `text[..len]`; `len` 0 until the first.
    second: u64,
    text: [u8; U64_DIGITS],
    len: usize,
}

impl Clock {
    /// `ns / 10^9` in decimal, appended.
    fn second(&mut self, out: &mut Vec<u8>, ns: u64) {
        let second = ns / 1_000_000_000;
        if self.len == 0 || second != self.second {
            self.len = digit_count(second);
            fill(&mut self.text[..self.len], second);
            self.second = second;
        }
        let len = out.len();
        out.extend_from_slice(&self.text);
        out.truncate(len + self.len);
    }

    /// As `seconds`.
    pub(super) fn seconds(&mut self, out: &mut Vec<u8>, ns: u64) {
        self.second(out, ns);
        out.extend_from_slice(&fraction(ns));
    }

    /// Nanoseconds as an integer, as `int`.
    pub(super) fn nanos(&mut self, out: &mut Vec<u8>, ns: u64) {
        if ns < 1_000_000_000 {
            return int(out, ns);
        }
        self.second(out, ns);
        out.extend_from_slice(&fraction(ns)[1..]);
    }
}

/// Lower-case hex digits of every byte, as `super::Hex`.
pub(super) fn hex_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    }
}

/// "0c:42:a1:a9:81:66", as `Mac`'s Display.
pub(super) fn mac(out: &mut Vec<u8>, m: Mac) {
    let mut text = [b':'; 17];
    for (i, b) in m.0.iter().enumerate() {
        text[i * 3] = HEX[usize::from(b >> 4)];
        text[i * 3 + 1] = HEX[usize::from(b & 15)];
    }
    out.extend_from_slice(&text);
}

/// A u16 in lower-case hex without leading zeros ("{:x}").
fn hex_u16(out: &mut Vec<u8>, v: u16) {
    let digits = (16 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[usize::from((v >> (i * 4)) & 15)]);
    }
}

/// "0x800", as the original formatted EtherTypes ("{:#x}").
pub(super) fn ether_type(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(b"0x");
    hex_u16(out, v);
}

/// Each octet's digits and a dot, left-aligned, and how many bytes of them
/// count: "7." is `(*b"7.\0\0", 2)`.
static OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut o = 0;
    while o < 256 {
        let digits = [b'0' + (o / 100) as u8, b'0' + (o / 10 % 10) as u8, b'0' + (o % 10) as u8];
        t[o] = match o {
            0..=9 => ([digits[2], b'.', 0, 0], 2),
            10..=99 => ([digits[1], digits[2], b'.', 0], 3),
            _ => ([digits[0], digits[1], digits[2], b'.'], 4),
        };
        o += 1;
    }
    t
};

/// Dotted quad: each octet and its dot from a table, laid end to end in
/// one 16-byte word that is appended whole and cut to length (without the
/// last dot).
pub(super) fn ipv4(out: &mut Vec<u8>, a: Ipv4Addr) {
    let mut text = 0u128;
    let mut n = 0;
    for o in a.octets() {
        let (bytes, len) = OCTETS[usize::from(o)];
        // Little-endian: byte i of the word is byte i of the text.
        text |= u128::from(u32::from_le_bytes(bytes)) << (8 * n);
        n += u32::from(len);
    }
    let len = out.len();
    out.extend_from_slice(&text.to_le_bytes());
    out.truncate(len + n as usize - 1);
}

/// As std's Display (RFC 5952): IPv4-mapped addresses as "::ffff:a.b.c.d",
/// the first longest run of two or more zero groups as "::", groups in
/// lower-case hex without leading zeros.
pub(super) fn ipv6(out: &mut Vec<u8>, a: Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        return ipv4(out, v4);
    }
    let groups = a.segments();
    let (mut best, mut best_len, mut run) = (0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        run = if g == 0 { run + 1 } else { 0 };
        if run > best_len {
            (best, best_len) = (i + 1 - run, run);
        }
    }
    let list = |out: &mut Vec<u8>, part: &[u16]| {
        for (i, &g) in part.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            hex_u16(out, g);
        }
    };
    if best_len > 1 {
        list(out, &groups[..best]);
        out.extend_from_slice(b"::");
        list(out, &groups[best + best_len..]);
    } else {
        list(out, &groups);
    }
}

pub(super) fn ip(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => ipv4(out, a),
        IpAddr::V6(a) => ipv6(out, a),
    }
}

/// TCP flags by name, "SYN|ACK", as `super::TcpFlags`.
pub(super) fn tcp_flags(out: &mut Vec<u8>, flags: u8) {
    const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
    let mut first = true;
    for (bit, name) in NAMES.iter().enumerate() {
        if flags & (1 << bit) != 0 {
            if !first {
                out.push(b'|');
            }
            out.extend_from_slice(name.as_bytes());
            first = false;
        }
    }
}

// Which bytes each position must change, as bits of SPECIAL.
const JSON: u8 = 1;
const MEASUREMENT: u8 = 2;
const KEY: u8 = 4;
const STRING_VALUE: u8 = 8;

static SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = JSON;
        b += 1;
    }
    t[b'"' as usize] = JSON | STRING_VALUE;
    t[b'\\' as usize] = JSON | MEASUREMENT | KEY | STRING_VALUE;
    // Line protocol turns newlines into spaces in every position.
    t[b'\n' as usize] |= MEASUREMENT | KEY | STRING_VALUE;
    t[b'\r' as usize] |= MEASUREMENT | KEY | STRING_VALUE;
    t[b',' as usize] = MEASUREMENT | KEY;
    t[b' ' as usize] = MEASUREMENT | KEY;
    t[b'=' as usize] = KEY;
    t
};

/// `text` as a JSON string body (no quotes), escaped exactly as serde_json
/// escapes: `"` `\` and the short forms \b \t \n \f \r, other control
/// characters as \u00XX with lower-case hex; everything else as is.
pub(super) fn json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Most text (interface, trap and port names) needs no escaping at all:
    // one table look-up a byte says so, and the text is copied whole.
    if !bytes.iter().any(|&b| SPECIAL[usize::from(b)] & JSON != 0) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
}

/// `text` as a quoted JSON string.
pub(super) fn json_quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    json_str(out, text);
    out.push(b'"');
}

/// Where a piece of line protocol goes decides what must be escaped in it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    /// Measurement: comma and space. The encoder's measurement is a literal
    /// that needs none; the position stays so the rules are whole and tested.
    #[cfg_attr(not(test), allow(dead_code))]
    Measurement,
    /// Tag key, tag value, field key: comma, equals sign and space.
    Key,
    /// String field value (inside double quotes): double quote.
    StringValue,
}

/// Append `text` escaped for `pos`. Backslashes are doubled everywhere, so a
/// value ending in `\` cannot swallow the delimiter after it; newlines, which
/// line protocol cannot carry, become spaces.
pub(super) fn influx(out: &mut Vec<u8>, text: &str, pos: Position) {
    let bytes = text.as_bytes();
    let mask = match pos {
        Position::Measurement => MEASUREMENT,
        Position::Key => KEY,
        Position::StringValue => STRING_VALUE,
    };
    // As in json_str: most names need nothing and are copied whole.
    if !bytes.iter().any(|&b| SPECIAL[usize::from(b)] & mask != 0) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
        let special = matches!(
            (pos, b),
            (_, b'\\')
                | (Position::Measurement, b',' | b' ')
                | (Position::Key, b',' | b'=' | b' ')
                | (Position::StringValue, b'"')
        );
        if special {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::encode::{Hex, Seconds, TcpFlags};

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// xorshift64*: reproducible inputs without a test dependency.
    pub(crate) fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn numbers_times_and_hex_match_display() {
        let mut next = rng(7);
        let mut values =
            vec![0u64, 1, 9, 10, 999_999_999, 1_000_000_000, u64::MAX, 1_611_931_294_010_481_600];
        values.extend((0..2000).map(|i| next() >> (i % 64)));
        // Every value of the four-digit path and its edge.
        values.extend(0..20_000);
        // Runs within one second and across second boundaries, for the clock's kept digits.
        let t = 1_611_931_294_010_481_600u64;
        values.extend((0..3000).map(|i| t + i * 999_983));
        values.extend((0..50).map(|i| (t / 1_000_000_000 + i) * 1_000_000_000 - 1 + i % 3));
        let mut clock = Clock::default();
        for v in values {
            assert_eq!(text(|o| int(o, v)), v.to_string());
            assert_eq!(text(|o| seconds(o, v)), Seconds(v).to_string());
            assert_eq!(text(|o| clock.seconds(o, v)), Seconds(v).to_string());
            assert_eq!(text(|o| clock.nanos(o, v)), v.to_string());
            let w = v as u16;
            assert_eq!(text(|o| ether_type(o, w)), format!("{w:#x}"));
            assert_eq!(text(|o| tcp_flags(o, v as u8)), TcpFlags(v as u8).to_string());
            let bytes = v.to_be_bytes();
            assert_eq!(
                text(|o| hex_bytes(o, &bytes[..(v % 9) as usize])),
                Hex(&bytes[..(v % 9) as usize]).to_string()
            );
            let m = Mac([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]);
            assert_eq!(text(|o| mac(o, m)), m.to_string());
        }
    }

    #[test]
    fn addresses_match_display() {
        let mut next = rng(11);
        let mut addrs: Vec<IpAddr> = vec![
            "0.0.0.0".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
            "::".parse().unwrap(),
            "::1".parse().unwrap(),
            "1::".parse().unwrap(),
            "::ffff:192.0.2.1".parse().unwrap(),
            "::192.0.2.1".parse().unwrap(),
            "2001:db8:0:0:1:0:0:1".parse().unwrap(),
            "2001:0:0:1:0:0:0:1".parse().unwrap(),
            "1:0:1:0:1:0:1:0".parse().unwrap(),
        ];
        for _ in 0..20_000 {
            let (a, b) = (next(), next());
            addrs.push(IpAddr::V4(Ipv4Addr::from(a as u32)));
            // Mostly zero groups, so that runs of every length and place occur.
            let mut groups = [0u16; 8];
            for (i, g) in groups.iter_mut().enumerate() {
                if (a >> (i * 2)) & 3 == 0 {
                    *g = (b >> (i * 8)) as u16 & if a & (1 << 40) != 0 { 0xff } else { 0xffff };
                }
            }
            if a & (1 << 50) != 0 {
                groups[..5].fill(0);
                groups[5] = 0xffff;
            }
            addrs.push(IpAddr::V6(Ipv6Addr::from(groups)));
        }
        for a in addrs {
            assert_eq!(text(|o| ip(o, a)), a.to_string());
        }
    }

    /// Strings with every ASCII byte, non-ASCII text and the characters that
    /// JSON and line protocol treat specially.
    pub(crate) fn hostile_strings() -> Vec<String> {
        let mut all: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        all.extend(
            [
                "",
                " ",
                "\\",
                "\"",
                "ends\\",
                "sw p,1=\"x\"\\",
                "naïve\nline\r",
                "tab\there",
                "\u{1f}\u{7f}",
                "é€𝄞",
                "a=b,c d",
                "\"quoted\"",
                "\\\"",
                "plain_name",
            ]
            .map(String::from),
        );
        all.push((0u8..0x80).map(char::from).collect());
        all
    }

    #[test]
    fn json_escaping_matches_serde_json() {
        for s in hostile_strings() {
            assert_eq!(text(|o| json_quoted(o, &s)), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn influx_escaping_matches_the_byte_at_a_time_rules() {
        // The rules as the encoder had them before the fast path.
        fn slow(text: &str, pos: Position) -> String {
            let mut out = String::new();
            for c in text.chars() {
                let c = if c == '\n' || c == '\r' { ' ' } else { c };
                let special = matches!(
                    (pos, c),
                    (_, '\\')
                        | (Position::Measurement, ',' | ' ')
                        | (Position::Key, ',' | '=' | ' ')
                        | (Position::StringValue, '"')
                );
                if special {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        for s in hostile_strings() {
            for pos in [Position::Measurement, Position::Key, Position::StringValue] {
                assert_eq!(text(|o| influx(o, &s, pos)), slow(&s, pos), "{s:?}");
            }
        }
    }
}
