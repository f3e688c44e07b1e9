//! --pcap and its companions: where the capture goes, how much of each
//! packet, and how files rotate.

use std::path::PathBuf;

use toml::Spanned;

use super::{parse_count, usage, FileConfig, Setting};
use crate::cli::Cli;
use crate::error::Result;

/// Default bytes per packet: what the dissector copies anyway (TS_SNAP_LEN).
pub const DEFAULT_SNAP_LEN: u32 = 256;
/// Most bytes per packet (TS_RAW_MAX): each event's ring record grows by this much.
pub const MAX_SNAP_LEN: u32 = 1024;
/// Smallest --pcap-rotate-size: room for a header and a few packets.
pub const MIN_ROTATE_SIZE: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapPath {
    /// `-`: standard output, for a pipe.
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapConfig {
    pub path: PcapPath,
    /// Bytes of each packet the kernel copies, 1..=MAX_SNAP_LEN.
    pub snap_len: u32,
    /// Start a new file before one grows past this many bytes.
    pub rotate_size: Option<u64>,
    /// Files kept when rotating, the current one included.
    pub rotate_files: usize,
}

pub(super) type SettingFn<'s, 'a> = dyn Fn(
        &'static str,
        &Option<String>,
        &'static str,
        Option<(String, std::ops::Range<usize>)>,
    ) -> Option<Setting<'a>>
    + 's;

/// --pcap and its companions; they are checked even without --pcap, as
/// every setting is.
pub(super) fn pcap_config<'a>(
    cli: &Cli,
    parsed: &FileConfig,
    setting: &SettingFn<'_, 'a>,
) -> Result<Option<PcapConfig>> {
    fn spanned<T: ToString>(v: &Option<Spanned<T>>) -> Option<(String, std::ops::Range<usize>)> {
        v.as_ref().map(|v| (v.get_ref().to_string(), v.span()))
    }
    let snap = setting("--pcap-snaplen", &cli.pcap_snaplen, "pcap_snaplen", spanned(&parsed.pcap_snaplen));
    let snap_len = match &snap {
        Some(s) => parse_count(s, 1, MAX_SNAP_LEN as usize)? as u32,
        None => DEFAULT_SNAP_LEN,
    };
    let size = setting(
        "--pcap-rotate-size",
        &cli.pcap_rotate_size,
        "pcap_rotate_size",
        spanned(&parsed.pcap_rotate_size),
    );
    let rotate_size = match &size {
        Some(s) => Some(parse_count(s, MIN_ROTATE_SIZE as usize, 1 << 40)? as u64),
        None => None,
    };
    let files = setting(
        "--pcap-rotate-files",
        &cli.pcap_rotate_files,
        "pcap_rotate_files",
        spanned(&parsed.pcap_rotate_files),
    );
    let rotate_files = match &files {
        Some(s) => parse_count(s, 1, 100_000)?,
        None => 10,
    };
    let Some(path) = setting("--pcap", &cli.pcap, "pcap", spanned(&parsed.pcap)) else {
        if let Some(s) = snap.iter().chain(&size).chain(&files).next() {
            return Err(s.error("needs --pcap"));
        }
        return Ok(None);
    };
    let path = match path.text.as_str() {
        "" => return Err(path.error("needs a file name, or - for standard output")),
        "-" => PcapPath::Stdout,
        text => PcapPath::File(PathBuf::from(text)),
    };
    if path == PcapPath::Stdout {
        if let Some(s) = size.as_ref().or(files.as_ref()) {
            return Err(s.error("rotates files: it does not apply to --pcap - (standard output)"));
        }
    }
    if files.is_some() && size.is_none() {
        return Err(usage("--pcap-rotate-files needs --pcap-rotate-size"));
    }
    Ok(Some(PcapConfig { path, snap_len, rotate_size, rotate_files }))
}
