//! Where the capture goes: standard output (a pipe into Wireshark), or a
//! file that is rotated by size, keeping a bounded number of files. Every
//! write is one buffer of whole blocks; a file that could take only part of
//! one is cut back to where it was, so that it never holds a torn block.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub enum Target {
    Stdout,
    /// PATH is the file being written; PATH.1 the one before it, up to
    /// PATH.(files-1). `rotate_size` None: one file that only grows.
    File {
        path: PathBuf,
        rotate_size: Option<u64>,
        files: usize,
    },
}

pub struct Output {
    target: Target,
    /// None after a file could not be (re)opened; the next write tries again.
    out: Option<File>,
    /// Bytes in the current file (or written to the stream).
    written: u64,
    /// Packets in the current file.
    packets: u64,
}

impl Output {
    /// Opens (creates or truncates) the file now, so that a path that
    /// cannot be written is reported before capture starts.
    pub fn open(target: Target) -> io::Result<Output> {
        let out = match &target {
            Target::Stdout => io::stdout().as_fd().try_clone_to_owned().map(File::from)?,
            Target::File { path, .. } => create(path)?,
        };
        Ok(Output { target, out: Some(out), written: 0, packets: 0 })
    }

    /// Bytes already in the current file; 0 means a new file or stream
    /// that needs its Section Header first.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn is_stream(&self) -> bool {
        matches!(self.target, Target::Stdout)
    }

    /// Whether `more` bytes would take the current file past its size, and
    /// there is something in it to rotate away.
    pub fn must_rotate(&self, more: u64) -> bool {
        match self.target {
            Target::File { rotate_size: Some(limit), .. } => self.packets > 0 && self.written + more > limit,
            _ => false,
        }
    }

    /// Start the next file: PATH becomes PATH.1, the oldest goes.
    pub fn rotate(&mut self) -> io::Result<()> {
        let Target::File { path, files, .. } = &self.target else { return Ok(()) };
        self.out = None;
        self.written = 0;
        self.packets = 0;
        let numbered = |i: usize| -> PathBuf {
            let mut name = path.clone().into_os_string();
            name.push(format!(".{i}"));
            name.into()
        };
        if *files > 1 {
            remove_if_there(&numbered(files - 1))?;
            for i in (1..files - 1).rev() {
                rename_if_there(&numbered(i), &numbered(i + 1))?;
            }
            rename_if_there(path, &numbered(1))?;
        }
        self.out = Some(create(path)?);
        Ok(())
    }

    /// Write whole blocks holding `packets` packets; on failure the file is
    /// cut back to its length before, and the error says why.
    pub fn write(&mut self, blocks: &[u8], packets: u64) -> io::Result<()> {
        if self.out.is_none() {
            if let Target::File { path, .. } = &self.target {
                self.out = Some(create(path)?);
                self.written = 0;
                self.packets = 0;
            }
        }
        let stream = self.is_stream();
        let Some(out) = self.out.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        };
        match out.write_all(blocks) {
            Ok(()) => {
                self.written += blocks.len() as u64;
                self.packets += packets;
                Ok(())
            }
            Err(e) => {
                if !stream {
                    // A full disk took part of the buffer: no torn block stays.
                    let written = self.written;
                    if out.set_len(written).and_then(|()| out.seek(SeekFrom::Start(written))).is_err() {
                        // Cannot even cut it back: start a new file next time
                        // rather than append after a torn block.
                        self.out = None;
                    }
                }
                Err(e)
            }
        }
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
