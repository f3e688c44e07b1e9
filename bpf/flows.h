/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Aggregation (-u): the double-buffered flow tables, their per-CPU
 * count slots, and the exemplars of new keys.
 */
#ifndef TRAPSTREAM_FLOWS_H
#define TRAPSTREAM_FLOWS_H

/*
 * The array of maps through which the programs reach table `active_table`
 * of a double-buffered pair: user space flips the index, never the maps.
 */
#define SELECTOR(name, table_type, first, second)          \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);  \
		__uint(max_entries, 2);                    \
		__type(key, __u32);                        \
		__array(values, struct table_type);        \
	} name SEC(".maps") = {                            \
		.values = { &first, &second },             \
	}

/*
 * Plain hash tables, not LRU: an LRU makes room by evicting a counted entry,
 * which is exactly the silent loss aggregation must not have. A full table
 * refuses the key and the packet is sent alone instead.
 */
struct flow_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* resized by user space before load */
	__type(key, struct ts_flow_key);
	__type(value, struct ts_flow);
} flows0 SEC(".maps"), flows1 SEC(".maps");
SELECTOR(flow_tables, flow_table, flows0, flows1);

/*
 * The counts of every packet of a flow after its first, one slot per CPU:
 * plain adds where the shared entry needs two atomic ones, which cost the
 * counted path 7-9 ns under a flood (bpf_stats). Filled only for keys the
 * flow table they pair with holds; user space adds the slots into the
 * flow's entry when it drains both. Flows without IPv6 addresses (IPv4,
 * ARP, other EtherTypes) are keyed by the compact struct ts_flow_key4 in
 * counts0/1, IPv6 flows by the whole key in counts6_0/1.
 */
struct count_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized by user space before load, like flows0/1 */
	__type(key, struct ts_flow_key4);
	__type(value, struct ts_flow_count);
} counts0 SEC(".maps"), counts1 SEC(".maps");
SELECTOR(count_tables, count_table, counts0, counts1);

struct count6_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized by user space before load, like flows0/1 */
	__type(key, struct ts_flow_key);
	__type(value, struct ts_flow_count);
} counts6_0 SEC(".maps"), counts6_1 SEC(".maps");
SELECTOR(count6_tables, count6_table, counts6_0, counts6_1);

_Static_assert(__builtin_offsetof(struct ts_flow_key4, ip_src) == __builtin_offsetof(struct ts_flow_key, ip_src),
	       "the compact key is the wide one up to the addresses");

/*
 * With -u --exemplars: exemplars sent per flow key, so that a flow is new
 * once, not once a table flip. LRU on purpose, unlike the flow tables: it
 * holds no counts, and a key it forgets (4 x the flow table's keys came
 * since) only gets its exemplars again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096); /* resized by user space before load */
	__type(key, struct ts_flow_key);
	__type(value, __u32);
} exemplar_seen SEC(".maps");

/*
 * A packet sent alone under -u (an exemplar, or the overflow of a full
 * table): the event, and under --pcap the packet's bytes after it, as
 * emit_event_raw sends them. Nonzero when the ring buffer has no room.
 */
static __always_inline long send_alone(struct report *r, const struct ts_event *e, const struct ts_locus *loc)
{
	struct ts_raw_event *re;
	__u32 snap;

	if (!raw_snap_len)
		return bpf_ringbuf_output(&events, (void *)e, sizeof(*e), BPF_RB_NO_WAKEUP);
	snap = raw_snap();
	re = reserve_raw(snap);
	if (!re)
		return -1;
	__builtin_memcpy(&re->e, e, sizeof(re->e));
	submit_raw(r, re, loc, snap);
	return 0;
}

/*
 * One of the first `exemplars` packets of a flow key never seen before (or
 * forgotten by exemplar_seen): sent alone at once, with its exact time, and
 * not counted into the table. False when the key has had its exemplars, or
 * when the rate limit or a full ring buffer stands in the way: the packet is
 * then counted into its flow like any other, so that no packet is lost for
 * being an exemplar. CPUs racing on one new key may each send one more than
 * `exemplars` (no fetching atomics before 5.12); each is counted once.
 */
static __always_inline bool send_exemplar(struct report *r, struct ts_event *e, struct ts_flow_key *key,
					  const struct ts_locus *loc)
{
	__u32 *sent = bpf_map_lookup_elem(&exemplar_seen, key);
	__u32 one = 1;

	if (sent && *sent >= exemplars)
		return false;
	if (rate_exceeded(r))
		return false;
	if (sent) {
		__sync_fetch_and_add(sent, 1);
	} else {
		/* Racing CPUs: one insert wins, the other finds it and adds. */
		if (bpf_map_update_elem(&exemplar_seen, key, &one, BPF_NOEXIST)) {
			sent = bpf_map_lookup_elem(&exemplar_seen, key);
			if (!sent)
				return false;
			__sync_fetch_and_add(sent, 1);
		}
	}
	fill_head(e, r);
	e->flags |= TS_EV_EXEMPLAR;
	if (send_alone(r, e, loc)) {
		/* Not sent: give the slot back, and let the caller count the packet. */
		e->flags &= ~TS_EV_EXEMPLAR;
		sent = bpf_map_lookup_elem(&exemplar_seen, key);
		if (sent)
			__sync_fetch_and_add(sent, -1);
		return false;
	}
	count(TS_CNT_EXEMPLARS);
	return true;
}

/* The twin key of a flow: all of it but IPv6 addresses. */
static __always_inline void flow_key4(const struct report *r, const struct ts_packet *p, struct ts_flow_key4 *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->trap_id = r->trap_id;
	k->ifindex = r->ifindex;
	k->netns_ino = r->netns_ino;
	k->skb_iif = r->skb_iif;
	k->out_ifindex = r->out_ifindex;
	k->source = r->source;
	k->eth_proto = p->eth_proto;
	k->vlan_id[0] = p->vlan_tci[0] & 0x0fff;
	k->vlan_id[1] = p->vlan_tci[1] & 0x0fff;
	__builtin_memcpy(k->src_mac, p->src_mac, 6);
	__builtin_memcpy(k->dst_mac, p->dst_mac, 6);
	if (p->layers & (TS_L_IPV4 | TS_L_IPV6)) {
		k->ip_proto = p->ip_proto;
		k->sport = p->sport;
		k->dport = p->dport;
	}
	if (p->layers & TS_L_IPV4) {
		__builtin_memcpy(k->ip_src, p->ip_src, 4);
		__builtin_memcpy(k->ip_dst, p->ip_dst, 4);
	}
}

/*
 * The flow table's key: the twin key with the whole addresses (an IPv4
 * packet's are its four bytes and zeros, as dissect left them).
 */
static __always_inline void flow_key(const struct ts_flow_key4 *k4, const struct ts_packet *p,
				     struct ts_flow_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key, k4, __builtin_offsetof(struct ts_flow_key4, ip_src));
	if (p->layers & (TS_L_IPV4 | TS_L_IPV6)) {
		__builtin_memcpy(key->ip_src, p->ip_src, 16);
		__builtin_memcpy(key->ip_dst, p->ip_dst, 16);
	}
	key->sport = k4->sport;
	key->dport = k4->dport;
}

/* Plain adds to this CPU's slot: no other CPU writes it, no program nests on it (enter). */
static __always_inline void add_to_slot(struct ts_flow_count *slot, __u64 len)
{
	__u64 now;

	slot->packets += 1;
	slot->bytes += len;
	now = recent_time();
	if (now > slot->last_ns)
		slot->last_ns = now;
	count(TS_CNT_AGG_PACKETS);
}

/*
 * Count the packet into the active flow table. The fast path, a key already
 * there, costs the dissection, one per-CPU hash lookup and plain adds to this
 * CPU's slot: the names and strings of the exemplar are read only when a key
 * is new. `wide` (IPv6 addresses: the whole key in counts6_0/1) is a
 * constant in each of the two copies count_flow makes: a second test of the
 * family at run time is one that verifiers before 6.12 cannot tie to the
 * first, and they then pair one family's twin with the other's key.
 */
static __always_inline void count_flow_in(struct report *r, struct ts_flow *fresh, const struct ts_locus *loc,
					  const bool wide)
{
	__u32 table_idx = active_table & 1;
	struct ts_event *e = &fresh->exemplar;
	struct ts_flow_key4 key4;
	struct ts_flow_key key;
	/* The key the family's twin is keyed by. */
	void *twin_key = wide ? (void *)&key : (void *)&key4;
	struct ts_flow_count *slot;
	struct ts_flow *flow;
	void *table, *counts;
	__u64 len, now;
	long err;

	if (own_traffic(&e->pkt)) {
		count(TS_CNT_FILTERED);
		return;
	}
	len = e->pkt.pkt_len;

	flow_key4(r, &e->pkt, &key4);
	/* The wide key only when the twin needs it: IPv4 builds it on a miss. */
	if (wide)
		flow_key(&key4, &e->pkt, &key);
	counts = bpf_map_lookup_elem(wide ? (void *)&count6_tables : (void *)&count_tables, &table_idx);
	if (!counts)
		return;
	slot = bpf_map_lookup_elem(counts, twin_key);
	if (slot) {
		add_to_slot(slot, len);
		return;
	}
	if (!wide)
		flow_key(&key4, &e->pkt, &key);
	table = bpf_map_lookup_elem(&flow_tables, &table_idx);
	if (!table)
		return;
	flow = bpf_map_lookup_elem(table, &key);
	if (!flow) {
		/* A key in the table has had its exemplars: only new ones are asked. */
		if (exemplars && send_exemplar(r, e, &key, loc))
			return;
		fill_head(e, r);
		fresh->packets = 1;
		fresh->bytes = len;
		fresh->first_ns = r->time_ns;
		fresh->last_ns = r->time_ns;
		err = bpf_map_update_elem(table, &key, fresh, BPF_NOEXIST);
		if (!err) {
			/*
			 * The key's slots, zero on every CPU, for the packets after
			 * this one. Without them (no room, or another CPU's insert
			 * racing) those packets find the entry above and add to it.
			 */
			struct ts_flow_count none = {};

			bpf_map_update_elem(counts, twin_key, &none, BPF_NOEXIST);
			/*
			 * Constant indices: the verifier loses the bound on table_idx
			 * across the helper calls. No fetch: atomics that return a
			 * value need kernel 5.12.
			 */
			__u32 *entries = table_idx ? &table_entries[1] : &table_entries[0];

			__sync_fetch_and_add(entries, 1);
			if (*entries * 4 >= flow_capacity * 3)
				flush_requested = 1;
			count(TS_CNT_AGG_PACKETS);
			return;
		}
		/* Another CPU inserted the same key first: count into its entry. */
		if (err == -EEXIST)
			flow = bpf_map_lookup_elem(table, &key);
		if (!flow) {
			/* No room for the key: the packet goes alone, as a flow of one. */
			flush_requested = 1;
			if (rate_limited(r))
				return;
			e->flags |= TS_EV_AGG_OVERFLOW;
			/* One packet, one counter: sent alone, or lost for want of ring space. */
			if (send_alone(r, e, loc))
				count(TS_CNT_RB_LOST);
			else
				count(TS_CNT_AGG_OVERFLOW);
			return;
		}
	}
	__sync_fetch_and_add(&flow->packets, 1);
	__sync_fetch_and_add(&flow->bytes, len);
	/* Racy but monotonic enough: two CPUs may each write a close last_ns. */
	now = r->time_ns ? r->time_ns : recent_time();
	if (now > flow->last_ns)
		flow->last_ns = now;
	count(TS_CNT_AGG_PACKETS);
}

static __always_inline void count_flow(struct report *r, struct ts_flow *fresh, const struct ts_locus *loc)
{
	if (fresh->exemplar.pkt.layers & TS_L_IPV6)
		count_flow_in(r, fresh, loc, true);
	else
		count_flow_in(r, fresh, loc, false);
}

#endif /* TRAPSTREAM_FLOWS_H */
