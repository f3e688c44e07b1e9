//! Failures that repeat for as long as an output is down (a collector gone,
//! a full disk): logged at most once per interval, with how many were not,
//! so that the log says what is wrong without flooding.

use std::fmt::Display;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(10);

pub struct ErrorLog {
    /// Who failed, at the head of the line ("send failed", "pcap").
    prefix: &'static str,
    /// What is lost ("records", "packets").
    unit: &'static str,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub fn new(prefix: &'static str, unit: &'static str) -> ErrorLog {
        ErrorLog { prefix, unit, last: None, suppressed: 0 }
    }

    pub fn report(&mut self, what: &dyn Display, lost: u64) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            "{}: {what}: {lost} {} lost ({} more failures since the last report)",
            self.prefix,
            self.unit,
            self.suppressed
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}
