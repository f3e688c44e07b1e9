//! UDP GSO (UDP_SEGMENT): one send that the stack cuts into datagrams of
//! `gso_size` bytes, all of that size but the last. Records are not of one
//! size, so the pipeline can use it only by padding a batch's datagrams to
//! the largest of them (JSON: spaces after the array; line protocol: empty
//! lines, which parsers skip). These cases measure what that would give
//! before anything in trapstream depends on it.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

use crate::common::*;
use trapstream::cli::Format;
use trapstream::encode::Context;

/// A cmsghdr followed by its u16 payload, laid out as CMSG_SPACE(2) is.
#[repr(C)]
struct SegmentCmsg {
    hdr: libc::cmsghdr,
    size: u16,
    _pad: [u8; 6],
}

/// Sends `buf` as datagrams of `size` bytes (the last may be shorter).
pub fn send_segmented(socket: &Socket, buf: &[u8], size: u16) -> io::Result<usize> {
    // SAFETY: cmsghdr and the padding are integers: all-zero is valid.
    let mut cmsg: SegmentCmsg = unsafe { std::mem::zeroed() };
    // SAFETY: CMSG_LEN is arithmetic on its argument.
    cmsg.hdr.cmsg_len = unsafe { libc::CMSG_LEN(2) } as _;
    cmsg.hdr.cmsg_level = libc::SOL_UDP;
    cmsg.hdr.cmsg_type = libc::UDP_SEGMENT;
    cmsg.size = size;
    let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: every field of msghdr is an integer or a pointer: zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut cmsg as *mut SegmentCmsg).cast();
    msg.msg_controllen = std::mem::size_of::<SegmentCmsg>() as _;
    // SAFETY: msg points at a local iovec describing `buf` (only read by the
    // kernel; the *mut is the C type's) and at a local, initialised control
    // message of the size given; all live for the call.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Lays `datagrams` end to end in `out`, each but the last padded with
/// `pad` to the largest; returns that size (the segment size).
pub fn pad_batch<'d>(datagrams: impl Iterator<Item = &'d [u8]> + Clone, pad: u8, out: &mut Vec<u8>) -> u16 {
    let size = datagrams.clone().map(<[u8]>::len).max().unwrap_or(0);
    out.clear();
    let mut it = datagrams.peekable();
    while let Some(d) = it.next() {
        out.extend_from_slice(d);
        if it.peek().is_some() {
            out.resize(out.len() + size - d.len(), pad);
        }
    }
    u16::try_from(size).expect("a datagram fits in u16")
}

pub fn pad_byte(format: Format) -> u8 {
    if format == Format::Json {
        b' '
    } else {
        b'\n'
    }
}

/// Equal datagrams of `size` bytes, `segments` a send (setsockopt once).
pub fn equal_loop<'a>(socket: Socket, size: usize, segments: usize) -> Step<'a> {
    let buf = vec![b'x'; size * segments];
    Box::new(move || {
        let n = send_segmented(&socket, &buf, size as u16).expect("GSO send");
        assert_eq!(n, buf.len());
        segments as u64
    })
}

/// The raw limit for padded batches: the recorded datagrams regrouped into
/// the pipeline's batches of BATCH records, padded, one send each.
pub fn raw_loop<'a>(socket: Socket, recorded: &[(Vec<u8>, usize)], format: Format) -> Step<'a> {
    let mut batches: Vec<(Vec<u8>, u16, u64)> = Vec::new();
    let mut i = 0;
    while i < recorded.len() {
        let (mut j, mut records) = (i, 0);
        while j < recorded.len() && records < BATCH {
            records += recorded[j].1;
            j += 1;
        }
        let mut out = Vec::new();
        let size = pad_batch(recorded[i..j].iter().map(|d| d.0.as_slice()), pad_byte(format), &mut out);
        batches.push((out, size, records as u64));
        i = j;
    }
    let sent: usize = batches.iter().map(|b| b.0.len()).sum();
    let bytes: usize = recorded.iter().map(|d| d.0.len()).sum();
    println!(
        "# padded to equal datagrams a batch, {format:?}: {:+.1} % bytes",
        100.0 * sent as f64 / bytes as f64 - 100.0
    );
    let mut next = 0;
    Box::new(move || {
        let (buf, size, records) = &batches[next];
        next = (next + 1) % batches.len();
        let n = send_segmented(&socket, buf, *size).expect("GSO send");
        assert_eq!(n, buf.len());
        *records
    })
}

/// The pipeline with padded batches sent by GSO instead of UdpSink.
pub fn pipeline<'a>(
    ctx: &'a Context,
    kind: Kind,
    format: Format,
    max: usize,
    no_socket: u32,
    socket: Socket,
) -> Step<'a> {
    let mut front = Front::new(kind, format, max, no_socket);
    // The batch's datagrams end to end, and where each ends.
    let (mut held, mut ends) = (Vec::with_capacity(64 << 10), Vec::with_capacity(64));
    let mut out = Vec::with_capacity(64 << 10);
    Box::new(move || {
        let batch_done = front.push(ctx, |d| {
            held.extend_from_slice(d.bytes);
            ends.push(held.len());
        });
        if batch_done {
            let starts = std::iter::once(0).chain(ends.iter().copied());
            let slices = starts.zip(ends.iter().copied()).map(|(s, e)| &held[s..e]);
            let size = pad_batch(slices, pad_byte(format), &mut out);
            let n = send_segmented(&socket, &out, size).expect("GSO send");
            assert_eq!(n, out.len());
            held.clear();
            ends.clear();
        }
        1
    })
}
