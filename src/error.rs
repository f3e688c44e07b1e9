//! The one error type of trapstream.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or configuration values: reported in one line, exit status 2.
    /// Display escapes control characters: operator input quoted in the
    /// message can never split the line, whoever built the message.
    #[error("{}", one_line(.0))]
    Usage(String),

    /// The machine cannot run trapstream as asked (privileges, kernel
    /// features): one line saying what to change, exit status 2.
    #[error("{}", one_line(.0))]
    Environment(String),

    #[error("{what}: {source}")]
    Bpf {
        what: String,
        #[source]
        source: libbpf_rs::Error,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("{}: {}", one_line(&.path.display().to_string()), one_line(.message))]
    File { path: PathBuf, message: String },

    #[error("record of {len} bytes is not a ts_event ({expected} bytes)")]
    RecordSize { len: usize, expected: usize },

    #[error("unknown record kind {0}")]
    RecordKind(u8),

    #[error("unknown trap type {0} in a devlink record")]
    TrapType(u8),
}

impl Error {
    /// Turn errors the operator can fix into one line that says how.
    pub fn explain(self) -> Error {
        match self {
            Error::Bpf { what, source } if source.kind() == libbpf_rs::ErrorKind::PermissionDenied => {
                Error::Environment(format!(
                    "{what}: permission denied: run as root, or with CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN \
                     before Linux 5.8); before Linux 5.11 the memory-lock limit must also allow the maps \
                     (ulimit -l unlimited, LimitMEMLOCK=infinity)"
                ))
            }
            other => other,
        }
    }

    pub fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
        let what = what.into();
        move |source| Error::Bpf { what, source }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// Exit status for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::File { .. } | Error::Environment(_) => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Operator-supplied text quoted in an error, with control characters escaped
/// so that the error stays one line whatever the input held.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}
