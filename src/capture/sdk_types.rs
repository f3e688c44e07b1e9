//! The taxonomy's type for every vendor SDK trap name, as entries of the
//! kernel's `sdk_trap_types` map. The SDK reports every trap as a drop; with
//! these the kernel side filters (`--trap-types`) and reports by what the trap
//! really is. A name not in the map stays a drop there.

use crate::abi;
use crate::record::trap_type_value;
use crate::taxonomy;

/// `struct ts_filter_key.kind` for a trap name.
const TS_FILTER_TRAP_NAME: u32 = 1;

/// One map entry: the key as the kernel compares it (kind and the name,
/// NUL-padded) and a TS_TRAP_TYPE_* value.
pub(super) fn entries() -> Vec<(abi::ts_filter_key, u8)> {
    taxonomy::sdk_trap_kinds()
        .map(|(name, kind)| {
            let mut key = abi::ts_filter_key { kind: TS_FILTER_TRAP_NAME, ..Default::default() };
            // Names are the table's own, all shorter than the key (a test
            // checks), so nothing is cut; the rest stays NUL as the kernel's
            // copy of the reported name is.
            for (dst, src) in key.name.iter_mut().zip(name.bytes()) {
                *dst = src as i8;
            }
            (key, trap_type_value(kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::Kind;

    /// Entries the kernel's map holds (`max_entries` in bpf/trapstream.bpf.c).
    const MAX_SDK_TRAP_TYPES: usize = 256;

    fn name_of(key: &abi::ts_filter_key) -> String {
        key.name.iter().take_while(|&&b| b != 0).map(|&b| b as u8 as char).collect()
    }

    #[test]
    fn every_sdk_name_with_its_type_value() {
        let entries = entries();
        assert!(entries.len() <= MAX_SDK_TRAP_TYPES, "{} entries", entries.len());
        let by_name: std::collections::HashMap<String, u8> =
            entries.iter().map(|(k, v)| (name_of(k), *v)).collect();
        assert_eq!(by_name.len(), entries.len(), "no name twice");
        assert_eq!(by_name.len(), taxonomy::sdk_trap_kinds().count());
        assert_eq!(by_name["blackhole_neigh"], 0, "drop");
        assert_eq!(by_name["unresolved_neigh"], 1, "exception, shared with devlink");
        assert_eq!(by_name["uc_loopback"], 2, "control, shared with devlink");
        assert_eq!(by_name["congestion_thresh_crossed"], 3, "threshold");
        assert_eq!(by_name["latency_thresh_crossed"], 3, "threshold");
        assert_eq!(by_name["packet_source_IP_can't_be_verified"], 0);
        for (key, value) in &entries {
            assert_eq!(key.kind, TS_FILTER_TRAP_NAME);
            let name = name_of(key);
            let kind = taxonomy::lookup(&name).map(|t| t.trap_type);
            assert_eq!(kind.map(trap_type_value), Some(*value), "{name}");
        }
        assert_eq!(
            [Kind::Drop, Kind::Exception, Kind::Control, Kind::Threshold].map(trap_type_value),
            [0, 1, 2, 3],
            "TS_TRAP_TYPE_* in include/trapstream.h"
        );
    }

    #[test]
    fn every_name_fits_the_key_with_its_terminating_nul() {
        // The kernel copies the reported name into 48 bytes, NUL included: a
        // longer name could never match, so the table must have none.
        let size = abi::ts_filter_key::default().name.len();
        assert_eq!(size, 48);
        for (name, _) in taxonomy::sdk_trap_kinds() {
            assert!(!name.is_empty() && name.len() < size, "{name}: {} bytes", name.len());
        }
        for (key, _) in entries() {
            assert_eq!(key.name[size - 1], 0);
        }
    }
}
