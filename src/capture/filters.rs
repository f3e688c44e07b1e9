//! The configuration's filter lists as entries of the kernel's `filters` map.

use super::DropReasons;
use crate::config::{Filters, Sources};
use crate::error::{Error, Result};

const TS_FILTER_TRAP_NAME: u32 = 1;
const TS_FILTER_TRAP_GROUP: u32 = 2;
const TS_FILTER_PORT: u32 = 3;
const TS_FILTER_REASON: u32 = 4;
const TS_FILTER_NETNS: u32 = 5;
pub(super) const INCLUDE: u8 = 1;
const EXCLUDE: u8 = 2;
/// Entries the kernel's filter map holds.
pub const MAX_FILTER_ENTRIES: usize = 1024;

/// One filter map entry: (kind, key bytes, verdict bit).
pub(super) type FilterEntry = (u32, Vec<u8>, u8);

/// Filter lists that can match nothing with these sources, in words for the
/// operator. The programs judge trap names and groups on devlink traps only
/// and drop reasons on kernel drops only (ports and network namespaces on
/// both): such a list is not an error, but it is almost certainly not what
/// was meant.
pub fn unmatchable_filters(filters: &Filters, sources: Sources) -> Vec<String> {
    let mut out = Vec::new();
    let devlink_only = [
        ("include_trap_names", filters.include_trap_names.len()),
        ("exclude_trap_names", filters.exclude_trap_names.len()),
        ("include_trap_groups", filters.include_trap_groups.len()),
        ("exclude_trap_groups", filters.exclude_trap_groups.len()),
    ];
    let skb_only = [
        ("include_reasons", filters.include_reasons.len()),
        ("exclude_reasons", filters.exclude_reasons.len()),
    ];
    for (lists, wanted, source, other) in [
        (&devlink_only[..], sources.devlink, "devlink traps", "skb"),
        (&skb_only[..], sources.skb, "kernel drops", "devlink"),
    ] {
        for (key, len) in lists {
            if *len > 0 && !wanted {
                out.push(format!(
                    "filters.{key} applies to {source} only and matches nothing with --source {other}"
                ));
            }
        }
    }
    out
}

/// Check every name against what the kernel can match (for --check-config).
pub fn check_filters(filters: &Filters, reasons: &DropReasons) -> Result<()> {
    entries(filters, reasons).map(|_| ())
}

/// The map entries, with names checked against what the kernel can match.
pub(super) fn entries(filters: &Filters, reasons: &DropReasons) -> Result<Vec<FilterEntry>> {
    let mut out = Vec::new();
    let lists = [
        (TS_FILTER_TRAP_NAME, &filters.include_trap_names, INCLUDE, 48, "trap name"),
        (TS_FILTER_TRAP_NAME, &filters.exclude_trap_names, EXCLUDE, 48, "trap name"),
        (TS_FILTER_TRAP_GROUP, &filters.include_trap_groups, INCLUDE, 32, "trap group"),
        (TS_FILTER_TRAP_GROUP, &filters.exclude_trap_groups, EXCLUDE, 32, "trap group"),
        (TS_FILTER_PORT, &filters.include_ports, INCLUDE, 16, "port"),
        (TS_FILTER_PORT, &filters.exclude_ports, EXCLUDE, 16, "port"),
    ];
    for (kind, list, verdict, size, what) in lists {
        for name in list {
            // The kernel compares NUL-terminated names of a fixed size.
            if name.is_empty() || name.len() >= size {
                let name = crate::error::one_line(name);
                return Err(Error::Usage(format!("{what} '{name}' must be 1..{} characters", size - 1)));
            }
            out.push((kind, name.as_bytes().to_vec(), verdict));
        }
    }
    for (list, verdict) in [(&filters.include_reasons, INCLUDE), (&filters.exclude_reasons, EXCLUDE)] {
        for name in list {
            let value = reasons.value(name).ok_or_else(|| {
                let name = crate::error::one_line(name);
                Error::Usage(format!(
                    "skb drop reason '{name}' is not known to this kernel (enum skb_drop_reason)"
                ))
            })?;
            out.push((TS_FILTER_REASON, value.to_ne_bytes().to_vec(), verdict));
        }
    }
    for (list, verdict) in [(&filters.include_netns, INCLUDE), (&filters.exclude_netns, EXCLUDE)] {
        out.extend(list.iter().map(|ino| (TS_FILTER_NETNS, ino.to_ne_bytes().to_vec(), verdict)));
    }
    if out.len() > MAX_FILTER_ENTRIES {
        return Err(Error::Usage(format!("{} filter entries; at most {MAX_FILTER_ENTRIES}", out.len())));
    }
    Ok(out)
}
