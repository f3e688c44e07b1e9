/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The packet's own bytes for --pcap, copied only when user space asked for
 * them (raw_snap_len > 0), from where the dissector located its headers
 * (dissect.h, struct ts_locus): skb->head + mac_header when an Ethernet
 * header is there, else skb->head + network_header, never skb->data.
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
 * Fill `raw` and copy at most `snap` (<= TS_RAW_MAX) bytes to `dst`, from
 * where dissect located the frame (`loc`, and the length and any tag from
 * skb metadata it put in `pkt`). Nothing located leaves link 0 and no
 * bytes: the record still tells the event.
 */
static __always_inline void copy_raw(struct sk_buff *skb, const struct ts_locus *loc, const struct ts_packet *pkt,
				     struct ts_raw *raw, __u8 *dst, __u32 snap)
{
	__u32 cap;
	__u64 len;

	__builtin_memset(raw, 0, sizeof(*raw));
	if (!loc->link)
		return;
	raw->link = loc->link;
	if (loc->vlan_accel) {
		raw->vlan_accel = 1;
		raw->vlan_tpid = pkt->vlan_tpid[0];
		raw->vlan_tci = pkt->vlan_tci[0];
	}
	raw->orig_len = pkt->pkt_len;
	cap = loc->tail - loc->start;
	if (cap > snap)
		cap = snap;
	/*
	 * Bounded again on the very register the helper gets: clang may pass
	 * a 32-bit copy of cap made before the clamp, and verifiers before 6.12
	 * learn no bound for such a copy from the clamp (a -u exemplar's copy
	 * was refused so on 5.10 and 6.1). The constant bound is for verifiers
	 * that do not see snap as the constant it was set to.
	 */
	len = cap;
	barrier_var(len);
	if (len > snap || len > TS_RAW_MAX)
		return;
	if (bpf_probe_read_kernel(dst, len, skb->head + loc->start))
		len = 0;
	raw->cap_len = len;
	if (raw->orig_len < len)
		raw->orig_len = len;
}

#endif /* TRAPSTREAM_RAW_H */
