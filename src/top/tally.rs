//! The view's numbers: per key, a count over a sliding window of whole
//! seconds and a total since start. Each second's counts are kept in a
//! bucket of their own, so that a second leaving the window is subtracted
//! exactly: a record costs a hash lookup, not a scan of the window.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use crate::capture::DropReasons;
use crate::record::{Network, Origin, Record, Transport};

/// Most keys a table tells apart; the rest are counted in one "(other)" row,
/// so that a scan of many flows cannot grow the view without bound.
pub const MAX_KEYS: usize = 4096;
pub const OTHER: &str = "(other)";
/// What ingressPort says of a packet this host sent (as the encoders do).
const NO_PORT: &str = "N/A";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Table {
    /// Drop reasons (kernel drops) and trap names (devlink).
    #[default]
    Reasons,
    Ports,
    Flows,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Reasons, Table::Ports, Table::Flows];

    pub fn name(self) -> &'static str {
        match self {
            Table::Reasons => "reasons",
            Table::Ports => "ports",
            Table::Flows => "flows",
        }
    }

    pub fn next(self) -> Table {
        match self {
            Table::Reasons => Table::Ports,
            Table::Ports => Table::Flows,
            Table::Flows => Table::Reasons,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Rate,
    Total,
    Name,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Rate => "rate",
            Sort::Total => "total",
            Sort::Name => "name",
        }
    }

    pub fn next(self) -> Sort {
        match self {
            Sort::Rate => Sort::Total,
            Sort::Total => Sort::Name,
            Sort::Name => Sort::Rate,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: Box<str>,
    /// Where the reasons come from: "kernel", or a devlink trap's type.
    pub source: &'static str,
    /// Count within the window, and since start.
    pub window: u64,
    pub total: u64,
}

#[derive(Debug, Default)]
struct Counts {
    ids: HashMap<Box<str>, usize>,
    rows: Vec<Row>,
    /// (second, counts by row index), oldest first; only seconds that counted something.
    buckets: VecDeque<(u64, HashMap<usize, u64>)>,
}

impl Counts {
    fn add(&mut self, key: &str, source: &'static str, n: u64, second: u64) {
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => {
                let name = if self.rows.len() < MAX_KEYS { key } else { OTHER };
                *self.ids.entry(name.into()).or_insert_with(|| {
                    self.rows.push(Row { name: name.into(), source, window: 0, total: 0 });
                    self.rows.len() - 1
                })
            }
        };
        let row = &mut self.rows[id];
        row.window += n;
        row.total += n;
        if self.buckets.back().is_none_or(|(s, _)| *s != second) {
            self.buckets.push_back((second, HashMap::new()));
        }
        if let Some((_, bucket)) = self.buckets.back_mut() {
            *bucket.entry(id).or_default() += n;
        }
    }

    /// Subtract the seconds at or before `oldest_gone`.
    fn expire(&mut self, oldest_gone: u64) {
        while self.buckets.front().is_some_and(|(s, _)| *s <= oldest_gone) {
            if let Some((_, bucket)) = self.buckets.pop_front() {
                for (id, n) in bucket {
                    self.rows[id].window -= n;
                }
            }
        }
    }
}

/// The three tables, fed from records.
#[derive(Debug)]
pub struct Tally {
    window: u64,
    tables: [Counts; 3],
    /// Reused for keys that must be formatted (flows), so that a record
    /// whose key is already known allocates nothing.
    key: String,
}

impl Tally {
    pub fn new(window_seconds: u64) -> Tally {
        Tally { window: window_seconds.max(1), tables: Default::default(), key: String::new() }
    }

    pub fn window_seconds(&self) -> u64 {
        self.window
    }

    /// Count `rec` at `second` (seconds since the view started). Under -u a
    /// record stands for `flow.packets` packets, and counts that many.
    pub fn add(&mut self, rec: &Record, reasons: &DropReasons, second: u64) {
        let n = rec.flow.map_or(1, |f| f.packets);
        let (reason, source) = match &rec.origin {
            Origin::Skb(drop) => (reasons.name(drop.reason), "kernel"),
            Origin::Devlink(trap) => (trap.trap_name.as_str().into(), trap.trap_type.as_str()),
        };
        let [by_reason, by_port, by_flow] = &mut self.tables;
        by_reason.add(&reason, source, n, second);
        let port = if rec.ingress.name.is_empty() { NO_PORT } else { rec.ingress.name.as_str() };
        by_port.add(port, source, n, second);
        self.key.clear();
        flow_key(rec, &mut self.key);
        by_flow.add(&self.key, source, n, second);
    }

    /// Move the window on to `now` (seconds since the view started).
    pub fn advance(&mut self, now: u64) {
        if let Some(oldest_gone) = now.checked_sub(self.window) {
            for t in &mut self.tables {
                t.expire(oldest_gone);
            }
        }
    }

    /// `table`'s rows, sorted; ties go by name so that the order is stable.
    pub fn rows(&self, table: Table, sort: Sort) -> Vec<&Row> {
        let counts = &self.tables[table as usize];
        let mut rows: Vec<&Row> = counts.rows.iter().collect();
        rows.sort_by(|a, b| {
            let by = match sort {
                Sort::Rate => b.window.cmp(&a.window).then(b.total.cmp(&a.total)),
                Sort::Total => b.total.cmp(&a.total).then(b.window.cmp(&a.window)),
                Sort::Name => std::cmp::Ordering::Equal,
            };
            by.then_with(|| a.name.cmp(&b.name))
        });
        rows
    }
}

/// A flow as a person reads it: "udp 10.0.0.1:5353 > 10.0.0.2:53".
fn flow_key(rec: &Record, out: &mut String) {
    let p = &rec.packet;
    let _ = match (&p.network, p.transport) {
        (Network::Ip(ip), Transport::Tcp { src_port, dst_port, .. }) => {
            write!(out, "tcp {} > {}", Endpoint(ip.src, src_port), Endpoint(ip.dst, dst_port))
        }
        (Network::Ip(ip), Transport::Udp { src_port, dst_port, .. }) => {
            write!(out, "udp {} > {}", Endpoint(ip.src, src_port), Endpoint(ip.dst, dst_port))
        }
        (Network::Ip(ip), Transport::Icmp { .. }) => write!(out, "icmp {} > {}", ip.src, ip.dst),
        (Network::Ip(ip), Transport::Icmpv6 { .. }) => write!(out, "icmp6 {} > {}", ip.src, ip.dst),
        (Network::Ip(ip), _) => write!(out, "ip proto {} {} > {}", ip.protocol, ip.src, ip.dst),
        (Network::Arp(a), _) => write!(out, "arp {} > {}", a.sender_ip, a.target_ip),
        (Network::None, _) => match p.ethernet {
            Some(eth) => write!(out, "{} > {} ethertype {:#06x}", eth.src, eth.dst, p.ether_type),
            None => write!(out, "ethertype {:#06x}", p.ether_type),
        },
    };
}

/// address:port, IPv6 in brackets.
struct Endpoint(std::net::IpAddr, u16);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            std::net::IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            std::net::IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[&Row]) -> Vec<(String, u64, u64)> {
        rows.iter().map(|r| (r.name.to_string(), r.window, r.total)).collect()
    }

    #[test]
    fn seconds_leave_the_window_exactly_and_totals_stay() {
        let mut c = Counts::default();
        c.add("a", "kernel", 3, 0);
        c.add("b", "kernel", 1, 0);
        c.add("a", "kernel", 2, 4);
        c.add("a", "kernel", 5, 9);
        c.expire(0);
        let rows: Vec<&Row> = c.rows.iter().collect();
        assert_eq!(counts(&rows), [("a".into(), 7, 10), ("b".into(), 0, 1)]);
        c.expire(8);
        let rows: Vec<&Row> = c.rows.iter().collect();
        assert_eq!(counts(&rows), [("a".into(), 5, 10), ("b".into(), 0, 1)]);
    }

    #[test]
    fn keys_past_the_limit_count_as_other() {
        let mut c = Counts::default();
        for i in 0..MAX_KEYS + 10 {
            c.add(&i.to_string(), "kernel", 1, 0);
        }
        assert_eq!(c.rows.len(), MAX_KEYS + 1);
        let other = c.rows.iter().find(|r| &*r.name == OTHER).map(|r| r.total);
        assert_eq!(other, Some(10));
        assert_eq!(c.rows.iter().map(|r| r.total).sum::<u64>(), (MAX_KEYS + 10) as u64);
    }

    #[test]
    fn sorts_by_rate_total_or_name() {
        let mut t = Tally::new(10);
        let c = &mut t.tables[0];
        c.add("old", "kernel", 9, 0);
        c.add("new", "kernel", 2, 20);
        c.add("mid", "kernel", 3, 20);
        t.advance(20);
        let names = |s| t.rows(Table::Reasons, s).iter().map(|r| r.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(Sort::Rate), ["mid", "new", "old"]);
        assert_eq!(names(Sort::Total), ["old", "mid", "new"]);
        assert_eq!(names(Sort::Name), ["mid", "new", "old"]);
    }
}
