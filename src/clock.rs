//! Kernel CLOCK_BOOTTIME → wall-clock time.
//!
//! The BPF programs stamp events with bpf_ktime_get_boot_ns() when the packet
//! is reported; user space converts with an offset sampled from both clocks.
//! The offset is re-sampled periodically so NTP steps are followed, and shared
//! with the decoder through an atomic.

use std::sync::atomic::{AtomicI64, Ordering};

fn now_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec; both clock ids always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// REALTIME - BOOTTIME, in ns. Takes the pair read closest together of a few
/// tries, so a preemption between the two reads does not skew the offset.
pub fn sample_offset() -> i64 {
    let mut best = (i64::MAX, 0);
    for _ in 0..5 {
        let b0 = now_ns(libc::CLOCK_BOOTTIME);
        let real = now_ns(libc::CLOCK_REALTIME);
        let b1 = now_ns(libc::CLOCK_BOOTTIME);
        let gap = b1 - b0;
        if gap < best.0 {
            best = (gap, real - (b0 + gap / 2));
        }
    }
    best.1
}

/// The offset shared between the thread that refreshes it and the decoder.
#[derive(Debug)]
pub struct BootToWall(AtomicI64);

impl BootToWall {
    pub fn new() -> Self {
        BootToWall(AtomicI64::new(sample_offset()))
    }

    pub fn refresh(&self) {
        self.0.store(sample_offset(), Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for BootToWall {
    fn default() -> Self {
        Self::new()
    }
}

/// CLOCK_BOOTTIME now, as the kernel's bpf_ktime_get_boot_ns() would read it.
pub fn boot_ns() -> u64 {
    now_ns(libc::CLOCK_BOOTTIME) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_maps_boottime_to_now() {
        let off = sample_offset();
        let wall = boot_ns() as i64 + off;
        let real = now_ns(libc::CLOCK_REALTIME);
        assert!((wall - real).abs() < 5_000_000, "wall {wall} vs realtime {real}");
    }
}
