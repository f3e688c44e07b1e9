//! The devlink path, for real: netdevsim reports devlink traps with real
//! packets in a QEMU guest, on kernels 5.10, 6.1 and 6.12, and the same
//! trapstream binary must report each of them exactly.
//!
//! tests/vm/build-kernel.sh builds (or takes from its cache, outside the
//! checkout) each kernel; tests/vm/run-guest.sh boots it with
//! tests/vm/guest-devlink.sh, which runs trapstream in several ways and
//! leaves its output and devlink's own counters for the assertions here.
//! Needs root, qemu-system-x86 and the kernel build tools (.ci/setup).

mod common;

use common::devlink::check_guest;
use common::vm::run_guest;

fn check_kernel(version: &str) {
    let dir = run_guest(version, "guest-devlink.sh", &[]);
    check_guest(version, &dir);
}

#[test]
fn devlink_traps_on_linux_5_10() {
    check_kernel("5.10");
}

#[test]
fn devlink_traps_on_linux_6_1() {
    check_kernel("6.1");
}

#[test]
fn devlink_traps_on_linux_6_12() {
    check_kernel("6.12");
}
