//! The JSON and Influx encoders as they were before the hand-written
//! writers (serde_json and `core::fmt` for every value), kept for tests
//! only: `diff_tests` holds the new encoders to their bytes on generated
//! records.

pub(super) mod influx;
pub(super) mod json;
