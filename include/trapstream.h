/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI between the BPF programs and user space.
 *
 * Every struct here is laid out without implicit padding so that the record
 * user space reads is byte-for-byte what the kernel wrote; the Rust side uses
 * the skeleton's generated copy of these types and asserts their sizes.
 * All multi-byte values are in host byte order: the BPF side converts.
 */
#ifndef TRAPSTREAM_H
#define TRAPSTREAM_H

#define TS_IFNAMSIZ 16
#define TS_TRAP_NAME_LEN 48
#define TS_TRAP_GROUP_LEN 32
#define TS_BUS_NAME_LEN 16
#define TS_DEV_NAME_LEN 32
/* TC_COOKIE_MAX_SIZE is 16; netdevsim accepts more, so keep room and report the true length. */
#define TS_COOKIE_MAX 32

/* Bytes copied out of the skb for dissection, from the first dissected header. */
#define TS_SNAP_LEN 256
/* IPv6 extension headers walked before giving up on finding the upper layer. */
#define TS_IPV6_EXT_MAX 6

/* Record kinds on the ring buffer. */
#define TS_KIND_EVENT 1

/* Where an event came from. */
#define TS_SOURCE_DEVLINK 1
#define TS_SOURCE_SKB 2
#define TS_SOURCE_TEST 3

/* enum devlink_trap_type, plus a value for software drops. */
#define TS_TRAP_TYPE_DROP 0
#define TS_TRAP_TYPE_EXCEPTION 1
#define TS_TRAP_TYPE_CONTROL 2
/*
 * Not a devlink type: a vendor SDK's buffer threshold crossing (congestion,
 * latency), which is neither a drop nor an exception. The SDK reports every
 * trap with type 0; for its traps the kernel side takes the type from the
 * `sdk_trap_types` map, which user space fills from its taxonomy.
 */
#define TS_TRAP_TYPE_THRESHOLD 3
#define TS_TRAP_TYPE_NONE 0xff

/* skb drop reason when the running kernel's kfree_skb has no reason argument (5.10). */
#define TS_DROP_REASON_UNKNOWN 0xffffffffu

/* Layers the dissector decoded completely (struct ts_packet.layers). */
#define TS_L_ETH (1u << 0)
#define TS_L_VLAN1 (1u << 1)
#define TS_L_VLAN2 (1u << 2)
#define TS_L_ARP (1u << 3)
#define TS_L_IPV4 (1u << 4)
#define TS_L_IPV6 (1u << 5)
#define TS_L_TCP (1u << 6)
#define TS_L_UDP (1u << 7)
#define TS_L_ICMP (1u << 8)
#define TS_L_ICMP6 (1u << 9)
/* The packet is an IP fragment (IPv4 MF/offset, or an IPv6 fragment header). */
#define TS_L_FRAG (1u << 10)
/*
 * No Ethernet header (none set, none before the network header, or a device
 * that does not frame with Ethernet: tun, WireGuard, ipip, sit, GRE in IP
 * mode); dissection started at the network header, the protocol from
 * skb->protocol.
 */
#define TS_L_NO_MAC (1u << 11)
/* The walk stopped early: more VLAN tags or IPv6 extension headers than it follows. */
#define TS_L_WALK_LIMIT (1u << 12)

/* IPv4 flags (struct ts_packet.frag_flags). */
#define TS_FRAG_MF 1
#define TS_FRAG_DF 2

/* struct ts_event.flags */
/* Sent alone (count 1) because the aggregation table had no room for its key. */
#define TS_EV_AGG_OVERFLOW 1
/* One of the first packets of a new flow key (-u --exemplars), sent alone (count 1) instead of counted. */
#define TS_EV_EXEMPLAR 2
/* The record continues past struct ts_event with a struct ts_raw and the packet's bytes (--pcap). */
#define TS_EV_RAW 4

/* Most packet bytes a record carries with --pcap (--pcap-snaplen). */
#define TS_RAW_MAX 1024
/* struct ts_raw.link: where the bytes start. */
#define TS_RAW_LINK_ETHER 1   /* at the Ethernet header */
#define TS_RAW_LINK_IP 2      /* at the IPv4 or IPv6 header (no MAC header, see TS_L_NO_MAC) */

/* Per-CPU counters (map `counters`), summed by user space. */
#define TS_CNT_SEEN 0         /* tracepoint hits for an enabled source */
#define TS_CNT_FILTERED 1     /* skipped by a filter (trap type, name, group, port, reason, netns) */
#define TS_CNT_RB_LOST 2      /* ring buffer reservation or output failed */
#define TS_CNT_AGG_PACKETS 3  /* packets counted into an aggregation table */
#define TS_CNT_AGG_OVERFLOW 4 /* packets sent alone because the table was full */
#define TS_CNT_RATE_LIMITED 5 /* events suppressed by the per-trap rate limit */
/*
 * Runs that found another trapstream program interrupted on the same CPU
 * (a softirq drop inside a process-context run) and returned at once: the
 * interrupted run owns the per-CPU scratch buffers. Not counted in SEEN.
 */
#define TS_CNT_NESTED 6
/*
 * Kernel drops that were a vendor SDK freeing its copy of a packet it had
 * just reported as a trap (kfree_skb right after the tracepoint): the same
 * packet, already delivered as the trap. Not counted in SEEN.
 */
#define TS_CNT_SDK_FREES 7
#define TS_CNT_EXEMPLARS 8    /* packets sent alone as exemplars of a new flow (-u --exemplars) */
#define TS_CNT_MAX 9

/* Rate limiter buckets (map `rate_buckets`), keyed like filters: kind = source. */
struct ts_rate_bucket {
	__u64 tokens;         /* events * 1e9: one event costs 1e9, time adds rate per ns */
	__u64 last_ns;
};

/* Filter kinds (struct ts_filter_key.kind); values in the `filters` map. */
#define TS_FILTER_TRAP_NAME 1
#define TS_FILTER_TRAP_GROUP 2
#define TS_FILTER_PORT 3      /* ingress netdev name */
#define TS_FILTER_REASON 4    /* skb drop reason, as a __u32 in name[0..4] */
#define TS_FILTER_NETNS 5     /* netns inode, as a __u32 in name[0..4] */
#define TS_FILTER_INCLUDE 1
#define TS_FILTER_EXCLUDE 2

struct ts_packet {
	__u32 layers;         /* TS_L_* */
	__u32 pkt_len;        /* frame length from the first dissected header (MAC, else network) */
	__u16 cap_len;        /* bytes available to the dissector */
	__u16 eth_proto;      /* EtherType after any VLAN tags */
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u16 vlan_tpid[2];   /* outer, inner */
	__u16 vlan_tci[2];    /* PCP(3) DEI(1) VID(12) */
	__u8 ip_src[16];      /* IPv4 in the first 4 bytes */
	__u8 ip_dst[16];
	__u16 ip_len;         /* IPv4 total length, IPv6 payload length */
	__u16 ip_id;          /* IPv4 id, low 16 bits of an IPv6 fragment id */
	__u16 frag_off;       /* fragment offset in 8-byte units */
	__u8 frag_flags;      /* TS_FRAG_* */
	__u8 tos;             /* IPv4 TOS byte, IPv6 traffic class (DSCP << 2 | ECN) */
	__u8 ttl;             /* TTL or hop limit */
	__u8 ip_proto;        /* upper-layer protocol after IPv6 extension headers */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u32 flow_label;
	__u16 sport;
	__u16 dport;
	__u16 udp_len;
	__u8 icmp_code;
	__u8 _pad0;
	__u16 arp_op;
	__u8 arp_sha[6];
	__u8 arp_tha[6];
	__u8 arp_spa[4];
	__u8 arp_tpa[4];
	__u16 _pad1;
};

/* struct ts_wjh.flags */
#define TS_WJH_FIELDS 1        /* the running kernel's trap metadata has SONiC's extra fields */
#define TS_WJH_TC_VALID 2      /* out_tc is valid */
#define TS_WJH_OCC_VALID 4     /* tc_occupancy is valid */
#define TS_WJH_LATENCY_VALID 8 /* latency is valid */

/*
 * SONiC's extension of struct devlink_trap_metadata (the SDK's WJH buffer
 * "linux channel"), read only where the kernel's BTF has the fields. Values
 * are the SDK's raw units; user space scales them. All zero otherwise.
 */
struct ts_wjh {
	__u64 tc_occupancy;   /* egress traffic-class buffer occupancy, raw */
	__u64 latency;        /* egress latency, raw */
	__u32 out_ifindex;    /* egress port (a LAG's member port); 0 = none */
	__u32 out_lag_ifindex;/* egress LAG; 0 = none */
	__u16 out_tc;         /* egress traffic class */
	__u8 flags;           /* TS_WJH_* */
	__u8 _pad[5];
	char out_ifname[TS_IFNAMSIZ];
	char out_lag_name[TS_IFNAMSIZ];
};

/*
 * What every source reports comes first and the devlink source's own fields
 * last, so that a kernel drop's record is only the first TS_SKB_EVENT_SIZE
 * bytes: the handler writes 3 cache lines into the ring instead of 6, which
 * is most of what the per-event path costs under a drop storm. User space
 * reads the short record as the whole struct with the devlink part zeroed.
 */
struct ts_event {
	__u8 kind;            /* TS_KIND_EVENT */
	__u8 source;          /* TS_SOURCE_* */
	__u8 trap_type;       /* TS_TRAP_TYPE_* */
	__u8 flags;           /* TS_EV_* */
	__u16 cookie_len;     /* flow-action cookie length in the kernel (may exceed TS_COOKIE_MAX) */
	__u16 _pad1;
	__u64 time_ns;        /* CLOCK_BOOTTIME when the tracepoint fired */
	__u32 ifindex;        /* 0 when there is no input device */
	__u32 netns_ino;      /* network namespace inode of the device (skb source) */
	__u32 drop_reason;    /* enum skb_drop_reason, or TS_DROP_REASON_UNKNOWN */
	__u32 skb_iif;        /* skb source: ifindex the packet arrived on (0: sent by this host) */
	char ifname[TS_IFNAMSIZ];
	struct ts_packet pkt;
	/* devlink source only: a kernel drop's record ends before this */
	char trap_name[TS_TRAP_NAME_LEN];
	char trap_group[TS_TRAP_GROUP_LEN];
	char bus_name[TS_BUS_NAME_LEN];
	char dev_name[TS_DEV_NAME_LEN];
	__u8 cookie[TS_COOKIE_MAX];
	struct ts_wjh wjh;
};

/* Bytes of struct ts_event a kernel drop (source skb or test) reserves and sends. */
#define TS_SKB_EVENT_SIZE 160

/*
 * Follows struct ts_event when TS_EV_RAW is set, itself followed by cap_len
 * bytes of the packet from the header `link` names. A VLAN tag the device
 * moved into skb metadata is not in the bytes: it is here, for user space to
 * put back where it was on the wire.
 */
struct ts_raw {
	__u32 orig_len;       /* frame length from the first byte (without a tag in metadata) */
	__u16 cap_len;        /* bytes that follow */
	__u8 link;            /* TS_RAW_LINK_*, 0: no bytes could be located */
	__u8 vlan_accel;      /* 1: vlan_tpid/vlan_tci hold a tag from skb metadata */
	__u16 vlan_tpid;
	__u16 vlan_tci;
	__u32 _pad;
};

/*
 * Aggregation (-u): one entry per {trap or drop reason, ingress port, flow}.
 * ARP and other non-IP frames are keyed by their L2 fields alone. Kept small:
 * it is hashed for every packet.
 */
struct ts_flow_key {
	/* devlink: the address of the trap's name, which the driver registered
	 * once and which names the trap for as long as it exists; skb: the drop reason. */
	__u64 trap_id;
	__u32 ifindex;
	__u32 netns_ino;
	/* skb: ifindex the packet came in on, so that forwarded flows from two
	 * ingress ports to one egress port stay apart */
	__u32 skb_iif;
	/* devlink, SONiC kernels: the egress port, so that one flow leaving
	 * by two ports counts twice (traffic class, occupancy and latency are
	 * per-packet measurements and stay out of the key) */
	__u32 out_ifindex;
	__u8 source;
	__u8 ip_proto;
	__u16 eth_proto;
	__u16 vlan_id[2];
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u8 ip_src[16];
	__u8 ip_dst[16];
	__u16 sport;
	__u16 dport;
};

struct ts_flow {
	__u64 packets;
	__u64 bytes;          /* frame bytes (struct ts_packet.pkt_len) */
	__u64 first_ns;       /* CLOCK_BOOTTIME of the first and last packet */
	__u64 last_ns;
	struct ts_event exemplar; /* the first packet, fully decoded */
};

/*
 * The key of a flow without IPv6 addresses in its per-CPU twin (maps
 * counts0/1): struct ts_flow_key with four-byte addresses, which the
 * kernel hashes and compares on every counted packet in about 8 ns less.
 * Up to ip_src the two keys are laid out alike; the wide key of the same
 * flow has these addresses in the first four bytes of its own, zeros after
 * them (user space widens twin keys so when it drains them).
 */
struct ts_flow_key4 {
	__u64 trap_id;
	__u32 ifindex;
	__u32 netns_ino;
	__u32 skb_iif;
	__u32 out_ifindex;
	__u8 source;
	__u8 ip_proto;
	__u16 eth_proto;
	__u16 vlan_id[2];
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u8 ip_src[4];
	__u8 ip_dst[4];
	__u16 sport;
	__u16 dport;
};

/* A flow's packets counted on one CPU after its first (maps counts0/1 and
 * counts6_0/1, per CPU). */
struct ts_flow_count {
	__u64 packets;
	__u64 bytes;
	__u64 last_ns;
};

struct ts_filter_key {
	__u32 kind;           /* TS_FILTER_* */
	char name[TS_TRAP_NAME_LEN];
};

#endif /* TRAPSTREAM_H */
