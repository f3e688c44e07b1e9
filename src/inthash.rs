//! A hasher for integer keys on per-record paths (port and protocol names,
//! drop reason names, the Influx encoder's recent timestamps): SipHash cost
//! ~20 ns a lookup there, several times per record. The keys are small
//! integers fixed by the system's files or the kernel's clock and BTF, not
//! chosen freely by a sender, so flooding resistance buys nothing; the mix
//! (splitmix64's finaliser) spreads keys whose low bits are all alike (a
//! coarse clock's zeros, ports that differ only in high bits).

use std::hash::{BuildHasherDefault, Hasher};

pub(crate) type IntMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;
pub(crate) type IntSet<K> = std::collections::HashSet<K, BuildHasherDefault<IntHasher>>;

#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Any other key: its bytes folded in (not used on hot paths).
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(v.into());
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(v.into());
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(v.into());
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }

    fn write_u64(&mut self, v: u64) {
        // Several integers (a tuple key) stay distinct: shift in, then mix at finish.
        self.0 = self.0.rotate_left(21) ^ v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_sets_work_with_it() {
        let mut m: IntMap<(u8, u16), u32> = IntMap::default();
        for p in 0..=u16::MAX {
            m.insert((p as u8 & 1, p), u32::from(p));
        }
        assert_eq!(m.get(&(1, 53)), Some(&53));
        assert_eq!(m.get(&(0, 53)), None);
        let s: IntSet<u64> = (0..10_000u64).map(|i| i * 1_000_000).collect();
        assert!(s.contains(&5_000_000_000) && !s.contains(&5_000_000_001));
    }
}
