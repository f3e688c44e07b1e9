//! Records to standard output, one per line, for ad-hoc debugging.

use std::io::{self, BufWriter, Stdout, Write};

use super::{Delivery, Sink};

pub struct StdoutSink {
    out: BufWriter<Stdout>,
}

impl StdoutSink {
    pub fn new() -> StdoutSink {
        StdoutSink { out: BufWriter::with_capacity(1 << 16, io::stdout()) }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    fn send(&mut self, lines: &[u8], records: usize) -> io::Result<Delivery> {
        self.out.write_all(lines)?;
        Ok(Delivery::sent(records))
    }

    fn flush(&mut self) -> io::Result<Delivery> {
        self.out.flush()?;
        Ok(Delivery::default())
    }

    /// `trapstream --stdout | head` should end when head does.
    fn is_fatal(&self, err: &io::Error) -> bool {
        err.kind() == io::ErrorKind::BrokenPipe
    }
}
