//! A value from a flag or the file, with where it came from, and the
//! parsers that turn it into a number, a port or a duration with a one-line
//! error naming the flag, or the file, line and key.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{one_line, Error, Result};

/// Where a value came from, so that an error can point at it.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    Flag(&'static str),
    File { path: &'a Path, line: usize, key: &'static str },
}

pub(super) struct Setting<'a> {
    pub(super) text: String,
    pub(super) origin: Origin<'a>,
}

impl Setting<'_> {
    pub(super) fn error(&self, message: impl fmt::Display) -> Error {
        let message = one_line(&message.to_string());
        match self.origin {
            Origin::Flag(flag) => Error::Usage(format!("{flag} {message}")),
            Origin::File { path, line, key } => {
                Error::File { path: path.to_path_buf(), message: format!("line {line}: {key} {message}") }
            }
        }
    }
}

/// A TOML number as the operator wrote it (5 or 0.5).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A rate as written in the file: 1000 or "1000/s".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RateText {
    Number(i64),
    Text(String),
}

impl fmt::Display for RateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateText::Number(n) => write!(f, "{n}"),
            RateText::Text(t) => f.write_str(t),
        }
    }
}

pub(super) fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

pub(super) fn parse_port(s: &Setting<'_>) -> Result<u16> {
    match s.text.parse::<i64>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(s.error(format!("must be 1..65535, got {port}"))),
        Err(_) => Err(s.error(format!("'{}' is not a port number", s.text))),
    }
}

pub(super) fn parse_count(s: &Setting<'_>, min: usize, max: usize) -> Result<usize> {
    let value: i128 = s.text.parse().map_err(|_| s.error(format!("'{}' is not a whole number", s.text)))?;
    if value < min as i128 || value > max as i128 {
        return Err(s.error(format!("must be {min}..={max}, got {value}")));
    }
    Ok(value as usize)
}

pub(super) fn parse_seconds(s: &Setting<'_>, positive: bool) -> Result<Duration> {
    let value: f64 =
        s.text.parse().map_err(|_| s.error(format!("'{}' is not a number of seconds", s.text)))?;
    if !value.is_finite() || value < 0.0 || (positive && value == 0.0) || value > 86_400.0 * 365.0 {
        let lower = if positive { "more than 0" } else { "0 or more" };
        return Err(s.error(format!("must be {lower} seconds, got {}", s.text)));
    }
    Ok(Duration::from_secs_f64(value))
}
