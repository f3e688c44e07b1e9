// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * trapstream's kernel side: one event per devlink trap report or skb drop,
 * dissected here and either handed to user space through a ring buffer or,
 * with aggregation on, counted per {trap, port, flow} in a hash table.
 *
 * The stages live in headers included where what they use is defined:
 * dissect.h (the packet), raw.h (--pcap's bytes), filters.h, rate.h,
 * flows.h (-u) and sdk.h (a vendor SDK's reports).
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
#define NSEC_PER_SEC 1000000000ULL

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
const volatile struct ts_flow_key4 ts_flow_key4_abi = {};
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

#include "filters.h"

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

#include "rate.h"

/* --pcap's bytes per packet: raw_snap_len, bounded where the verifier sees it. */
static __always_inline __u32 raw_snap(void)
{
	__u32 snap = raw_snap_len;

	return snap > TS_RAW_MAX ? TS_RAW_MAX : snap;
}

/* Room for an event and `snap` bytes of its packet after it. */
static __always_inline struct ts_raw_event *reserve_raw(__u32 snap)
{
	return bpf_ringbuf_reserve(&events, sizeof(struct ts_event) + sizeof(struct ts_raw) + snap, 0);
}

/* The packet's bytes behind the event already in `re`, and the record sent. */
static __always_inline void submit_raw(struct report *r, struct ts_raw_event *re, const struct ts_locus *loc,
				       __u32 snap)
{
	re->e.flags |= TS_EV_RAW;
	copy_raw(r->skb, loc, &re->e.pkt, &re->raw, re->bytes, snap);
	bpf_ringbuf_submit(re, BPF_RB_NO_WAKEUP);
}

/*
 * An event with the packet's bytes (--pcap). Always the whole struct
 * ts_event: the room is sized by raw_snap_len, which the verifier reads as
 * the constant it was set to before load.
 */
static __always_inline void emit_event_raw(struct report *r, struct ts_packet *pkt, const struct ts_locus *loc)
{
	__u32 snap = raw_snap();
	struct ts_raw_event *re = reserve_raw(snap);

	if (!re) {
		count(TS_CNT_RB_LOST);
		return;
	}
	fill_head(&re->e, r);
	__builtin_memcpy(&re->e.pkt, pkt, sizeof(re->e.pkt));
	submit_raw(r, re, loc, snap);
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

#include "flows.h"

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
		count_flow(r, scratch, &loc);
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

#include "sdk.h"

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
