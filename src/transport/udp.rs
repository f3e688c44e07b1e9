//! UDP datagrams to the collector through socket2.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{Delivery, Sink};

/// How long one send may wait for room in the socket's send buffer. The
/// buffer drains as fast as the path to the collector does, which can be
/// never (a stalled device, a shaper): past this the datagram is counted
/// lost rather than the sender thread stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

pub struct UdpSink {
    socket: Socket,
    /// Records in the last datagram sent: the one an ECONNREFUSED is about.
    last_records: usize,
}

impl UdpSink {
    pub fn connect(collector: SocketAddr) -> io::Result<UdpSink> {
        let socket = Socket::new(Domain::for_address(collector), Type::DGRAM, Some(Protocol::UDP))?;
        // Bursts of drops come in bursts of datagrams: a larger send buffer
        // absorbs them instead of failing with ENOBUFS.
        let _ = socket.set_send_buffer_size(4 << 20);
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        // Connected, so that an ICMP port unreachable from a missing collector
        // surfaces as ECONNREFUSED and is counted, rather than vanishing.
        socket.connect(&SockAddr::from(collector))?;
        Ok(UdpSink { socket, last_records: 0 })
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
        let mut delivery = Delivery::sent(records);
        match self.socket.send(datagram) {
            // The collector's host answered an earlier datagram with ICMP
            // port unreachable: that datagram's records never arrived. The
            // error is cleared by being reported and this datagram was not
            // sent, so send it again. (ICMP is rate limited by the kernel:
            // not every refused datagram is reported; TCP is the transport
            // for a collector whose absence must be counted in full.)
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                delivery.refused = self.last_records as u64;
                delivery.errors = 1;
                delivery.last_error = Some(e.kind());
                // The refusal is news about records already sent: it must
                // reach the counters even when this datagram is lost too,
                // so a failed retry is reported here rather than as an error.
                if let Err(e) = self.socket.send(datagram) {
                    delivery.sent = 0;
                    delivery.writes = 0;
                    delivery.lost = records as u64;
                    delivery.errors += 1;
                    delivery.last_error = Some(e.kind());
                    // The refused datagram has been reported and this one
                    // never left: no datagram is waiting for an answer.
                    self.last_records = 0;
                    return Ok(delivery);
                }
            }
            other => {
                other?;
            }
        }
        self.last_records = records;
        Ok(delivery)
    }
}
