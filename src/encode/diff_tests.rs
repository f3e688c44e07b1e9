//! The hand-written JSON and Influx encoders against the previous ones
//! (`reference`: serde_json and `core::fmt`), byte for byte, on generated
//! records: every layer combination, SDK metadata, flows, hostile names and
//! overrides, IPv6, and a context that changes between records (which the
//! per-trap cache must notice).

use super::tests::{context, seed_ping, test_cookie};
use super::write::tests::{hostile_strings, rng};
use super::*;
use crate::record::{
    AclDirection, AclRule, Arp, DevlinkTrap, Egress, Ethernet, FixedStr, FlowCount, FlowKind, Fragment,
    Ingress, Ip, Latency, Mac, Occupancy, SkbDrop, Vlan, Wjh,
};

fn opt<T>(keep: bool, v: T) -> Option<T> {
    keep.then_some(v)
}

struct Gen {
    next: Box<dyn FnMut() -> u64>,
    names: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut names: Vec<String> =
            taxonomy::TRAPS.iter().chain(taxonomy::SDK_TRAPS).map(|t| t.name.into()).collect();
        names.extend(hostile_strings());
        Gen { next: Box::new(rng(seed)), names }
    }

    fn u(&mut self) -> u64 {
        (self.next)()
    }

    fn pick(&mut self, n: u64) -> u64 {
        self.u() % n
    }

    fn flag(&mut self) -> bool {
        self.u() & 1 == 1
    }

    fn name(&mut self) -> String {
        let i = self.pick(self.names.len() as u64) as usize;
        self.names[i].clone()
    }

    fn mac(&mut self) -> Mac {
        let b = self.u().to_le_bytes();
        Mac([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    fn ip(&mut self, v4: bool) -> std::net::IpAddr {
        if v4 {
            std::net::Ipv4Addr::from(self.u() as u32).into()
        } else {
            let (a, b) = (self.u(), self.u());
            // Zero groups often, so that "::" appears in every place.
            let groups: [u16; 8] =
                std::array::from_fn(|i| if (a >> (i * 3)) & 3 == 0 { 0 } else { (b >> (i * 8)) as u16 });
            std::net::Ipv6Addr::from(groups).into()
        }
    }

    fn record(&mut self) -> Record {
        let mut rec = seed_ping();
        rec.time_ns = self.u() >> self.pick(64);
        rec.ingress = Ingress {
            name: FixedStr::new(&if self.pick(4) == 0 {
                self.name()
            } else {
                format!("swp{}", self.pick(64))
            }),
            ifindex: self.u() as u32,
            netns_ino: if self.flag() { 0 } else { self.u() as u32 },
        };
        rec.egress =
            self.flag().then(|| Egress { name: FixedStr::new(&self.name()), ifindex: self.u() as u32 });
        rec.origin = if self.pick(3) == 0 {
            Origin::Skb(SkbDrop { reason: opt(self.flag(), self.pick(8) as u32), synthetic: false })
        } else {
            let sdk = self.pick(3) == 0;
            let cookie_len = 1 + self.pick(40) as u16;
            let mut cookie = [0u8; 32];
            cookie.iter_mut().for_each(|b| *b = self.u() as u8);
            let wjh = Wjh {
                egress_lag: self.flag().then(|| Egress { name: FixedStr::new(&self.name()), ifindex: 3 }),
                traffic_class: opt(self.flag(), self.u() as u16),
                occupancy: opt(self.flag(), Occupancy { raw: self.u() >> self.pick(64) }),
                latency: opt(self.flag(), Latency { raw: self.u() >> self.pick(64) }),
            };
            let acl = AclRule { value: self.u() as u32 & 0x3ffff, direction: AclDirection::Multipoint };
            Origin::Devlink(DevlinkTrap {
                trap_name: FixedStr::new(&self.name()),
                trap_group: FixedStr::new(&if self.flag() { self.name() } else { String::new() }),
                trap_type: [Kind::Drop, Kind::Exception, Kind::Control, Kind::Threshold]
                    [self.pick(4) as usize],
                bus_name: FixedStr::new(if sdk { taxonomy::SDK_DEVLINK_BUS } else { "pci" }),
                device_name: FixedStr::new(&if self.flag() { self.name() } else { "0000:03:00.0".into() }),
                cookie: self.flag().then(|| test_cookie(cookie_len, cookie)),
                acl: opt(self.flag(), acl),
                wjh: opt(self.flag(), wjh),
            })
        };
        let p = &mut rec.packet;
        p.len = self.u() as u32;
        p.ether_type = self.u() as u16;
        p.ethernet = self.flag().then_some(Ethernet { src: Mac([1, 2, 3, 4, 5, 6]), dst: Mac([0xff; 6]) });
        if let Some(eth) = &mut p.ethernet {
            eth.src = self.mac();
        }
        let mut vlan = || Vlan { tpid: 0x8100, vid: self.u() as u16 & 0xfff, pcp: 5, dei: self.flag() };
        p.vlans = [Some(vlan()), Some(vlan())];
        p.vlans[1] = p.vlans[1].filter(|_| self.flag());
        p.vlans[0] = p.vlans[0].filter(|_| self.flag() && p.ethernet.is_some());
        p.network = match self.pick(3) {
            0 => Network::None,
            1 => Network::Arp(Arp {
                operation: self.u() as u16,
                sender_mac: self.mac(),
                sender_ip: (self.u() as u32).into(),
                target_mac: self.mac(),
                target_ip: (self.u() as u32).into(),
            }),
            _ => {
                let v4 = self.flag();
                Network::Ip(Ip {
                    src: self.ip(v4),
                    dst: self.ip(v4),
                    protocol: self.u() as u8,
                    length: self.u() as u16,
                    tos: self.u() as u8,
                    ttl: self.u() as u8,
                    id: opt(self.flag(), self.u() as u16),
                    fragment: opt(
                        self.flag(),
                        Fragment { offset: self.u() as u32 & 0xfff8, more: self.flag() },
                    ),
                    dont_fragment: self.flag(),
                    flow_label: opt(self.flag(), self.u() as u32 & 0xfffff),
                })
            }
        };
        let (src_port, dst_port) = (self.u() as u16 % 100, self.u() as u16);
        p.transport = match self.pick(5) {
            0 => Transport::None,
            1 => Transport::Tcp { src_port, dst_port, flags: self.u() as u8 },
            2 => Transport::Udp { src_port, dst_port, length: self.u() as u16 },
            3 => Transport::Icmp { kind: self.u() as u8, code: self.u() as u8 },
            _ => Transport::Icmpv6 { kind: self.u() as u8, code: self.u() as u8 },
        };
        rec.flow = self.flag().then(|| FlowCount {
            packets: self.u() >> self.pick(64),
            bytes: self.u() >> self.pick(64),
            first_ns: self.u(),
            last_ns: self.u(),
            kind: [FlowKind::Flow, FlowKind::Overflow, FlowKind::Exemplar][self.pick(3) as usize],
        });
        rec
    }

    /// A context with hostile texts, or the tests' plain one.
    fn context(&mut self) -> Context {
        let mut ctx = context();
        if self.flag() {
            ctx.device_ip = self.name();
        }
        if self.flag() {
            let services: String =
                (0..100).map(|p| format!("{} {p}/udp\n{} {p}/tcp\n", self.word(), self.word())).collect();
            ctx.netdb = NetDb::parse(&services, &format!("{} 6\n{} 17\n", self.word(), self.word()));
        }
        if self.flag() {
            let enums = [crate::capture::NamedEnum {
                name: "skb_drop_reason".into(),
                members: (0..6).map(|v| (format!("SKB_DROP_REASON_{}", self.name()), v)).collect(),
            }];
            ctx.drop_reasons = DropReasons::from_enums(&enums);
        }
        for _ in 0..self.pick(40) {
            let o = TaxonomyOverride {
                drop_reason: self.flag().then(|| self.name()),
                description: self.flag().then(|| self.name()),
                severity: self.flag().then(|| self.name()),
                message: self.flag().then(|| self.name()),
            };
            ctx.taxonomy.insert(self.name(), o);
        }
        ctx
    }

    /// A name as /etc/services may hold one: no whitespace, anything else.
    fn word(&mut self) -> String {
        let w: String = self.name().split_whitespace().collect();
        if w.is_empty() {
            "x".into()
        } else {
            w
        }
    }
}

#[test]
fn json_and_influx_match_the_previous_encoders_byte_for_byte() {
    let mut g = Gen::new(0x5eed);
    for round in 0..60 {
        // Each round: new encoders, and a context that the next round
        // replaces (the caches must not carry texts across).
        let ctx = g.context();
        let (mut json, mut influx) = (Encoder::new(Format::Json), Encoder::new(Format::Influx));
        let mut old_influx = reference::influx::InfluxEncoder::default();
        for _ in 0..400 {
            let rec = g.record();
            let s = Summary::of(&ctx, &rec);
            let (mut want, mut got) = (Vec::new(), Vec::new());
            reference::json::JsonEncoder.encode(&ctx, &rec, &s, &mut want);
            json.encode(&ctx, &rec, &mut got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "JSON, round {round}, {rec:?}"
            );
            let (mut want, mut got) = (Vec::new(), Vec::new());
            old_influx.encode(&ctx, &rec, &s, &mut want);
            influx.encode(&ctx, &rec, &mut got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "Influx, round {round}, {rec:?}"
            );
        }
    }
}

#[test]
fn the_cache_follows_a_context_changed_between_records() {
    let mut ctx = context();
    let rec = seed_ping();
    for format in [Format::Json, Format::Influx] {
        let mut enc = Encoder::new(format);
        let mut run = |ctx: &Context| {
            let mut out = Vec::new();
            enc.encode(ctx, &rec, &mut out);
            String::from_utf8(out).unwrap()
        };
        let plain = run(&ctx);
        ctx.taxonomy.insert(
            "unresolved_neigh".into(),
            TaxonomyOverride { description: Some("new \"text\"".into()), ..Default::default() },
        );
        assert!(run(&ctx).contains(r#"new \"text\""#) || run(&ctx).contains(r"new\ "), "{format:?}");
        ctx.device_ip = "a b".into();
        assert!(
            run(&ctx).contains(r#""deviceIP":"a b""#) || run(&ctx).contains(r",deviceIP=a\ b,"),
            "{format:?}"
        );
        ctx.taxonomy.clear();
        ctx.device_ip = "10.5.1.101".into();
        // Influx moves a repeated line timestamp on by 1 ns: compare without it.
        let body = |line: String| match format {
            Format::Influx => line.rsplit_once(' ').map(|(body, _)| body.to_string()).unwrap_or_default(),
            _ => line,
        };
        assert_eq!(body(run(&ctx)), body(plain.clone()), "{format:?}: back to the built-in texts");
    }
}
