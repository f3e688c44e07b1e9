//! Port and protocol names, as the original tool printed them ("53 (domain)",
//! "1 (icmp)"): read once from /etc/services and /etc/protocols, which every
//! switch OS ships, with the common protocols built in for bare containers.

use crate::inthash::IntMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortProtocol {
    Tcp,
    Udp,
}

#[derive(Debug, Default, Clone)]
pub struct NetDb {
    // Looked up three times per record by the encoders: a fast hash.
    services: IntMap<(PortProtocol, u16), Box<str>>,
    protocols: IntMap<u8, Box<str>>,
}

const BUILTIN_PROTOCOLS: &[(u8, &str)] = &[
    (1, "icmp"),
    (2, "igmp"),
    (4, "ipencap"),
    (6, "tcp"),
    (17, "udp"),
    (41, "ipv6"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (58, "ipv6-icmp"),
    (89, "ospf"),
    (103, "pim"),
    (112, "vrrp"),
    (132, "sctp"),
];

impl NetDb {
    pub fn load() -> NetDb {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        NetDb::parse(&read("/etc/services"), &read("/etc/protocols"))
    }

    pub fn parse(services: &str, protocols: &str) -> NetDb {
        let mut db = NetDb::default();
        for &(n, name) in BUILTIN_PROTOCOLS {
            db.protocols.insert(n, name.into());
        }
        for line in protocols.lines() {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            if let (Some(name), Some(Ok(n))) = (words.next(), words.next().map(str::parse::<u8>)) {
                db.protocols.insert(n, name.into());
            }
        }
        for line in services.lines() {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else { continue };
            let Some((port, proto)) = port_proto.split_once('/') else { continue };
            let proto = match proto {
                "tcp" => PortProtocol::Tcp,
                "udp" => PortProtocol::Udp,
                _ => continue,
            };
            if let Ok(port) = port.parse::<u16>() {
                // The first name listed for a port is its canonical one, as getservbyport gives.
                db.services.entry((proto, port)).or_insert_with(|| name.into());
            }
        }
        db
    }

    pub fn service(&self, proto: PortProtocol, port: u16) -> Named<'_, u16> {
        Named { value: port, name: self.services.get(&(proto, port)).map(|n| &**n) }
    }

    pub fn protocol(&self, number: u8) -> Named<'_, u8> {
        Named { value: number, name: self.protocols.get(&number).map(|n| &**n) }
    }
}

/// "53 (domain)", or "40000 (unknown)" when the number has no name.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a, T> {
    value: T,
    name: Option<&'a str>,
}

impl<T: Copy> Named<'_, T> {
    /// The number.
    pub fn value(&self) -> T {
        self.value
    }

    /// Its name, when the system's files give one.
    pub fn name(&self) -> Option<&str> {
        self.name
    }
}

impl<T: fmt::Display> fmt::Display for Named<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.value, self.name.unwrap_or("unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_services_and_protocols() {
        let db = NetDb::parse(
            "# comment\ndomain\t\t53/tcp\ndomain 53/udp\nhttp 80/tcp www # WorldWideWeb\nalt 80/tcp\nbad x/tcp\n",
            "ip 0 IP\nicmp 1 ICMP\nipv6-icmp 58 IPv6-ICMP\nweird 300\n",
        );
        assert_eq!(db.service(PortProtocol::Udp, 53).to_string(), "53 (domain)");
        assert_eq!(db.service(PortProtocol::Tcp, 80).to_string(), "80 (http)");
        assert_eq!(db.service(PortProtocol::Udp, 80).to_string(), "80 (unknown)");
        assert_eq!(db.protocol(1).to_string(), "1 (icmp)");
        assert_eq!(db.protocol(0).to_string(), "0 (ip)");
        assert_eq!(db.protocol(17).to_string(), "17 (udp)", "built in when the file lacks it");
        assert_eq!(db.protocol(253).to_string(), "253 (unknown)");
    }
}
