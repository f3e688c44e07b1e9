// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * trapstream's kernel side: one event per devlink trap report or skb drop,
 * dissected here and handed to user space through a ring buffer.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "trapstream.h"
#include "dissect.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Trap types emitted (bit per TS_TRAP_TYPE_*); control traps are off unless asked for. */
const volatile __u32 trap_type_mask = (1u << TS_TRAP_TYPE_DROP) | (1u << TS_TRAP_TYPE_EXCEPTION);

/*
 * Never read: it puts struct ts_event into the object's BTF, from which the
 * skeleton generates the Rust type user space decodes into. In .rodata so it
 * costs no extra map.
 */
const volatile struct ts_event ts_event_abi = {};

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


extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	/* Per-CPU slot: no other CPU writes it, and tracepoint programs do not nest on one CPU. */
	if (c)
		*c += 1;
}

static __always_inline struct ts_event *reserve_event(__u8 source)
{
	struct ts_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(TS_CNT_RB_LOST);
		return 0;
	}
	/* Ring buffer memory is recycled: every byte user space reads must be written. */
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = TS_KIND_EVENT;
	e->source = source;
	e->time_ns = bpf_ktime_get_boot_ns();
	return e;
}

static __always_inline void read_netdev(struct net_device *dev, struct ts_event *e)
{
	struct net *net;

	bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), dev->name);
	e->ifindex = dev->ifindex;
	net = dev->nd_net.net;
	if (net)
		e->netns_ino = net->ns.inum;
}

SEC("tp_btf/devlink_trap_report")
int handle_devlink_trap(__u64 *ctx)
{
	struct devlink *devlink = (void *)ctx[0];
	struct sk_buff *skb = (void *)ctx[1];
	const struct devlink_trap_metadata *md = (void *)ctx[2];
	const struct flow_action_cookie *fa;
	struct net_device *in_dev;
	struct device *dev;
	struct ts_event *e;
	__u32 type, n;

	count(TS_CNT_SEEN);
	type = md->trap_type;
	if (type > TS_TRAP_TYPE_CONTROL || !(trap_type_mask & (1u << type))) {
		count(TS_CNT_FILTERED);
		return 0;
	}
	e = reserve_event(TS_SOURCE_DEVLINK);
	if (!e)
		return 0;
	e->trap_type = type;
	e->drop_reason = TS_DROP_REASON_UNKNOWN;
	bpf_probe_read_kernel_str(e->trap_name, sizeof(e->trap_name), md->trap_name);
	bpf_probe_read_kernel_str(e->trap_group, sizeof(e->trap_group), md->trap_group_name);
	in_dev = md->input_dev;
	if (in_dev)
		read_netdev(in_dev, e);
	fa = md->fa_cookie;
	if (fa) {
		n = fa->cookie_len;
		e->cookie_len = n > 0xffff ? 0xffff : n;
		if (n > TS_COOKIE_MAX)
			n = TS_COOKIE_MAX;
		bpf_probe_read_kernel(e->cookie, n, fa->cookie);
	}
	dev = devlink->dev;
	if (dev) {
		const struct bus_type *bus = dev->bus;
		const char *name = dev->init_name;

		if (bus)
			bpf_probe_read_kernel_str(e->bus_name, sizeof(e->bus_name), bus->name);
		if (!name)
			name = dev->kobj.name;
		bpf_probe_read_kernel_str(e->dev_name, sizeof(e->dev_name), name);
	}
	dissect(skb, &e->pkt);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline int emit_skb_drop(struct sk_buff *skb, __u32 reason, __u8 source)
{
	struct net_device *dev;
	struct ts_event *e;

	count(TS_CNT_SEEN);
	/* Kernels that report a normal free through kfree_skb say so with SKB_CONSUMED. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED)) {
		count(TS_CNT_FILTERED);
		return 0;
	}
	e = reserve_event(source);
	if (!e)
		return 0;
	e->trap_type = TS_TRAP_TYPE_NONE;
	e->drop_reason = reason;
	dev = skb->dev;
	if (dev) {
		read_netdev(dev, e);
	} else {
		/* Read once: the verifier tracks the null check on this copy only. */
		struct sock *sk = skb->sk;

		barrier_var(sk);
		if (sk) {
			struct net *net = sk->__sk_common.skc_net.net;

			if (net)
				e->netns_ino = net->ns.inum;
		}
	}
	dissect(skb, &e->pkt);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
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
