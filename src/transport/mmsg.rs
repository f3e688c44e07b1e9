//! sendmmsg(2): many datagrams in one system call.
//!
//! Most of what a small datagram costs the sender is the system call itself
//! (entry, socket lookup, the return path), not the bytes; with one record
//! per 1400-byte datagram that was one call per event. socket2 has no
//! sendmmsg, so it is called through libc.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// Datagrams per call. The kernel takes up to UIO_MAXIOV (1024); past a few
/// dozen the call's own cost is already spread thin, and the arrays below
/// live on the stack.
pub const MAX_BATCH: usize = 64;

/// A datagram waiting in some buffer: `buffer[start..end]`, except that
/// its last byte is `last` (`end > start` then). The packer turns a JSON
/// datagram's closing bracket back into the next datagram's opening one,
/// so that byte is kept here and sent from here when it has changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub start: usize,
    pub end: usize,
    pub last: Option<u8>,
    pub records: usize,
}

impl Held {
    /// The datagram as it lies in `buffer`, and its last byte if that is no
    /// longer there (then the first part ends before it). One part where it
    /// can be: a second iovec costs the kernel's copy a little per datagram.
    /// Slicing checks the offsets: a bad one panics here, never reaches the
    /// kernel as a wild pointer.
    pub fn parts<'a>(&'a self, buffer: &'a [u8]) -> (&'a [u8], Option<&'a u8>) {
        let whole = &buffer[self.start..self.end];
        match &self.last {
            Some(last) if whole.last() != Some(last) => (&whole[..whole.len() - 1], Some(last)),
            _ => (whole, None),
        }
    }
}

/// Sends one held datagram from `buffer` with a plain send.
pub fn send_one(socket: &Socket, buffer: &[u8], held: &Held) -> io::Result<usize> {
    match held.parts(buffer) {
        (whole, None) => socket.send(whole),
        (body, Some(last)) => {
            socket.send_vectored(&[io::IoSlice::new(body), io::IoSlice::new(std::slice::from_ref(last))])
        }
    }
}

/// Sends the datagrams `held` describes in `buffer` on a connected socket, in
/// order, in one call. Returns how many the kernel took: all, or fewer when
/// one failed after some were sent — then the kernel drops that datagram's
/// error (it returns an error only when the first fails). At most
/// `MAX_BATCH` are sent; the caller sends the rest after.
pub fn send(socket: &Socket, buffer: &[u8], held: &[Held]) -> io::Result<usize> {
    let count = held.len().min(MAX_BATCH);
    match count {
        0 => return Ok(0),
        // One datagram (a quiet batch): a plain send, without filling the
        // arrays below, costs what an unbatched send cost.
        1 => return send_one(socket, buffer, &held[0]).map(|_| 1),
        _ => {}
    }
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes
    // are valid (null pointers, zero lengths).
    let mut iov: [[libc::iovec; 2]; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above: every field of mmsghdr is an integer or a pointer.
    let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for (i, h) in held[..count].iter().enumerate() {
        let (body, last) = h.parts(buffer);
        // The kernel only reads through iov_base (sendmsg copies the bytes
        // out); the *mut is what the C struct's type asks for, nothing is
        // written through it.
        iov[i][0].iov_base = body.as_ptr() as *mut libc::c_void;
        iov[i][0].iov_len = body.len();
        if let Some(last) = last {
            iov[i][1].iov_base = last as *const u8 as *mut libc::c_void;
            iov[i][1].iov_len = 1;
        }
        // The socket is connected: no address.
        msgs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
        msgs[i].msg_hdr.msg_iovlen = (1 + usize::from(last.is_some())) as _;
    }
    // SAFETY: `msgs[..count]` are initialised mmsghdrs, each pointing at one
    // or two iovecs in `iov` (a local, mutably borrowed, alive for the call)
    // whose bases and lengths describe a slice of `buffer` and a byte of
    // `held`, both alive and unchanged for the call. The kernel reads the
    // headers, the iovecs and the bytes, and writes only each header's
    // msg_len, in `msgs`, which we own mutably.
    let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), count as libc::c_uint, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((sent as usize).min(count))
}
