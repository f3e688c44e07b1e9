//! A drained flow-table value (-u): whatever the bytes, decoding returns Ok or
//! Err, and a decoded record, counts included, encodes to well-formed output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trapstream::record::{self, FlowKind, FLOW_SIZE};

fuzz_target!(|data: &[u8]| {
    let offset =
        data.get(FLOW_SIZE..FLOW_SIZE + 8).map_or(0, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    match record::decode_flow(data, offset) {
        Ok(rec) => {
            assert!(rec.flow.is_some_and(|f| f.kind == FlowKind::Flow), "a flow record without its counts: {rec:?}");
            trapstream_fuzz::check_record(&rec, data.get(FLOW_SIZE + 8..).unwrap_or(&[]));
        }
        Err(_) => assert!(data.len() >= FLOW_SIZE || record::decode_flow(data, offset).is_err()),
    }
    if data.len() < FLOW_SIZE {
        assert!(record::decode_flow(data, offset).is_err(), "a {}-byte flow value decoded", data.len());
    }
});
