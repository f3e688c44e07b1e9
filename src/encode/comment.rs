//! The per-packet comment of a pcapng capture (`--pcap`): what the kernel
//! said about the packet, in the words and names the JSON records use.

use std::fmt::Write as _;

use super::{Context, Summary};
use crate::record::{Origin, Record};

/// One line, `key=value` pairs; values with spaces are quoted. Appended to `out`.
pub fn pcap_comment(ctx: &Context, rec: &Record, out: &mut String) {
    let s = Summary::of(ctx, rec);
    let start = out.len();
    match &rec.origin {
        Origin::Devlink(trap) => {
            let _ = write!(
                out,
                "trapName={} trapGroup={} trapType={} dropReason=\"{}\"",
                trap.trap_name.as_str(),
                trap.trap_group.as_str(),
                s.trap_type,
                s.drop_reason.replace('"', "'")
            );
            if s.devlink_device {
                let _ =
                    write!(out, " devlinkDevice={}/{}", trap.bus_name.as_str(), trap.device_name.as_str());
            }
            if let Some(cookie) = trap.cookie {
                out.push_str(" cookie=0x");
                for b in cookie.captured() {
                    let _ = write!(out, "{b:02x}");
                }
                if cookie.is_truncated() {
                    let _ = write!(out, " cookieLength={}", cookie.len);
                }
            }
        }
        Origin::Skb(_) => {
            let _ = write!(out, "skbDropReason={}", s.drop_reason);
        }
    }
    let _ = write!(out, " dropType={} severity={} message={}", s.drop_type, s.severity, s.message);
    if let Some(port) = s.egress_port {
        let _ = write!(out, " egressPort={port}");
    }
    // Kernel names and operator overrides may hold control characters or
    // quotes: one packet, one line, its quoted value closed where it ends.
    let cleaned: String = out[start..].chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    out.truncate(start);
    out.push_str(&cleaned);
}
