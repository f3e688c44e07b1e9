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

/// Sends the datagrams `bytes[ends[i-1]..ends[i]]` (the first from `start`) on a
/// connected socket, in order, in one call. Returns how many the kernel took:
/// all, or fewer when one failed after some were sent — then the kernel
/// drops that datagram's error (it returns an error only when the first
/// fails). At most `MAX_BATCH` are sent; the caller sends the rest after.
pub fn send(socket: &Socket, bytes: &[u8], mut start: usize, ends: &[usize]) -> io::Result<usize> {
    let count = ends.len().min(MAX_BATCH);
    match count {
        0 => return Ok(0),
        // One datagram (a quiet batch): a plain send, without filling the
        // arrays below, costs what an unbatched send cost.
        1 => return socket.send(&bytes[start..ends[0]]).map(|_| 1),
        _ => {}
    }
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes
    // are valid (null pointers, zero lengths).
    let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above: every field of mmsghdr is an integer or a pointer.
    let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..count {
        // Slicing checks the offsets: a bad one panics here, never reaches
        // the kernel as a wild pointer.
        let datagram = &bytes[start..ends[i]];
        start = ends[i];
        // The kernel only reads through iov_base (sendmsg copies the bytes
        // out); the *mut is what the C struct's type asks for, nothing is
        // written through it.
        iov[i].iov_base = datagram.as_ptr() as *mut libc::c_void;
        iov[i].iov_len = datagram.len();
        // The socket is connected: no address.
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs[..count]` are initialised mmsghdrs, each pointing at one
    // iovec in `iov` (a local, mutably borrowed, alive for the call) whose
    // base and length describe a slice of `bytes`, alive and unchanged for
    // the call. The kernel reads the headers, the iovecs and the bytes, and
    // writes only each header's msg_len, in `msgs`, which we own mutably.
    let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), count as libc::c_uint, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((sent as usize).min(count))
}
