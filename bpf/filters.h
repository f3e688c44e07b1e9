/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The filters (--trap-name, --trap-group, --port, --reason, --netns):
 * user space fills `filters` before load; a report is judged by the
 * kernel's own strings before anything is reserved or copied.
 */
#ifndef TRAPSTREAM_FILTERS_H
#define TRAPSTREAM_FILTERS_H

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

#endif /* TRAPSTREAM_FILTERS_H */
