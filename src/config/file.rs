//! The configuration file's schema (every flag, `_` for `-`, plus filters
//! and taxonomy overrides) and the filters it names.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::setting::{Number, RateText};
use super::Filters;
use crate::cli::{Format, Source, TransportArg, TrapTypeArg};
use crate::error::{Error, Result};

/// A network namespace by inode number or by its name under /run/netns.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum NetnsRef {
    Inode(u32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTaxonomy {
    pub(super) drop_reason: Option<String>,
    pub(super) description: Option<String>,
    pub(super) severity: Option<Spanned<String>>,
    pub(super) message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileFilters {
    pub(super) include_trap_names: Option<Vec<String>>,
    pub(super) exclude_trap_names: Option<Vec<String>>,
    pub(super) include_trap_groups: Option<Vec<String>>,
    pub(super) exclude_trap_groups: Option<Vec<String>>,
    pub(super) include_ports: Option<Vec<String>>,
    pub(super) exclude_ports: Option<Vec<String>>,
    pub(super) include_reasons: Option<Vec<String>>,
    pub(super) exclude_reasons: Option<Vec<String>>,
    pub(super) include_netns: Option<Spanned<Vec<NetnsRef>>>,
    pub(super) exclude_netns: Option<Spanned<Vec<NetnsRef>>>,
}

/// The file's schema: every flag (long name, `_` for `-`), plus filters and
/// taxonomy overrides. Unknown keys are errors, not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) collector_ip: Option<Spanned<String>>,
    pub(super) collector_port: Option<Spanned<i64>>,
    pub(super) interval: Option<Spanned<Number>>,
    pub(super) batch_size: Option<Spanned<i64>>,
    pub(super) device_ip: Option<Spanned<String>>,
    pub(super) format: Option<Spanned<Format>>,
    pub(super) unique_interval: Option<Spanned<Number>>,
    pub(super) retry_timeout: Option<Spanned<Number>>,
    pub(super) verbose: Option<bool>,
    pub(super) stdout: Option<bool>,
    pub(super) source: Option<Spanned<Source>>,
    pub(super) trap_types: Option<Spanned<Vec<TrapTypeArg>>>,
    pub(super) max_datagram: Option<Spanned<i64>>,
    pub(super) stats_interval: Option<Spanned<Number>>,
    pub(super) ring_size: Option<Spanned<i64>>,
    pub(super) channel_depth: Option<Spanned<i64>>,
    pub(super) lru_size: Option<Spanned<i64>>,
    pub(super) exemplars: Option<Spanned<i64>>,
    pub(super) transport: Option<Spanned<TransportArg>>,
    pub(super) rate_limit: Option<Spanned<RateText>>,
    pub(super) tcp_backlog: Option<Spanned<i64>>,
    pub(super) pcap: Option<Spanned<String>>,
    pub(super) pcap_snaplen: Option<Spanned<i64>>,
    pub(super) pcap_rotate_size: Option<Spanned<i64>>,
    pub(super) pcap_rotate_files: Option<Spanned<i64>>,
    pub(super) filters: Option<FileFilters>,
    pub(super) taxonomy: Option<HashMap<String, FileTaxonomy>>,
}

/// The file and its text, for turning byte offsets into line numbers.
pub(super) struct Source_<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Source_<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }
}

pub(super) fn file_filters(f: &FileFilters, src: &Source_<'_>) -> Result<Filters> {
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let netns = |v: &Option<Spanned<Vec<NetnsRef>>>, key: &'static str| -> Result<Vec<u32>> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let line = src.line(v.span().start);
        v.get_ref()
            .iter()
            .map(|r| match r {
                NetnsRef::Inode(ino) => Ok(*ino),
                NetnsRef::Name(name) => std::fs::metadata(Path::new("/run/netns").join(name))
                    .map(|m| m.ino() as u32)
                    .map_err(|e| Error::File {
                        path: src.path.to_path_buf(),
                        message: format!("line {line}: filters.{key}: network namespace '{name}': {e}"),
                    }),
            })
            .collect()
    };
    Ok(Filters {
        include_trap_names: list(&f.include_trap_names),
        exclude_trap_names: list(&f.exclude_trap_names),
        include_trap_groups: list(&f.include_trap_groups),
        exclude_trap_groups: list(&f.exclude_trap_groups),
        include_ports: list(&f.include_ports),
        exclude_ports: list(&f.exclude_ports),
        include_reasons: list(&f.include_reasons),
        exclude_reasons: list(&f.exclude_reasons),
        include_netns: netns(&f.include_netns, "include_netns")?,
        exclude_netns: netns(&f.exclude_netns, "exclude_netns")?,
    })
}
