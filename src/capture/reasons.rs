//! skb drop reason names, from the running kernel's BTF.

use std::collections::HashMap;

use libbpf_rs::btf::types::Enum;
use libbpf_rs::btf::Btf;

/// skb drop reason names, read from the running kernel's BTF.
#[derive(Debug, Default, Clone)]
pub struct DropReasons {
    names: HashMap<u32, String>,
}

const SUBSYS_SHIFT: u32 = 16;

impl DropReasons {
    pub fn from_btf(btf: &Btf<'_>) -> DropReasons {
        let mut names = HashMap::new();
        if let Some(reasons) = btf.type_by_name::<Enum<'_>>("skb_drop_reason") {
            for m in reasons.iter() {
                if let Some(name) = m.name.and_then(|n| n.to_str()) {
                    let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(name);
                    names.insert(m.value as u32, short.to_string());
                }
            }
        }
        // Subsystem reasons (e.g. openvswitch, mac80211) carry the subsystem in
        // the high bits and are named in the subsystem's own enum: find every
        // enum whose values all sit in one known subsystem's range.
        let mut subsystems = HashMap::new();
        if let Some(subsys) = btf.type_by_name::<Enum<'_>>("skb_drop_reason_subsys") {
            for m in subsys.iter() {
                if let Some(name) = m.name.and_then(|n| n.to_str()) {
                    if let Some(short) = name.strip_prefix("SKB_DROP_REASON_SUBSYS_") {
                        if m.value > 0 && short != "NUM" {
                            subsystems.insert(m.value as u32, short.to_string());
                        }
                    }
                }
            }
        }
        if !subsystems.is_empty() {
            for e in btf.type_by_kind::<Enum<'_>>() {
                let first = e.iter().next().map(|m| (m.value as u32) >> SUBSYS_SHIFT);
                let Some(sub) = first.filter(|s| subsystems.contains_key(s)) else { continue };
                if e.name().is_some_and(|n| n == "skb_drop_reason_subsys")
                    || !e.iter().all(|m| (m.value as u32) >> SUBSYS_SHIFT == sub)
                {
                    continue;
                }
                for m in e.iter() {
                    if let Some(name) = m.name.and_then(|n| n.to_str()) {
                        names.entry(m.value as u32).or_insert_with(|| name.to_string());
                    }
                }
            }
        }
        let subsystems = subsystems;
        DropReasons { names: names.into_iter().chain(subsystem_fallbacks(&subsystems)).collect() }
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

/// A subsystem's base value names the subsystem even when its enum is not in
/// vmlinux BTF (a module that is not loaded).
fn subsystem_fallbacks(subsystems: &HashMap<u32, String>) -> Vec<(u32, String)> {
    subsystems.iter().map(|(id, name)| (id << SUBSYS_SHIFT, format!("SUBSYS_{name}"))).collect()
}
