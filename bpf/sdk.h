/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * A vendor SDK's trap reports (sdk-path.md): whether a devlink instance
 * is the SDK's, the taxonomy's trap types, and the SDK's copies of the
 * packets it reported, freed through kfree_skb right after.
 */
#ifndef TRAPSTREAM_SDK_H
#define TRAPSTREAM_SDK_H

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

#endif /* TRAPSTREAM_SDK_H */
