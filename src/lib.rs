//! trapstream: packet traps from switch ASICs (devlink) and the kernel's own
//! drops, dissected in eBPF and streamed to a collector.
//!
//! Data flows one way: `capture` (BPF programs, ring buffer) → `record`
//! (decode into owned records) → channel → `sender` (`encode` + `transport`),
//! and with --pcap a second channel → `pcap` (pcapng files or a pipe).
//! `config` turns flags into validated settings; `stats` accounts for every
//! event. `top` takes the sender's place for the live terminal view.

pub mod abi;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod config;
pub mod encode;
mod errlog;
pub mod error;
mod inthash;
pub mod netdb;
pub mod pcap;
pub mod record;
pub mod sender;
pub mod stats;
pub mod taxonomy;
pub mod top;
pub mod transport;

pub use error::{Error, Result};
