//! UDP datagrams to the collector through socket2.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{Delivery, Sink};

pub struct UdpSink {
    socket: Socket,
}

impl UdpSink {
    pub fn connect(collector: SocketAddr) -> io::Result<UdpSink> {
        let socket = Socket::new(Domain::for_address(collector), Type::DGRAM, Some(Protocol::UDP))?;
        // Bursts of drops come in bursts of datagrams: a larger send buffer
        // absorbs them instead of failing with ENOBUFS.
        let _ = socket.set_send_buffer_size(4 << 20);
        // Connected, so that an ICMP port unreachable from a missing collector
        // surfaces as ECONNREFUSED and is counted, rather than vanishing.
        socket.connect(&SockAddr::from(collector))?;
        Ok(UdpSink { socket })
    }

    /// The local address datagrams leave from.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "UDP socket without an IP address"))
    }
}

impl Sink for UdpSink {
    fn send(&mut self, datagram: &[u8], records: usize) -> io::Result<Delivery> {
        match self.socket.send(datagram) {
            // The error belongs to an earlier datagram's ICMP reply and was
            // cleared by reporting it; this datagram was not sent, so try once more.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => self.socket.send(datagram)?,
            other => other?,
        };
        Ok(Delivery::sent(records))
    }
}
