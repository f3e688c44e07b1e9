/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The packet dissector shared by every program.
 *
 * Headers are located from skb->head + mac_header when an Ethernet header is
 * there (has_ethernet), else from skb->head + network_header; never from
 * skb->data: at a drop point skb->data may already point past L3. Up to the
 * first TS_SNAP_LEN bytes are copied into a per-CPU scratch buffer (the
 * headers first, see TS_HEAD_COPY) and parsed there; every read is checked
 * both against the buffer (for the verifier) and against the bytes actually
 * copied (so a truncated packet yields the layers that were complete and
 * nothing invented).
 */
#ifndef TRAPSTREAM_DISSECT_H
#define TRAPSTREAM_DISSECT_H

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ1 0x9100
#define ETH_P_IPV6 0x86DD

/* dev->type values (ARPHRD_*) whose link-layer header is Ethernet's. */
#define ARPHRD_ETHER 1
#define ARPHRD_LOOPBACK 772

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_ICMPV6 58
#define IPPROTO_NONE 59
#define IPPROTO_DSTOPTS 60

/*
 * Past the TS_SNAP_LEN bytes that are ever copied in, room for the widest
 * read at an offset below TS_SNAP_LEN (a TCP header's flags, 14 bytes in):
 * the verifier can then check reads at offsets it knows only by a mask
 * (see dissect_ipv6). Nothing is ever read there: HAVE forbids it.
 */
#define TS_SCRATCH_SLACK 16

struct ts_scratch {
	__u8 b[TS_SNAP_LEN + TS_SCRATCH_SLACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ts_scratch);
} scratch SEC(".maps");

/*
 * The deepest any parse but an IPv6 extension walk reads: two VLAN tags, an
 * IPv4 header with 40 bytes of options, and a TCP header's first 20 bytes.
 * dissect copies this much first; a frame's later bytes (up to TS_SNAP_LEN)
 * only when an IPv6 extension header may lead into them. Copying all 256
 * bytes of a full-size frame cost 5-14 ns a drop (bpf_stats under a flood of
 * 1442-byte frames, benches/kernel.sh with PAYLOAD=1400).
 */
#define TS_HEAD_COPY (ETH_HLEN + 2 * 4 + 60 + 20)

/*
 * True when n bytes at off lie inside both the scratch buffer and the copied
 * bytes. The first comparison is what lets the verifier bound the access; the
 * second is the truth about the packet.
 */
#define HAVE(off, n) ((off) <= TS_SNAP_LEN - (n) && (off) + (n) <= cap)

static __always_inline __u16 rd16(const __u8 *b, __u32 off)
{
	return ((__u16)b[off] << 8) | b[off + 1];
}

static __always_inline __u32 rd32(const __u8 *b, __u32 off)
{
	return ((__u32)b[off] << 24) | ((__u32)b[off + 1] << 16) | ((__u32)b[off + 2] << 8) |
	       b[off + 3];
}

static __always_inline bool is_vlan_tpid(__u16 proto)
{
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD || proto == ETH_P_QINQ1;
}

/* A VLAN tag the NIC (or veth) moved out of the frame into skb metadata. */
static __always_inline bool skb_accel_vlan(struct sk_buff *skb, __u16 *tpid, __u16 *tci)
{
	bool present;

	if (bpf_core_field_exists(skb->vlan_present))
		present = BPF_CORE_READ_BITFIELD(skb, vlan_present);
	else
		present = skb->vlan_all != 0;
	if (!present)
		return false;
	*tpid = bpf_ntohs(skb->vlan_proto);
	*tci = skb->vlan_tci;
	return true;
}

static __always_inline void dissect_l4(const __u8 *b, __u32 off, __u32 cap, __u8 proto,
				       struct ts_packet *p)
{
	const __u8 *h = b + off;

	switch (proto) {
	case IPPROTO_TCP:
		if (!HAVE(off, 20))
			return;
		p->sport = rd16(h, 0);
		p->dport = rd16(h, 2);
		p->tcp_flags = h[13];
		p->layers |= TS_L_TCP;
		return;
	case IPPROTO_UDP:
		if (!HAVE(off, 8))
			return;
		p->sport = rd16(h, 0);
		p->dport = rd16(h, 2);
		p->udp_len = rd16(h, 4);
		p->layers |= TS_L_UDP;
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (!HAVE(off, 8))
			return;
		p->icmp_type = h[0];
		p->icmp_code = h[1];
		p->layers |= proto == IPPROTO_ICMP ? TS_L_ICMP : TS_L_ICMP6;
		return;
	}
}

static __always_inline void dissect_ipv4(const __u8 *b, __u32 off, __u32 cap, struct ts_packet *p)
{
	const __u8 *h = b + off;
	__u32 ihl;
	__u16 frag;

	if (!HAVE(off, 20))
		return;
	if ((h[0] >> 4) != 4)
		return;
	ihl = (h[0] & 0x0f) * 4;
	if (ihl < 20) /* malformed: no IPv4 layer rather than a guess */
		return;
	p->tos = h[1];
	p->ip_len = rd16(h, 2);
	p->ip_id = rd16(h, 4);
	frag = rd16(h, 6);
	p->frag_flags = (frag >> 13) & 0x3; /* DF and MF; the reserved bit is dropped */
	p->frag_off = frag & 0x1fff;
	p->ttl = h[8];
	p->ip_proto = h[9];
	__builtin_memcpy(p->ip_src, h + 12, 4);
	__builtin_memcpy(p->ip_dst, h + 16, 4);
	p->layers |= TS_L_IPV4;
	if (p->frag_off || (p->frag_flags & TS_FRAG_MF))
		p->layers |= TS_L_FRAG;
	if (p->frag_off) /* a non-first fragment carries no L4 header */
		return;
	dissect_l4(b, off + ihl, cap, p->ip_proto, p);
}

/* IPv6 extension headers that give their own length (the walk skips them by it). */
static __always_inline bool ipv6_sized_ext_header(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_AH;
}

/* Every header dissect_ipv6's walk follows: the sized ones and the fragment header. */
static __always_inline bool ipv6_ext_header(__u8 nexthdr)
{
	return ipv6_sized_ext_header(nexthdr) || nexthdr == IPPROTO_FRAGMENT;
}

static __always_inline void dissect_ipv6(const __u8 *b, __u32 off, __u32 cap, struct ts_packet *p)
{
	const __u8 *h = b + off;
	__u8 nexthdr;
	__u32 i;

	if (!HAVE(off, 40))
		return;
	if ((h[0] >> 4) != 6)
		return;
	p->tos = ((h[0] & 0x0f) << 4) | (h[1] >> 4);
	p->flow_label = ((__u32)(h[1] & 0x0f) << 16) | ((__u32)h[2] << 8) | h[3];
	p->ip_len = rd16(h, 4);
	nexthdr = h[6];
	p->ttl = h[7];
	__builtin_memcpy(p->ip_src, h + 8, 16);
	__builtin_memcpy(p->ip_dst, h + 24, 16);
	p->layers |= TS_L_IPV6;
	off += 40;

#pragma unroll
	for (i = 0; i < TS_IPV6_EXT_MAX; i++) {
		/*
		 * Every header the walk reads, and every upper layer it decodes,
		 * takes 8 bytes or more: from TS_SNAP_LEN - 8 on none can be
		 * whole, and stopping there names the same protocol going on
		 * would. Below it the mask changes nothing but bounds `off` on
		 * every copy the compiler makes of it: 5.10's verifier does not
		 * carry a bound checked on one copy to another, and `off` grows
		 * here by lengths read from the packet. The barrier keeps the
		 * compiler, which knows the mask changes nothing, from dropping it.
		 */
		if (off > TS_SNAP_LEN - 8)
			goto incomplete;
		barrier_var(off);
		off &= TS_SNAP_LEN - 1;
		if (ipv6_sized_ext_header(nexthdr)) {
			__u32 len;

			if (!HAVE(off, 2))
				goto incomplete;
			/* AH counts 4-byte words less two; the others 8-byte words less one. */
			if (nexthdr == IPPROTO_AH)
				len = ((__u32)b[off + 1] + 2) * 4;
			else
				len = ((__u32)b[off + 1] + 1) * 8;
			/*
			 * Its next-header byte alone proves nothing: a header whose
			 * end was not captured may be cut, or lie about its length,
			 * so the walk stops at it rather than name what follows.
			 */
			if (off + len > cap)
				goto incomplete;
			nexthdr = b[off];
			off += len;
		} else if (nexthdr == IPPROTO_FRAGMENT) {
			__u16 fo;

			if (!HAVE(off, 8))
				goto incomplete;
			fo = rd16(b, off + 2);
			p->frag_off = fo >> 3;
			p->frag_flags = fo & 1 ? TS_FRAG_MF : 0;
			p->ip_id = rd32(b, off + 4) & 0xffff;
			p->layers |= TS_L_FRAG;
			nexthdr = b[off];
			off += 8;
			if (p->frag_off) {
				p->ip_proto = nexthdr;
				return;
			}
		} else {
			p->ip_proto = nexthdr;
			if (nexthdr != IPPROTO_NONE)
				dissect_l4(b, off, cap, nexthdr, p);
			return;
		}
	}
	p->layers |= TS_L_WALK_LIMIT;
incomplete:
	/*
	 * The upper layer was not reached (the header is cut off by the capture,
	 * or the walk limit): report the header where the walk stopped.
	 */
	p->ip_proto = nexthdr;
}

static __always_inline void dissect_arp(const __u8 *b, __u32 off, __u32 cap, struct ts_packet *p)
{
	const __u8 *h = b + off;

	/* Only Ethernet/IPv4 ARP has the fixed 28-byte layout the fields describe. */
	if (!HAVE(off, 28))
		return;
	if (rd16(h, 0) != 1 || rd16(h, 2) != ETH_P_IP || h[4] != 6 || h[5] != 4)
		return;
	p->arp_op = rd16(h, 6);
	__builtin_memcpy(p->arp_sha, h + 8, 6);
	__builtin_memcpy(p->arp_spa, h + 14, 4);
	__builtin_memcpy(p->arp_tha, h + 18, 6);
	__builtin_memcpy(p->arp_tpa, h + 24, 4);
	p->layers |= TS_L_ARP;
}

/*
 * Whether the bytes at mac_header are an Ethernet header. Two facts must both
 * say so, because each alone is wrong somewhere:
 *
 * - The device frames with Ethernet: ARPHRD_ETHER (veth, bridges, VLANs,
 *   gretap, vxlan, ...) or loopback, which uses Ethernet framing. GRE in IP
 *   mode keeps the outer IP and GRE headers as its "MAC header" (mac_len 24
 *   or more), and sit on older kernels the outer IPv4 header: only the type
 *   tells.
 * - There is room for one before the network header. tun, ipip and (newer)
 *   sit reset the MAC header to the network header on receive (mac_len 0);
 *   a packet they received and that is then forwarded keeps that until a
 *   link-layer header is pushed on transmit, also when skb->dev is already
 *   the Ethernet device it leaves by: only the geometry tells.
 *
 * A network header before the MAC header was never set for this packet (a
 * driver reporting to devlink before the stack parsed the frame): it says
 * nothing, and the MAC header is trusted as the device type allows. Without a
 * device (a socket's queue) the geometry alone decides.
 *
 * A devlink trap (`link_frame`) is a frame as the switch received it: the
 * driver sets the MAC header (eth_type_trans) and reports before the stack
 * ever sets a network header, which then holds whatever the allocation left,
 * at or just past the MAC header when the buffer has no headroom (the vendor
 * SDK's copies). There the device type alone decides.
 */
static __always_inline bool has_ethernet(struct sk_buff *skb, __u16 mac, __u16 net, bool link_frame)
{
	struct net_device *dev;
	__u16 type;

	if (mac == 0xffff)
		return false;
	if (!link_frame && net != 0xffff && net >= mac && net - mac < ETH_HLEN)
		return false;
	dev = skb->dev;
	if (!dev)
		return true;
	type = dev->type;
	return type == ARPHRD_ETHER || type == ARPHRD_LOOPBACK;
}

/*
 * Where dissect found the frame, so that --pcap's copy (raw.h) takes its
 * bytes from the same place without working it out again.
 */
struct ts_locus {
	__u32 start;      /* offset of the first header from skb->head */
	__u32 tail;       /* skb->tail, past start */
	__u8 link;        /* TS_RAW_LINK_*; 0: not located, no bytes to copy */
	__u8 vlan_accel;  /* the outer tag (vlan_tpid/tci[0]) came from skb metadata */
};

/*
 * Fill p (zeroed by the caller) from skb, and loc unless it is NULL (no
 * --pcap: the verifier then drops the stores); link_frame: see has_ethernet.
 */
static __always_inline void dissect(struct sk_buff *skb, struct ts_packet *p, struct ts_locus *loc,
				    bool link_frame)
{
	__u32 zero = 0, start, tail, avail, cap, off = 0, ntags = 0, i, data_off;
	__u16 mac = skb->mac_header, net = skb->network_header, proto, tpid, tci;
	unsigned char *head = skb->head;
	struct ts_scratch *s;
	__u8 link;
	const __u8 *b;

	if (loc)
		__builtin_memset(loc, 0, sizeof(*loc));
	if (has_ethernet(skb, mac, net, link_frame)) {
		start = mac;
		link = TS_RAW_LINK_ETHER;
		/* A tag in metadata belongs to an Ethernet header; without one it is not reported. */
		if (skb_accel_vlan(skb, &tpid, &tci)) {
			p->vlan_tpid[0] = tpid;
			p->vlan_tci[0] = tci;
			p->layers |= TS_L_VLAN1;
			ntags = 1;
		}
	} else if (net != 0xffff && (mac == 0xffff || net >= mac)) {
		start = net;
		link = TS_RAW_LINK_IP;
		p->layers |= TS_L_NO_MAC;
	} else {
		/* Neither header is where it could be trusted: report no layer rather than guess. */
		return;
	}
	tail = skb->tail;
	if (!head || tail <= start)
		return;
	if (loc) {
		loc->start = start;
		loc->tail = tail;
		loc->link = link;
		loc->vlan_accel = ntags;
	}
	/*
	 * skb->len counts from skb->data, which at a drop point may sit past the
	 * headers already parsed; report the length from where dissection starts.
	 */
	data_off = skb->data - head;
	if (data_off >= start)
		p->pkt_len = skb->len + (data_off - start);
	else if (skb->len > start - data_off)
		p->pkt_len = skb->len - (start - data_off);
	/*
	 * A tag in metadata was on the wire: count it, so that a frame's length
	 * (and a flow's bytes) do not depend on whether the device offloads VLANs.
	 */
	if (ntags && p->pkt_len)
		p->pkt_len += 4;
	/* avail: the bytes dissection may use; cap: those copied so far. */
	avail = tail - start;
	if (avail > TS_SNAP_LEN)
		avail = TS_SNAP_LEN;
	cap = avail < TS_HEAD_COPY ? avail : TS_HEAD_COPY;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	b = s->b;
	if (bpf_probe_read_kernel(s->b, cap, head + start))
		return;
	p->cap_len = avail;

	if (p->layers & TS_L_NO_MAC) {
		proto = bpf_ntohs(skb->protocol);
	} else {
		if (!HAVE(off, ETH_HLEN))
			return;
		__builtin_memcpy(p->dst_mac, b, 6);
		__builtin_memcpy(p->src_mac, b + 6, 6);
		proto = rd16(b, 12);
		off = ETH_HLEN;
		p->layers |= TS_L_ETH;
#pragma unroll
		for (i = 0; i < 2; i++) {
			if (!is_vlan_tpid(proto) || ntags >= 2)
				break;
			if (!HAVE(off, 4))
				break;
			p->vlan_tpid[ntags & 1] = proto;
			p->vlan_tci[ntags & 1] = rd16(b + off, 0);
			p->layers |= ntags ? TS_L_VLAN2 : TS_L_VLAN1;
			proto = rd16(b + off, 2);
			off += 4;
			ntags++;
		}
		if (is_vlan_tpid(proto)) {
			/* Deeper stacks than two tags, or a tag cut short: stop at L2. */
			if (ntags >= 2)
				p->layers |= TS_L_WALK_LIMIT;
			p->eth_proto = proto;
			return;
		}
	}
	p->eth_proto = proto;

	switch (proto) {
	case ETH_P_IP:
		dissect_ipv4(b, off, cap, p);
		break;
	case ETH_P_IPV6:
		/*
		 * An extension header may run past the first copy: fetch the
		 * rest. Failing that, the walk stops where the copy ends, as at
		 * the end of a capture.
		 */
		if (avail > TS_HEAD_COPY && HAVE(off, 40) && ipv6_ext_header(b[off + 6])) {
			__u32 rest = avail - TS_HEAD_COPY;

			/* Bounded again on the register the helper gets, for 5.10 and 6.1. */
			barrier_var(rest);
			if (rest <= TS_SNAP_LEN - TS_HEAD_COPY &&
			    !bpf_probe_read_kernel(s->b + TS_HEAD_COPY, rest, head + start + TS_HEAD_COPY))
				cap = avail;
		}
		dissect_ipv6(b, off, cap, p);
		break;
	case ETH_P_ARP:
		dissect_arp(b, off, cap, p);
		break;
	}
}

#endif /* TRAPSTREAM_DISSECT_H */
