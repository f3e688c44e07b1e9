//! A ring-buffer record as the poll thread receives it: whatever the bytes,
//! decoding returns Ok or Err, and a decoded record encodes to well-formed
//! JSON, InfluxDB line protocol and text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trapstream::record::{self, EVENT_SIZE, SKB_EVENT_SIZE};

fuzz_target!(|data: &[u8]| {
    // The clock offset comes from the 8 bytes after the record, so that the
    // wall time reaches both ends of its range; zero when there are none.
    let offset = data
        .get(EVENT_SIZE..EVENT_SIZE + 8)
        .map_or(0, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    match record::decode(data, offset) {
        Ok(rec) => trapstream_fuzz::check_record(&rec, data.get(EVENT_SIZE + 8..).unwrap_or(&[])),
        Err(_) => {}
    }
    // Only a kernel drop's record may be shorter than the whole event.
    let devlink = data.get(1) == Some(&1);
    if data.len() < SKB_EVENT_SIZE || (devlink && data.len() < EVENT_SIZE) {
        assert!(record::decode(data, offset).is_err(), "a {}-byte record decoded", data.len());
    }
});
