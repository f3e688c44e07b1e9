//! Most of a record is fixed by what was reported — the trap (name, group,
//! type, device) or the kernel's drop reason: description, severity,
//! dropType, dropReason, message, trap names, source. Each encoder escapes
//! those texts once into byte fragments and copies the fragments per record,
//! instead of classifying and escaping them again for every packet.
//!
//! The cache is direct-mapped (a fixed number of slots, a colliding key
//! replaces the older entry), so its memory is bounded whatever the kernel
//! reports. Entries depend on the context too (taxonomy overrides, drop
//! reason names): each entry keeps what it was built from and is rebuilt
//! when the context no longer says the same, so changing a `Context` between
//! records never yields stale text.

use super::{Context, Summary};
use crate::config::TaxonomyOverride;
use crate::record::{FixedStr, Origin, Record};
use crate::taxonomy::Kind;

/// Enough for every trap a switch reports at once (devlink defines ~80, the
/// vendor SDK ~200, few are active together); a collision only costs a rebuild.
const SLOTS: usize = 64;

/// What decides a record's fixed texts, apart from the context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Devlink { name: FixedStr<48>, group: FixedStr<32>, kind: Kind, bus: FixedStr<16>, device: FixedStr<32> },
    Skb { reason: Option<u32> },
}

impl Key {
    fn of(origin: &Origin) -> Key {
        match origin {
            Origin::Devlink(t) => Key::Devlink {
                name: t.trap_name,
                group: t.trap_group,
                kind: t.trap_type,
                bus: t.bus_name,
                device: t.device_name,
            },
            Origin::Skb(d) => Key::Skb { reason: d.reason },
        }
    }

    /// `*self == Key::of(origin)`, without building (copying) the key.
    fn is(&self, origin: &Origin) -> bool {
        match (self, origin) {
            (Key::Devlink { name, group, kind, bus, device }, Origin::Devlink(t)) => {
                *name == t.trap_name
                    && *group == t.trap_group
                    && *kind == t.trap_type
                    && *bus == t.bus_name
                    && *device == t.device_name
            }
            (Key::Skb { reason }, Origin::Skb(d)) => *reason == d.reason,
            _ => false,
        }
    }

    fn slot(&self) -> usize {
        let h = match self {
            Key::Devlink { name, group, kind, device, .. } => {
                let h = mix(*kind as u64, name.as_bytes());
                mix(mix(h, group.as_bytes()), device.as_bytes())
            }
            Key::Skb { reason } => mix(u64::from(reason.is_some()), &reason.unwrap_or(0).to_le_bytes()),
        };
        (h >> 40) as usize % SLOTS
    }
}

/// A multiplicative hash over 8-byte words: a slot index, not a defence
/// against chosen keys (a collision costs a rebuild, never a wrong record).
fn mix(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    (h.rotate_left(5) ^ u64::from_le_bytes(last) ^ bytes.len() as u64).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// The part of the context an entry was built from.
#[derive(PartialEq)]
enum Basis {
    /// The configuration file's override for the trap, if any.
    Override(Option<TaxonomyOverride>),
    /// The kernel's name for the drop reason, if it names it.
    Reason(Option<String>),
}

impl Basis {
    fn of(ctx: &Context, origin: &Origin) -> Basis {
        match origin {
            Origin::Devlink(t) => Basis::Override(ctx.taxonomy.get(t.trap_name.as_str()).cloned()),
            Origin::Skb(d) => {
                Basis::Reason(d.reason.and_then(|r| ctx.drop_reasons.known(r)).map(String::from))
            }
        }
    }

    /// Whether the context still says what it said when the entry was built
    /// (without cloning or allocating: this runs per record).
    fn holds(&self, ctx: &Context, origin: &Origin) -> bool {
        match (self, origin) {
            (Basis::Override(o), Origin::Devlink(t)) => {
                // An empty map (the usual case) needs no lookup.
                if ctx.taxonomy.is_empty() {
                    o.is_none()
                } else {
                    ctx.taxonomy.get(t.trap_name.as_str()) == o.as_ref()
                }
            }
            (Basis::Reason(n), Origin::Skb(d)) => {
                d.reason.and_then(|r| ctx.drop_reasons.known(r)) == n.as_deref()
            }
            _ => false,
        }
    }
}

struct Entry<F> {
    key: Key,
    basis: Basis,
    fragments: F,
}

/// Fragments of type `F` (one encoder's), per trap or drop reason.
pub(super) struct TrapCache<F> {
    slots: Vec<Option<Box<Entry<F>>>>,
    /// The slot used last: runs of one trap skip hashing the key.
    last: usize,
}

impl<F> Default for TrapCache<F> {
    fn default() -> Self {
        TrapCache { slots: (0..SLOTS).map(|_| None).collect(), last: 0 }
    }
}

impl<F> TrapCache<F> {
    /// The fragments for `rec`, built by `build` from the record's summary
    /// when no valid entry exists. `build` must use only what the key and
    /// the context decide (not ports, packet or times).
    pub(super) fn get(
        &mut self,
        ctx: &Context,
        rec: &Record,
        build: impl FnOnce(&Summary<'_>, &Record) -> F,
    ) -> &F {
        // Mostly the same trap as the last record: compared in place, as
        // building its key (five names) cost more than the rest of a hit.
        let same = matches!(&self.slots[self.last], Some(e) if e.key.is(&rec.origin));
        if !same {
            self.last = Key::of(&rec.origin).slot();
        }
        let slot = &mut self.slots[self.last];
        let valid =
            matches!(slot, Some(e) if (same || e.key.is(&rec.origin)) && e.basis.holds(ctx, &rec.origin));
        if !valid {
            *slot = None;
        }
        let entry = slot.get_or_insert_with(|| {
            let fragments = build(&Summary::of(ctx, rec), rec);
            Box::new(Entry { key: Key::of(&rec.origin), basis: Basis::of(ctx, &rec.origin), fragments })
        });
        &entry.fragments
    }
}

/// A context value escaped once (the device IP): rebuilt when it changes.
#[derive(Default)]
pub(super) struct Escaped {
    raw: String,
    escaped: Vec<u8>,
    built: bool,
}

impl Escaped {
    pub(super) fn get(&mut self, raw: &str, escape: impl FnOnce(&mut Vec<u8>, &str)) -> &[u8] {
        if !self.built || self.raw != raw {
            self.raw.clear();
            self.raw.push_str(raw);
            self.escaped.clear();
            escape(&mut self.escaped, raw);
            self.built = true;
        }
        &self.escaped
    }
}
