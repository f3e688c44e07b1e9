//! Where the capture goes: standard output (a pipe into Wireshark), or a
//! file that is rotated by size, keeping a bounded number of files. Every
//! write is one buffer of whole blocks; a file that could take only part of
//! one is cut back to where it was, so that it never holds a torn block.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
            Target::Stdout => {
                let out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
                set_nonblocking(&out)?;
                out
            }
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
    /// A stream waits for a slow reader, but not past `stop` plus a grace
    /// period: a reader that stopped reading must not keep trapstream from
    /// exiting.
    pub fn write(&mut self, blocks: &[u8], packets: u64, stop: &AtomicBool) -> io::Result<()> {
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
        let written = if stream { write_stream(out, blocks, stop) } else { out.write_all(blocks) };
        match written {
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

/// How long a stream may block trapstream's exit once it was asked to stop.
const STREAM_GRACE: Duration = Duration::from_secs(2);

/// Set the stream's open file description non-blocking, so that a write
/// waits in poll(2), where it can give up, rather than in write(2).
fn set_nonblocking(out: &File) -> io::Result<()> {
    let fd = out.as_raw_fd();
    // SAFETY: fcntl on a file descriptor this File owns; F_GETFL/F_SETFL take
    // and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// All of `blocks` to a non-blocking stream, waiting for room as long as
/// the reader takes, until STREAM_GRACE after `stop`.
fn write_stream(out: &mut File, blocks: &[u8], stop: &AtomicBool) -> io::Result<()> {
    let mut done = 0;
    let mut stopping_since: Option<Instant> = None;
    while done < blocks.len() {
        match out.write(&blocks[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Acquire) {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > STREAM_GRACE {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "the reader stopped reading"));
                    }
                }
                let mut pfd = libc::pollfd { fd: out.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd for the call's duration.
                unsafe { libc::poll(&mut pfd, 1, 200) };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
