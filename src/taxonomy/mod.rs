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

/// devlink trap type (enum devlink_trap_type): what a devlink driver can
/// say. Records carry a [`Kind`], which adds the vendor SDK's threshold.
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
/// Records carry it as the type the kernel side reported: devlink's types map
/// onto it one to one, and for the SDK's traps the kernel side takes it from
/// this table (user space fills its `sdk_trap_types` map from [`sdk_trap_kinds`]).
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

mod devlink;
mod sdk;

pub use devlink::TRAPS;
use sdk::UNKNOWN_SDK_TRAP_DESCRIPTION;
pub use sdk::{SDK_DEVLINK_BUS, SDK_GROUPS, SDK_SHARED_NAMES, SDK_TRAPS};

/// Every trap name the vendor SDK reports, with the table's type for it:
/// the kernel side cannot tell an SDK exception or threshold event from a
/// drop by the type the SDK passes (always drop), so user space gives it these.
pub fn sdk_trap_kinds() -> impl Iterator<Item = (&'static str, Kind)> {
    let shared = SDK_SHARED_NAMES.iter().filter_map(|name| lookup(name));
    SDK_TRAPS.iter().chain(shared).map(|t| (t.name, t.trap_type))
}

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
/// Exception -> "Warning", Control -> "Info", Threshold -> "Notice", as the
/// SDK's threshold events in the table).
pub fn classify(trap_name: &str, trap_type: impl Into<Kind>) -> Taxon<'_> {
    match lookup(trap_name) {
        Some(info) => {
            Taxon { drop_reason: info.drop_reason, description: info.description, severity: info.severity }
        }
        None => Taxon {
            drop_reason: trap_name,
            description: UNKNOWN_TRAP_DESCRIPTION,
            severity: match trap_type.into() {
                Kind::Drop => "Error",
                Kind::Exception => "Warning",
                Kind::Control => "Info",
                Kind::Threshold => "Notice",
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
            Taxon {
                // An empty name (a driver's bug) would make an empty reason: say N/A, as for any unknown.
                drop_reason: if trap_name.is_empty() { "N/A" } else { trap_name },
                description: UNKNOWN_SDK_TRAP_DESCRIPTION,
                severity: "Error",
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const DEVLINK_TRAPS_TSV: &str = include_str!("../../tests/data/devlink-traps.tsv");
    const WJH_REASONS_TSV: &str = include_str!("../../tests/data/wjh-reasons.tsv");
    const SDK_TRAPS_TSV: &str = include_str!("../../tests/data/sdk-traps.tsv");

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
        let mut shared = Vec::new();
        for row in sdk_rows() {
            let (name, group) = (row[0], row[1]);
            assert!(SDK_GROUPS.contains(&group), "{name}: group {group:?} is not an SDK group");
            let info = lookup(name).unwrap_or_else(|| panic!("SDK trap {name} has no taxonomy entry"));
            let in_sdk_table = SDK_TRAPS.iter().any(|t| t.name == name);
            if devlink.contains(name) {
                // Shared with devlink: the one entry is the devlink one.
                assert!(!in_sdk_table, "{name} is a devlink trap and must not be repeated in SDK_TRAPS");
                assert!(TRAPS.iter().any(|t| std::ptr::eq(t, info)), "{name}");
                shared.push(name);
            } else {
                assert!(in_sdk_table, "{name} must be in SDK_TRAPS");
                assert_eq!(info.group, group, "group of {name}");
                sdk_only.push(name);
            }
        }
        let table: Vec<_> = SDK_TRAPS.iter().map(|t| t.name).collect();
        assert_eq!(table, sdk_only, "SDK_TRAPS: exactly the SDK-only names, in the TSV's order");
        assert_eq!(
            SDK_SHARED_NAMES, shared,
            "SDK_SHARED_NAMES: exactly the shared names, in the TSV's order"
        );
    }

    #[test]
    fn sdk_trap_kinds_cover_every_sdk_name_with_the_table_type() {
        let kinds: HashMap<_, _> = sdk_trap_kinds().collect();
        let rows = sdk_rows();
        assert_eq!(kinds.len(), rows.len(), "one type per SDK name, none lost or repeated");
        for row in &rows {
            assert_eq!(kinds.get(row[0]), lookup(row[0]).map(|t| &t.trap_type), "{}", row[0]);
        }
        assert_eq!(kinds["unresolved_neigh"], Kind::Exception);
        assert_eq!(kinds["uc_loopback"], Kind::Control);
        assert_eq!(kinds["congestion_thresh_crossed"], Kind::Threshold);
        assert_eq!(kinds["blackhole_neigh"], Kind::Drop);
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
        assert_eq!(classify_sdk("").1.drop_reason, "N/A");
        assert_eq!(Kind::Threshold.as_str(), "threshold");
        assert_eq!(Kind::from(TrapType::Exception), Kind::Exception);
        // A trap the table does not know that the kernel side typed as a threshold.
        assert_eq!(classify("some_future_sdk_trap", Kind::Threshold).severity, "Notice");
    }
}
