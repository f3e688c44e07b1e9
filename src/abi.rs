//! The kernel ABI (include/trapstream.h) as the skeleton generates it from
//! the BPF object's BTF. A leaf: it imports nothing from the crate, so that
//! every stage can name the raw types without depending on another stage.

pub(crate) mod skel {
    #![allow(clippy::all, dead_code, unused_imports, non_camel_case_types, non_snake_case)]
    include!(concat!(env!("OUT_DIR"), "/trapstream.skel.rs"));
}

pub use skel::types::{
    ts_event, ts_filter_key, ts_flow, ts_flow_count, ts_flow_key, ts_flow_key4, ts_packet, ts_raw, ts_wjh,
};

// SAFETY: these are repr(C) structs of integers and integer arrays with no
// padding (their sizes are asserted equal to the C layout in `record`), so
// every byte pattern is a valid value.
unsafe impl plain::Plain for ts_event {}
// SAFETY: as above.
unsafe impl plain::Plain for ts_packet {}
// SAFETY: as above (u64 counters followed by a ts_event).
unsafe impl plain::Plain for ts_flow {}
// SAFETY: as above.
unsafe impl plain::Plain for ts_flow_key {}
// SAFETY: as above.
unsafe impl plain::Plain for ts_filter_key {}
// SAFETY: as above (its size is asserted in `record::raw`).
unsafe impl plain::Plain for ts_raw {}
