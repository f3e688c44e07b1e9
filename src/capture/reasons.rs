//! skb drop reason names, from the running kernel's BTF: vmlinux for the
//! core reasons, and the modules' BTF (/sys/kernel/btf/<module>) for the
//! subsystems that live in modules (openvswitch, mac80211, ...).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::Path;

use libbpf_rs::btf::types::Enum;
use libbpf_rs::btf::Btf;
use libbpf_rs::AsRawLibbpf;

/// skb drop reason names, read from the running kernel's BTF.
#[derive(Debug, Default, Clone)]
pub struct DropReasons {
    // Looked up per kernel drop by the encoders: a fast hash.
    names: crate::inthash::IntMap<u32, String>,
}

const SUBSYS_SHIFT: u32 = 16;
const CORE_ENUM: &str = "skb_drop_reason";
const SUBSYS_ENUM: &str = "skb_drop_reason_subsys";

/// An enum as BTF describes it: its name and its members' names and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedEnum {
    pub name: String,
    pub members: Vec<(String, u32)>,
}

impl NamedEnum {
    /// Only the enums that can name drop reasons are worth keeping: the
    /// core enum, the subsystem list, and each subsystem's own
    /// `<subsystem>_drop_reason` (ovs_drop_reason, mac80211_drop_reason).
    fn is_relevant(name: &str) -> bool {
        name == CORE_ENUM || name == SUBSYS_ENUM || name.ends_with("_drop_reason")
    }
}

impl DropReasons {
    /// From vmlinux BTF and every module's BTF under /sys/kernel/btf.
    pub fn from_btf(btf: &Btf<'_>) -> DropReasons {
        let mut enums = vmlinux_enums(btf);
        enums.extend(module_enums(btf, Path::new("/sys/kernel/btf")));
        DropReasons::from_enums(&enums)
    }

    /// Core reasons by their name without SKB_DROP_REASON_. A subsystem
    /// reason carries its subsystem in the high bits and is named in the
    /// subsystem's own enum: a member of a `*_drop_reason` enum whose value
    /// falls in a known subsystem's range. The name anchors it: an unrelated
    /// enum whose values happen to sit in a subsystem's range is not adopted,
    /// and an enum that mixes ranges (mac80211's) is read member by member.
    pub(crate) fn from_enums(enums: &[NamedEnum]) -> DropReasons {
        let mut names = crate::inthash::IntMap::default();
        let mut subsystems = HashMap::new();
        for e in enums {
            if e.name == CORE_ENUM {
                for (name, value) in &e.members {
                    let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(name);
                    names.insert(*value, short.to_string());
                }
            } else if e.name == SUBSYS_ENUM {
                for (name, value) in &e.members {
                    if let Some(short) = name.strip_prefix("SKB_DROP_REASON_SUBSYS_") {
                        if *value > 0 && short != "NUM" {
                            subsystems.insert(*value, short.to_string());
                        }
                    }
                }
            }
        }
        for e in enums.iter().filter(|e| e.name != CORE_ENUM && e.name.ends_with("_drop_reason")) {
            for (name, value) in &e.members {
                if subsystems.contains_key(&(value >> SUBSYS_SHIFT)) {
                    names.entry(*value).or_insert_with(|| name.clone());
                }
            }
        }
        // A subsystem's base value names the subsystem even when its enum is
        // nowhere (a module that is not loaded).
        for (id, name) in &subsystems {
            names.entry(id << SUBSYS_SHIFT).or_insert_with(|| format!("SUBSYS_{name}"));
        }
        DropReasons { names }
    }

    /// The kernel's name for a reason, without the SKB_DROP_REASON_ prefix.
    pub fn name(&self, reason: Option<u32>) -> std::borrow::Cow<'_, str> {
        match reason {
            None => "UNKNOWN".into(),
            Some(r) => match self.names.get(&r) {
                Some(n) => n.as_str().into(),
                None => format!("UNKNOWN_{r}").into(),
            },
        }
    }

    /// The kernel's name for a reason it names, without allocating: what
    /// the encoders' per-reason cache compares against.
    pub fn known(&self, reason: u32) -> Option<&str> {
        self.names.get(&reason).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The value for a name (for tests and filters).
    pub fn value(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(_, n)| n.as_str() == name).map(|(v, _)| *v)
    }
}

fn vmlinux_enums(btf: &Btf<'_>) -> Vec<NamedEnum> {
    btf.type_by_kind::<Enum<'_>>()
        .filter_map(|e| {
            let name = e.name()?.to_str()?;
            NamedEnum::is_relevant(name).then(|| NamedEnum {
                name: name.to_string(),
                members: e
                    .iter()
                    .filter_map(|m| Some((m.name?.to_str()?.to_string(), m.value as u32)))
                    .collect(),
            })
        })
        .collect()
}

/// The relevant enums of every module's BTF in `dir` (split BTF on top of
/// vmlinux's). A module whose BTF cannot be read only loses its names.
fn module_enums(base: &Btf<'_>, dir: &Path) -> Vec<NamedEnum> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if entry.file_name() == "vmlinux" {
            continue;
        }
        match split_btf_enums(base, &entry.path()) {
            Ok(mut enums) => out.append(&mut enums),
            Err(e) => tracing::debug!("module BTF {}: {e}", entry.path().display()),
        }
    }
    out
}

/// libbpf-rs has no split-BTF parser, so this walks libbpf's own through
/// libbpf-sys: parse on top of `base`, visit the module's own type ids.
fn split_btf_enums(base: &Btf<'_>, path: &Path) -> std::io::Result<Vec<NamedEnum>> {
    use libbpf_rs::libbpf_sys as sys;
    use std::os::unix::ffi::OsStrExt;

    const BTF_KIND_ENUM: u32 = 6;
    const BTF_KIND_ENUM64: u32 = 19;
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let base = base.as_libbpf_object().as_ptr();
    // SAFETY: cpath is NUL-terminated; base is a live btf that outlives the
    // split one (both are dropped in this function's caller's order: the split
    // btf is freed below, before base goes away).
    let split = unsafe { sys::btf__parse_split(cpath.as_ptr(), base) };
    // libbpf returns NULL and sets errno on error (libbpf 1.x semantics).
    if split.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let name_at = |off: u32| -> Option<String> {
        // SAFETY: split is live; libbpf returns NULL or a NUL-terminated
        // string inside the BTF's (or its base's) string section.
        let p = unsafe { sys::btf__name_by_offset(split, off) };
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let mut out = Vec::new();
    // SAFETY: both are live btf objects.
    let (first, end) = unsafe { (sys::btf__type_cnt(base), sys::btf__type_cnt(split)) };
    for id in first..end {
        // SAFETY: id is below the type count, so libbpf returns a valid type.
        let t = unsafe { sys::btf__type_by_id(split, id) };
        if t.is_null() {
            continue;
        }
        // SAFETY: t points to a btf_type inside split's type data.
        let (name_off, info) = unsafe { ((*t).name_off, (*t).info) };
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind != BTF_KIND_ENUM && kind != BTF_KIND_ENUM64 {
            continue;
        }
        let Some(name) = name_at(name_off).filter(|n| NamedEnum::is_relevant(n)) else { continue };
        let mut members = Vec::with_capacity(vlen);
        for i in 0..vlen {
            // SAFETY: an enum type is followed by `vlen` btf_enum (or, for
            // ENUM64, btf_enum64) records, all inside the type data; the
            // records are 4-byte aligned like btf_type itself.
            let (off, value) = unsafe {
                if kind == BTF_KIND_ENUM {
                    let m = &*(t.add(1) as *const sys::btf_enum).add(i);
                    (m.name_off, m.val as u32)
                } else {
                    let m = &*(t.add(1) as *const sys::btf_enum64).add(i);
                    (m.name_off, m.val_lo32)
                }
            };
            if let Some(member) = name_at(off) {
                members.push((member, value));
            }
        }
        out.push(NamedEnum { name, members });
    }
    // SAFETY: split came from btf__parse_split and is freed once.
    unsafe { sys::btf__free(split) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, members: &[(&str, u32)]) -> NamedEnum {
        NamedEnum { name: name.into(), members: members.iter().map(|(n, v)| (n.to_string(), *v)).collect() }
    }

    #[test]
    fn subsystem_reasons_come_from_their_own_enums_only() {
        let enums = [
            e(CORE_ENUM, &[("SKB_DROP_REASON_NOT_SPECIFIED", 2), ("SKB_DROP_REASON_NO_SOCKET", 3)]),
            e(
                SUBSYS_ENUM,
                &[
                    ("SKB_DROP_REASON_SUBSYS_CORE", 0),
                    ("SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1),
                    ("SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 3),
                    ("SKB_DROP_REASON_SUBSYS_NUM", 4),
                ],
            ),
            e(
                "ovs_drop_reason",
                &[("OVS_DROP_LAST_ACTION", 3 << 16), ("OVS_DROP_ACTION_ERROR", (3 << 16) + 1)],
            ),
            // mac80211 mixes plain values (RX_CONTINUE) with its subsystem's.
            e("mac80211_drop_reason", &[("RX_CONTINUE", 1), ("RX_DROP_U_MIC_FAIL", (1 << 16) + 5)]),
            // An unrelated enum that happens to sit in a subsystem's range
            // must not name anything (the old heuristic adopted it).
            e("some_register_layout", &[("REG_A", 3 << 16), ("REG_B", (3 << 16) + 7)]),
        ];
        let r = DropReasons::from_enums(&enums);
        assert_eq!(r.name(Some(3)), "NO_SOCKET");
        assert_eq!(r.name(Some(3 << 16)), "OVS_DROP_LAST_ACTION");
        assert_eq!(r.name(Some((3 << 16) + 1)), "OVS_DROP_ACTION_ERROR");
        assert_eq!(r.name(Some((1 << 16) + 5)), "RX_DROP_U_MIC_FAIL");
        assert_eq!(r.name(Some(1 << 16)), "SUBSYS_MAC80211_UNUSABLE", "a subsystem without its enum");
        assert_eq!(r.name(Some((3 << 16) + 7)), format!("UNKNOWN_{}", (3 << 16) + 7));
        assert_eq!(r.name(Some(1)), "UNKNOWN_1", "RX_CONTINUE is not a drop reason");
        assert_eq!(r.value("NOT_SPECIFIED"), Some(2));
    }

    #[test]
    fn the_running_kernel_names_its_core_reasons() {
        let Ok(btf) = Btf::from_vmlinux() else { panic!("tests need /sys/kernel/btf/vmlinux") };
        let r = DropReasons::from_btf(&btf);
        assert_eq!(r.name(r.value("NO_SOCKET")), "NO_SOCKET");
        assert!(r.len() > 10, "{} names", r.len());
    }
}
