//! Records to standard output, one per line, for ad-hoc debugging.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;

use super::{Delivery, Sink};

pub struct StdoutSink {
    /// fd 1, duplicated so that it is written with no buffer in between: a
    /// record counts as sent only once write(2) has taken its bytes, and a
    /// failure loses exactly the records whose bytes were not taken.
    out: io::Result<File>,
}

impl StdoutSink {
    pub fn new() -> StdoutSink {
        StdoutSink { out: io::stdout().as_fd().try_clone_to_owned().map(File::from) }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    /// `lines` holds one record per line (the packer's `Lines` framing).
    fn send(&mut self, lines: &[u8], records: usize) -> io::Result<Delivery> {
        let out = match &mut self.out {
            Ok(out) => out,
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        };
        let mut written = 0;
        let error = loop {
            if written == lines.len() {
                return Ok(Delivery::sent(records));
            }
            match out.write(&lines[written..]) {
                Ok(0) => break io::Error::from(io::ErrorKind::WriteZero),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break e,
            }
        };
        if written == 0 {
            return Err(error);
        }
        // Records whose whole line was taken before the failure were sent;
        // the rest, including a line cut short, were not.
        let whole = lines[..written].iter().filter(|&&b| b == b'\n').count().min(records);
        Ok(Delivery {
            sent: whole as u64,
            lost: (records - whole) as u64,
            errors: 1,
            last_error: Some(error.kind()),
            ..Default::default()
        })
    }

    /// `trapstream --stdout | head` should end when head does.
    fn is_fatal(&self, kind: io::ErrorKind) -> bool {
        kind == io::ErrorKind::BrokenPipe
    }
}
