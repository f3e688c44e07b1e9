// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * trapstream's kernel side: one event per devlink trap report or skb drop,
 * dissected here and either handed to user space through a ring buffer or,
 * with aggregation on, counted per {trap, port, flow} in a hash table.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "trapstream.h"
#include "dissect.h"
#include "raw.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EEXIST 17

/* Run-time knobs, fixed before load (the verifier prunes what they turn off). */
/* Trap types emitted (bit per TS_TRAP_TYPE_*); control traps are off unless asked for. */
const volatile __u32 trap_type_mask = (1u << TS_TRAP_TYPE_DROP) | (1u << TS_TRAP_TYPE_EXCEPTION);
/* Count into the flow tables instead of emitting one event per packet. */
const volatile bool aggregate = false;
/* Keys a flow table holds; past 3/4 of it user space is asked to flush early. */
const volatile __u32 flow_capacity = 1024;
/* Filter kinds with any entry, and kinds with an include list (bit per TS_FILTER_*). */
const volatile __u32 filter_kinds = 0;
const volatile __u32 filter_include_kinds = 0;
/*
 * trapstream's own UDP datagrams to its collector (source port, collector
 * port and address). Their drops are not reported: a collector whose port is
 * closed would otherwise turn each datagram into a drop, a record, and the
 * next datagram.
 */
const volatile __u16 self_sport = 0;
const volatile __u16 self_dport = 0;
const volatile __u8 self_daddr[16] = {};
/* Events per second each trap (or drop reason) may emit; 0 = no limit. */
const volatile __u64 rate_limit = 0;
/*
 * Both sources on: remember each packet a vendor SDK reports, so that its
 * kfree_skb of the copy right after is not reported again as a kernel drop.
 */
const volatile bool track_sdk_copies = false;
/* -u: the first this many packets of each new flow key go out at once, alone; 0 = off. */
const volatile __u32 exemplars = 0;
/*
 * --pcap: packet bytes each event carries (<= TS_RAW_MAX); 0, the default,
 * copies none and reserves no room for them.
 */
const volatile __u32 raw_snap_len = 0;

/*
 * Shared with user space through the mmap'ed .bss. User space flips
 * active_table, waits for an RCU grace period (every program run finishes
 * within one), then drains the other table with no writer left.
 */
__u32 active_table;
__u32 table_entries[2];
__u32 flush_requested;
/* Set once a vendor SDK's report was seen: until then kfree_skb looks nothing up. */
__u32 sdk_seen;

/*
 * Never read: it puts the ABI structs into the object's BTF, from which the
 * skeleton generates the Rust types user space decodes into. In .rodata so
 * it costs no extra map.
 */
const volatile struct ts_event ts_event_abi = {};
const volatile struct ts_raw ts_raw_abi = {};
const volatile struct ts_flow_key ts_flow_key_abi = {};
const volatile struct ts_flow ts_flow_abi = {};
const volatile struct ts_flow_count ts_flow_count_abi = {};
const volatile struct ts_filter_key ts_filter_key_abi = {};
const volatile struct ts_rate_bucket ts_rate_bucket_abi = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct flow_table);
} flow_tables SEC(".maps") = {
	.values = { &flows0, &flows1 },
};

/*
 * The counts of every packet of a flow after its first, one slot per CPU:
 * plain adds where the shared entry needs two atomic ones, which cost the
 * counted path 7-9 ns under a flood (bpf_stats). Keyed like the flow table
 * it pairs with, and filled only for keys that table holds; user space adds
 * the slots into the flow's entry when it drains both.
 */
struct count_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized by user space before load, like flows0/1 */
	__type(key, struct ts_flow_key);
	__type(value, struct ts_flow_count);
} counts0 SEC(".maps"), counts1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct count_table);
} count_tables SEC(".maps") = {
	.values = { &counts0, &counts1 },
};

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
 * The packet being dissected, and with -u the flow being built: too big for
 * the stack. The exemplar's packet is where every run dissects, so that the
 * decision to emit is taken before any ring buffer space is reserved.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ts_flow);
} flow_scratch SEC(".maps");

/*
 * Set while a program runs on this CPU. A softirq can interrupt a program
 * running in process context on the same CPU; 5.10 then runs the nested
 * program over the interrupted one's per-CPU buffers, and newer kernels still
 * do when the nested program is a different one (devlink inside kfree_skb).
 * A nested run returns at once and is counted (TS_CNT_NESTED): interrupts
 * nest last-in first-out, so a plain per-CPU flag is enough.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} run_guard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ts_filter_key);
	__type(value, __u8);
} filters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ts_filter_key);
} filter_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ts_filter_key);
	__type(value, struct ts_rate_bucket);
} rate_buckets SEC(".maps");

/*
 * A vendor SDK reports every trap as a drop (trap_type 0), exceptions and
 * threshold crossings included. User space fills this map from its taxonomy
 * before load: key kind TS_FILTER_TRAP_NAME and the SDK's trap name, value a
 * TS_TRAP_TYPE_*. A name not in it stays a drop.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ts_filter_key);
	__type(value, __u8);
} sdk_trap_types SEC(".maps");

/*
 * Is a devlink instance a vendor SDK's dummy? Remembered per CPU for the
 * last bus seen: the bus is a static object of its driver, so its address
 * names it for as long as the driver is loaded.
 */
struct devlink_memo {
	__u64 bus;
	__u32 is_sdk;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct devlink_memo);
} devlink_memo SEC(".maps");

/* A packet a vendor SDK reported, until the SDK frees its copy. */
struct sdk_copy {
	__u64 time_ns;
	__u64 dev;            /* address of its input net_device */
};

/*
 * Keyed by the skb's address. LRU: an entry whose free never came (an SDK
 * that consumes instead) ages out instead of filling the table; a hit is
 * believed only for the same device within a second (see sdk_copy_freed).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sdk_copy);
} sdk_reported SEC(".maps");

/* The clock as of the last jiffy, per CPU (see recent_time). */
struct time_cache {
	__u64 jiffies;
	__u64 boot_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct time_cache);
} clock_cache SEC(".maps");

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	/* Per-CPU slot: no other CPU writes it, and run_guard keeps runs on one CPU from nesting. */
	if (c)
		*c += 1;
}

/* False when another run holds this CPU; the caller then returns without a trace but the count. */
static __always_inline bool enter(void)
{
	__u32 zero = 0, idx = TS_CNT_NESTED;
	__u32 *busy = bpf_map_lookup_elem(&run_guard, &zero);
	__u64 *c;

	if (!busy)
		return false;
	if (*busy) {
		/* Atomic: a deeper nesting level may be counting too. */
		c = bpf_map_lookup_elem(&counters, &idx);
		if (c)
			__sync_fetch_and_add(c, 1);
		return false;
	}
	*busy = 1;
	return true;
}

static __always_inline void leave(void)
{
	__u32 zero = 0;
	__u32 *busy = bpf_map_lookup_elem(&run_guard, &zero);

	if (busy)
		*busy = 0;
}

/* The verdict of a filter kind for the key in `key` (zero padded). */
static __always_inline bool verdict_filters_out(__u32 kind, struct ts_filter_key *key)
{
	__u8 *verdict = bpf_map_lookup_elem(&filters, key);

	if ((filter_include_kinds & (1u << kind)) && !(verdict && (*verdict & TS_FILTER_INCLUDE)))
		return true;
	return verdict && (*verdict & TS_FILTER_EXCLUDE);
}

/* The filter key to fill, zeroed and of `kind`; NULL when no filter of the kind is configured. */
static __always_inline struct ts_filter_key *filter_key(__u32 kind)
{
	__u32 zero = 0;
	struct ts_filter_key *key;

	if (!(filter_kinds & (1u << kind)))
		return 0;
	key = bpf_map_lookup_elem(&filter_scratch, &zero);
	if (!key)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	key->kind = kind;
	return key;
}

/*
 * True when a filter of this kind says to skip the packet. `name` is a kernel
 * string (NULL reads as the empty name); the lookups compile away when no
 * filter of the kind is configured.
 */
static __always_inline bool filtered_out(__u32 kind, const char *name)
{
	struct ts_filter_key *key = filter_key(kind);

	if (!key)
		return false;
	if (name)
		bpf_probe_read_kernel_str(key->name, sizeof(key->name), name);
	return verdict_filters_out(kind, key);
}

static __always_inline bool filtered_out_u32(__u32 kind, __u32 value)
{
	struct ts_filter_key *key = filter_key(kind);

	if (!key)
		return false;
	__builtin_memcpy(key->name, &value, sizeof(value));
	return verdict_filters_out(kind, key);
}

/* The facts about one report that are cheap to read: enough to key a flow. */
struct report {
	__u64 time_ns;
	__u64 trap_id;
	struct sk_buff *skb;
	struct net_device *dev;
	const struct devlink_trap_metadata *md; /* devlink only */
	struct devlink *devlink;                /* devlink only */
	__u32 reason;
	__u32 ifindex;
	__u32 netns_ino;
	__u32 skb_iif;
	__u32 out_ifindex;                      /* devlink on SONiC kernels: egress port */
	__u8 source;
	__u8 trap_type;
};

/*
 * CLOCK_BOOTTIME read at most once a jiffy per CPU. Reading the clock costs
 * 40-55 ns in a VM, a quarter of the handler; a counted packet whose flow
 * exists only needs lastSeen, and a jiffy (1-10 ms) is precision enough there.
 */
static __always_inline __u64 recent_time(void)
{
	__u32 zero = 0;
	struct time_cache *c = bpf_map_lookup_elem(&clock_cache, &zero);
	__u64 j = bpf_jiffies64();

	if (!c)
		return bpf_ktime_get_boot_ns();
	if (c->jiffies != j) {
		c->jiffies = j;
		c->boot_ns = bpf_ktime_get_boot_ns();
	}
	return c->boot_ns;
}

/* The exact time for what is reported on its own (events, new flows). */
static __always_inline void stamp(struct report *r)
{
	if (!r->time_ns)
		r->time_ns = bpf_ktime_get_boot_ns();
}

/* Whether the running kernel carries SONiC's extended trap metadata: all of it or none. */
static __always_inline bool has_wjh_fields(void)
{
	const struct devlink_trap_metadata___wjh *x = 0;

	return bpf_core_field_exists(x->output_port_dev) && bpf_core_field_exists(x->output_lag_dev) &&
	       bpf_core_field_exists(x->out_tc) && bpf_core_field_exists(x->out_tc_occ) &&
	       bpf_core_field_exists(x->latency) && bpf_core_field_exists(x->out_tc_valid) &&
	       bpf_core_field_exists(x->out_tc_occ_valid) && bpf_core_field_exists(x->latency_valid);
}

static __always_inline void read_netdev(const struct net_device *dev, __u32 *ifindex, char *name)
{
	if (!dev)
		return;
	*ifindex = dev->ifindex;
	bpf_probe_read_kernel_str(name, TS_IFNAMSIZ, dev->name);
}

/* SONiC's extended metadata, each value only with its validity bit (w is zeroed). */
static __always_inline void fill_wjh(struct ts_wjh *w, const struct devlink_trap_metadata *md)
{
	const struct devlink_trap_metadata___wjh *x = (const void *)md;

	if (!has_wjh_fields())
		return;
	w->flags = TS_WJH_FIELDS;
	read_netdev(x->output_port_dev, &w->out_ifindex, w->out_ifname);
	read_netdev(x->output_lag_dev, &w->out_lag_ifindex, w->out_lag_name);
	if (BPF_CORE_READ_BITFIELD(x, out_tc_valid)) {
		w->flags |= TS_WJH_TC_VALID;
		w->out_tc = x->out_tc;
	}
	if (BPF_CORE_READ_BITFIELD(x, out_tc_occ_valid)) {
		w->flags |= TS_WJH_OCC_VALID;
		w->tc_occupancy = x->out_tc_occ;
	}
	if (BPF_CORE_READ_BITFIELD(x, latency_valid)) {
		w->flags |= TS_WJH_LATENCY_VALID;
		w->latency = x->latency;
	}
}

_Static_assert(__builtin_offsetof(struct ts_event, trap_name) == TS_SKB_EVENT_SIZE,
	       "a kernel drop's record is the part of ts_event before the devlink fields");

/* What every source reports, but the packet; every byte written (buffers are recycled). */
static __always_inline void fill_common(struct ts_event *e, struct report *r)
{
	stamp(r);
	__builtin_memset(e, 0, __builtin_offsetof(struct ts_event, pkt));
	e->kind = TS_KIND_EVENT;
	e->source = r->source;
	e->trap_type = r->trap_type;
	e->time_ns = r->time_ns;
	e->ifindex = r->ifindex;
	e->netns_ino = r->netns_ino;
	e->drop_reason = r->reason;
	e->skb_iif = r->skb_iif;
	/*
	 * name is an array inside struct net_device, always NUL-terminated
	 * within it: two direct 8-byte loads instead of a string copy helper
	 * (20-40 ns). Bytes after the NUL may be an older, longer name's; user
	 * space stops at the NUL.
	 */
	if (r->dev)
		__builtin_memcpy(e->ifname, r->dev->name, sizeof(e->ifname));
}

/* The devlink part of a whole-size event, zeroed for the other sources. */
static __always_inline void fill_devlink(struct ts_event *e, struct report *r)
{
	const struct flow_action_cookie *fa;
	struct device *dev;
	__u32 n;

	__builtin_memset(e->trap_name, 0, sizeof(*e) - TS_SKB_EVENT_SIZE);
	if (r->source != TS_SOURCE_DEVLINK || !r->md)
		return;
	bpf_probe_read_kernel_str(e->trap_name, sizeof(e->trap_name), r->md->trap_name);
	bpf_probe_read_kernel_str(e->trap_group, sizeof(e->trap_group), r->md->trap_group_name);
	fa = r->md->fa_cookie;
	if (fa) {
		n = fa->cookie_len;
		e->cookie_len = n > 0xffff ? 0xffff : n;
		if (n > TS_COOKIE_MAX)
			n = TS_COOKIE_MAX;
		bpf_probe_read_kernel(e->cookie, n, fa->cookie);
	}
	fill_wjh(&e->wjh, r->md);
	dev = r->devlink ? r->devlink->dev : 0;
	if (dev) {
		const struct bus_type *bus = dev->bus;
		const char *name = dev->init_name;

		if (bus)
			bpf_probe_read_kernel_str(e->bus_name, sizeof(e->bus_name), bus->name);
		if (!name)
			name = dev->kobj.name;
		bpf_probe_read_kernel_str(e->dev_name, sizeof(e->dev_name), name);
	}
}

/* Everything of a whole-size event (a flow's exemplar) but the packet. */
static __always_inline void fill_head(struct ts_event *e, struct report *r)
{
	fill_common(e, r);
	fill_devlink(e, r);
}

/*
 * The filters each source can be judged by, read from the kernel's own
 * strings before anything is reserved or copied. Trap names and groups
 * describe devlink traps only, drop reasons kernel drops only: a filter of
 * the other source's kind lets a report through untouched. Ports and
 * network namespaces describe the device, which both sources have.
 */
static __always_inline bool report_filtered_out(struct report *r)
{
	if (r->source == TS_SOURCE_DEVLINK && r->md &&
	    (filtered_out(TS_FILTER_TRAP_NAME, r->md->trap_name) ||
	     filtered_out(TS_FILTER_TRAP_GROUP, r->md->trap_group_name)))
		return true;
	if (r->source != TS_SOURCE_DEVLINK && filtered_out_u32(TS_FILTER_REASON, r->reason))
		return true;
	return filtered_out(TS_FILTER_PORT, r->dev ? r->dev->name : 0) ||
	       filtered_out_u32(TS_FILTER_NETNS, r->netns_ino);
}

static __always_inline bool to_collector(const __u8 *daddr)
{
	__u8 diff = 0;
	int i;

#pragma unroll
	for (i = 0; i < 16; i++)
		diff |= daddr[i] ^ self_daddr[i];
	return diff == 0;
}

/* trapstream's own datagram to its collector, dropped (see self_sport). */
static __always_inline bool own_traffic(const struct ts_packet *p)
{
	return self_dport && (p->layers & TS_L_UDP) && p->sport == self_sport && p->dport == self_dport &&
	       to_collector(p->ip_dst);
}

#define NSEC_PER_SEC 1000000000ULL

/*
 * Token bucket per trap: `rate_limit` events a second, bursts of as many.
 * Buckets are updated without atomics (5.10 has no cmpxchg for BPF), so CPUs
 * racing on one bucket can let a few extra events through; every suppressed
 * event is counted exactly.
 */
static __always_inline bool rate_exceeded(struct report *r)
{
	__u32 zero = 0;
	struct ts_filter_key *key;
	struct ts_rate_bucket *b, fresh;
	__u64 now, cap = rate_limit * NSEC_PER_SEC, elapsed, tokens;

	if (!rate_limit)
		return false;
	stamp(r);
	now = r->time_ns;
	key = bpf_map_lookup_elem(&filter_scratch, &zero);
	if (!key)
		return false;
	__builtin_memset(key, 0, sizeof(*key));
	key->kind = r->source;
	__builtin_memcpy(key->name, &r->trap_id, sizeof(r->trap_id));
	b = bpf_map_lookup_elem(&rate_buckets, key);
	if (!b) {
		fresh.tokens = cap - NSEC_PER_SEC;
		fresh.last_ns = now;
		/* A full bucket map lets events through rather than suppress blindly. */
		bpf_map_update_elem(&rate_buckets, key, &fresh, BPF_ANY);
		return false;
	}
	elapsed = now > b->last_ns ? now - b->last_ns : 0;
	/* Past a second the bucket is full anyway; this also bounds the product. */
	tokens = elapsed >= NSEC_PER_SEC ? cap : b->tokens + elapsed * rate_limit;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NSEC_PER_SEC) {
		b->tokens = tokens;
		return true;
	}
	b->tokens = tokens - NSEC_PER_SEC;
	return false;
}

/* The rate limit for an event that is then suppressed, and counted so. */
static __always_inline bool rate_limited(struct report *r)
{
	if (!rate_exceeded(r))
		return false;
	count(TS_CNT_RATE_LIMITED);
	return true;
}

/*
 * An event with the packet's bytes (--pcap). Always the whole struct
 * ts_event: the room is sized by raw_snap_len, which the verifier reads as
 * the constant it was set to before load.
 */
static __always_inline void emit_event_raw(struct report *r, struct ts_packet *pkt, const struct ts_locus *loc)
{
	__u32 snap = raw_snap_len;
	struct ts_raw_event *re;

	if (snap > TS_RAW_MAX)
		snap = TS_RAW_MAX;
	re = bpf_ringbuf_reserve(&events, sizeof(struct ts_event) + sizeof(struct ts_raw) + snap, 0);
	if (!re) {
		count(TS_CNT_RB_LOST);
		return;
	}
	fill_head(&re->e, r);
	re->e.flags |= TS_EV_RAW;
	__builtin_memcpy(&re->e.pkt, pkt, sizeof(re->e.pkt));
	copy_raw(r->skb, loc, pkt, &re->raw, re->bytes, snap);
	bpf_ringbuf_submit(re, BPF_RB_NO_WAKEUP);
}

/*
 * One event per packet. Every reason not to emit (filters, own traffic, the
 * rate limit) is decided first, so that a storm of filtered or suppressed
 * events never takes ring buffer space and `ring_lost` counts only events
 * that were to be delivered. Each packet lands in exactly one counter.
 */
static __always_inline void emit_event(struct report *r, struct ts_packet *pkt, const struct ts_locus *loc)
{
	struct ts_event *e;

	if (own_traffic(pkt)) {
		count(TS_CNT_FILTERED);
		return;
	}
	if (rate_limited(r))
		return;
	if (raw_snap_len) {
		emit_event_raw(r, pkt, loc);
		return;
	}
	/* Constant sizes per branch: the verifier checks each against its writes. */
	if (r->source == TS_SOURCE_DEVLINK)
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	else
		e = bpf_ringbuf_reserve(&events, TS_SKB_EVENT_SIZE, 0);
	if (!e) {
		count(TS_CNT_RB_LOST);
		return;
	}
	fill_common(e, r);
	if (r->source == TS_SOURCE_DEVLINK)
		fill_devlink(e, r);
	__builtin_memcpy(&e->pkt, pkt, sizeof(e->pkt));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
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
static __always_inline bool send_exemplar(struct report *r, struct ts_event *e, struct ts_flow_key *key)
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
	if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP)) {
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

/*
 * Count the packet into the active flow table. The fast path, a key already
 * there, costs the dissection, one per-CPU hash lookup and plain adds to this
 * CPU's slot: the names and strings of the exemplar are read only when a key
 * is new.
 */
static __always_inline void count_flow(struct report *r, struct ts_flow *fresh)
{
	__u32 table_idx = active_table & 1;
	struct ts_event *e = &fresh->exemplar;
	struct ts_flow_key key;
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

	__builtin_memset(&key, 0, sizeof(key));
	key.trap_id = r->trap_id;
	key.ifindex = r->ifindex;
	key.netns_ino = r->netns_ino;
	key.skb_iif = r->skb_iif;
	key.out_ifindex = r->out_ifindex;
	key.source = r->source;
	key.eth_proto = e->pkt.eth_proto;
	key.vlan_id[0] = e->pkt.vlan_tci[0] & 0x0fff;
	key.vlan_id[1] = e->pkt.vlan_tci[1] & 0x0fff;
	__builtin_memcpy(key.src_mac, e->pkt.src_mac, 6);
	__builtin_memcpy(key.dst_mac, e->pkt.dst_mac, 6);
	if (e->pkt.layers & (TS_L_IPV4 | TS_L_IPV6)) {
		__builtin_memcpy(key.ip_src, e->pkt.ip_src, 16);
		__builtin_memcpy(key.ip_dst, e->pkt.ip_dst, 16);
		key.ip_proto = e->pkt.ip_proto;
		key.sport = e->pkt.sport;
		key.dport = e->pkt.dport;
	}

	counts = bpf_map_lookup_elem(&count_tables, &table_idx);
	if (!counts)
		return;
	slot = bpf_map_lookup_elem(counts, &key);
	if (slot) {
		/* This CPU's slot: no other CPU writes it, no program nests on it (enter). */
		slot->packets += 1;
		slot->bytes += len;
		now = recent_time();
		if (now > slot->last_ns)
			slot->last_ns = now;
		count(TS_CNT_AGG_PACKETS);
		return;
	}
	table = bpf_map_lookup_elem(&flow_tables, &table_idx);
	if (!table)
		return;
	flow = bpf_map_lookup_elem(table, &key);
	if (!flow) {
		/* A key in the table has had its exemplars: only new ones are asked. */
		if (exemplars && send_exemplar(r, e, &key))
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

			bpf_map_update_elem(counts, &key, &none, BPF_NOEXIST);
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
			if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
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

/* Filters, then the dissection every path needs, then emit or count. */
static __always_inline void handle_report(struct report *r)
{
	struct ts_locus loc;
	__u32 zero = 0;
	struct ts_flow *scratch;
	struct ts_packet *pkt;

	if (report_filtered_out(r)) {
		count(TS_CNT_FILTERED);
		return;
	}
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return;
	pkt = &scratch->exemplar.pkt;
	__builtin_memset(pkt, 0, sizeof(*pkt));
	/* raw_snap_len is set before load: without --pcap nothing is located for it. */
	dissect(r->skb, pkt, raw_snap_len ? &loc : 0, r->source == TS_SOURCE_DEVLINK);
	if (aggregate)
		count_flow(r, scratch);
	else
		emit_event(r, pkt, &loc);
}

static __always_inline void netdev_ids(struct net_device *dev, struct report *r)
{
	struct net *net;

	r->ifindex = dev->ifindex;
	net = dev->nd_net.net;
	if (net)
		r->netns_ino = net->ns.inum;
}

#define SDK_BUS_NAME "devlink_dummy"

/* The bus a vendor SDK's dummy devlink instance sits on (sdk-path.md). */
static __always_inline bool vendor_sdk(const struct devlink *devlink)
{
	static const char want[] = SDK_BUS_NAME;
	char bus_name[sizeof(want)];
	__u32 zero = 0;
	struct devlink_memo *memo = bpf_map_lookup_elem(&devlink_memo, &zero);
	const struct device *dev = devlink ? devlink->dev : 0;
	const struct bus_type *bus = dev ? dev->bus : 0;
	__u8 diff = 0;
	int i;

	if (!memo || !bus)
		return false;
	if (memo->bus == (__u64)bus)
		return memo->is_sdk;
	memo->bus = (__u64)bus;
	memo->is_sdk = 0;
	if (bpf_probe_read_kernel_str(bus_name, sizeof(bus_name), bus->name) != sizeof(want))
		return false;
#pragma unroll
	for (i = 0; i < sizeof(want); i++)
		diff |= bus_name[i] ^ want[i];
	memo->is_sdk = diff == 0;
	return memo->is_sdk;
}

/* The taxonomy's type for a vendor SDK trap (see sdk_trap_types). */
static __always_inline __u32 sdk_trap_type(const char *name)
{
	__u32 zero = 0;
	struct ts_filter_key *key = bpf_map_lookup_elem(&filter_scratch, &zero);
	__u8 *type;

	if (!key)
		return TS_TRAP_TYPE_DROP;
	__builtin_memset(key, 0, sizeof(*key));
	key->kind = TS_FILTER_TRAP_NAME;
	bpf_probe_read_kernel_str(key->name, sizeof(key->name), name);
	type = bpf_map_lookup_elem(&sdk_trap_types, key);
	return type ? *type : TS_TRAP_TYPE_DROP;
}

/* Remember a packet the SDK reports, whatever becomes of the report here. */
static __always_inline void remember_sdk_copy(struct sk_buff *skb, struct net_device *dev)
{
	__u64 key = (__u64)skb;
	struct sdk_copy copy = { .time_ns = recent_time(), .dev = (__u64)dev };

	if (!track_sdk_copies)
		return;
	bpf_map_update_elem(&sdk_reported, &key, &copy, BPF_ANY);
	if (!sdk_seen)
		sdk_seen = 1;
}

/*
 * The SDK freeing its copy of a packet it just reported: the same packet,
 * already delivered as the trap, so neither seen nor lost as a kernel drop.
 * The same address on another device, or later than a second, is a new skb
 * that reused the memory of one whose free never came here.
 */
static __always_inline bool sdk_copy_freed(struct sk_buff *skb)
{
	__u64 key = (__u64)skb, now;
	struct sdk_copy *copy;
	bool same;

	if (!track_sdk_copies || !sdk_seen)
		return false;
	copy = bpf_map_lookup_elem(&sdk_reported, &key);
	if (!copy)
		return false;
	now = recent_time();
	same = copy->dev == (__u64)skb->dev &&
	       (now > copy->time_ns ? now - copy->time_ns : copy->time_ns - now) <= NSEC_PER_SEC;
	bpf_map_delete_elem(&sdk_reported, &key);
	if (same)
		count(TS_CNT_SDK_FREES);
	return same;
}

static __always_inline void devlink_trap(__u64 *ctx)
{
	const struct devlink_trap_metadata *md = (void *)ctx[2];
	struct devlink *devlink = (void *)ctx[0];
	struct sk_buff *skb = (void *)ctx[1];
	struct report r = {};
	__u32 type, max_type = TS_TRAP_TYPE_CONTROL;

	count(TS_CNT_SEEN);
	type = md->trap_type;
	if (vendor_sdk(devlink)) {
		remember_sdk_copy(skb, md->input_dev);
		type = sdk_trap_type(md->trap_name);
		max_type = TS_TRAP_TYPE_THRESHOLD;
	}
	if (type > max_type || !(trap_type_mask & (1u << type))) {
		count(TS_CNT_FILTERED);
		return;
	}
	r.source = TS_SOURCE_DEVLINK;
	r.trap_type = type;
	r.reason = TS_DROP_REASON_UNKNOWN;
	r.devlink = devlink;
	r.skb = skb;
	r.md = md;
	r.trap_id = (__u64)md->trap_name;
	r.dev = md->input_dev;
	if (r.dev)
		netdev_ids(r.dev, &r);
	if (has_wjh_fields()) {
		const struct devlink_trap_metadata___wjh *x = (const void *)md;
		struct net_device *out = x->output_port_dev;

		if (out)
			r.out_ifindex = out->ifindex;
	}
	handle_report(&r);
}

SEC("tp_btf/devlink_trap_report")
int handle_devlink_trap(__u64 *ctx)
{
	if (enter()) {
		devlink_trap(ctx);
		leave();
	}
	return 0;
}

static __always_inline void skb_drop(struct sk_buff *skb, __u32 reason, __u8 source)
{
	struct report r = {};

	if (sdk_copy_freed(skb))
		return;
	count(TS_CNT_SEEN);
	/* Kernels that report a normal free through kfree_skb say so with SKB_CONSUMED. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED)) {
		count(TS_CNT_FILTERED);
		return;
	}
	r.source = source;
	r.trap_type = TS_TRAP_TYPE_NONE;
	r.reason = reason;
	r.trap_id = reason;
	r.skb = skb;
	r.skb_iif = skb->skb_iif;
	r.dev = skb->dev;
	if (r.dev) {
		netdev_ids(r.dev, &r);
	} else {
		/* Read once: the verifier tracks the null check on this copy only. */
		struct sock *sk = skb->sk;

		barrier_var(sk);
		if (sk) {
			struct net *net = sk->__sk_common.skc_net.net;

			if (net)
				r.netns_ino = net->ns.inum;
		}
	}
	handle_report(&r);
}

static __always_inline int emit_skb_drop(struct sk_buff *skb, __u32 reason, __u8 source)
{
	if (enter()) {
		skb_drop(skb, reason, source);
		leave();
	}
	return 0;
}

/* Kernels 5.17+: kfree_skb(skb, location, reason[, rx_sk]). */
SEC("tp_btf/kfree_skb")
int handle_kfree_skb(__u64 *ctx)
{
	return emit_skb_drop((void *)ctx[0], (__u32)ctx[2], TS_SOURCE_SKB);
}

/* Kernels before 5.17: kfree_skb(skb, location), no reason to read. */
SEC("tp_btf/kfree_skb")
int handle_kfree_skb_noreason(__u64 *ctx)
{
	return emit_skb_drop((void *)ctx[0], TS_DROP_REASON_UNKNOWN, TS_SOURCE_SKB);
}

/*
 * Test entry: BPF_PROG_TEST_RUN on a synthetic frame runs the very handler the
 * kfree_skb programs use, on the kernel skb behind the tc context.
 */
SEC("tc")
int dissect_test_frame(void *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);

	emit_skb_drop(skb, 0, TS_SOURCE_TEST);
	return 0;
}
