/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The packet's own bytes for --pcap, copied only when user space asked for
 * them (raw_snap_len > 0). Located as the dissector locates its headers
 * (dissect.h): from skb->head + mac_header when an Ethernet header is there,
 * else from skb->head + network_header, never from skb->data.
 */
#ifndef TRAPSTREAM_RAW_H
#define TRAPSTREAM_RAW_H

/* A ring record with bytes: the event, where they start, and up to raw_snap_len of them. */
struct ts_raw_event {
	struct ts_event e;
	struct ts_raw raw;
	__u8 bytes[TS_RAW_MAX];
};

/*
 * Fill `raw` and copy at most `snap` (<= TS_RAW_MAX) bytes to `dst`. Nothing
 * to locate leaves link 0 and no bytes: the record still tells the event.
 */
static __always_inline void copy_raw(struct sk_buff *skb, bool link_frame, struct ts_raw *raw, __u8 *dst,
				     __u32 snap)
{
	__u16 mac = skb->mac_header, net = skb->network_header, tpid, tci;
	unsigned char *head = skb->head;
	__u32 start, tail, data_off, cap;

	__builtin_memset(raw, 0, sizeof(*raw));
	if (has_ethernet(skb, mac, net, link_frame)) {
		start = mac;
		raw->link = TS_RAW_LINK_ETHER;
		if (skb_accel_vlan(skb, &tpid, &tci)) {
			raw->vlan_accel = 1;
			raw->vlan_tpid = tpid;
			raw->vlan_tci = tci;
		}
	} else if (net != 0xffff && (mac == 0xffff || net >= mac)) {
		start = net;
		raw->link = TS_RAW_LINK_IP;
	} else {
		return;
	}
	tail = skb->tail;
	if (!head || tail <= start) {
		raw->link = 0;
		return;
	}
	data_off = skb->data - head;
	if (data_off >= start)
		raw->orig_len = skb->len + (data_off - start);
	else if (skb->len > start - data_off)
		raw->orig_len = skb->len - (start - data_off);
	cap = tail - start;
	if (cap > snap)
		cap = snap;
	/* Both bounds for the verifier: the constant one is what it can prove. */
	if (cap > TS_RAW_MAX)
		cap = TS_RAW_MAX;
	if (bpf_probe_read_kernel(dst, cap, head + start))
		cap = 0;
	raw->cap_len = cap;
	if (raw->orig_len < cap)
		raw->orig_len = cap;
}

#endif /* TRAPSTREAM_RAW_H */
