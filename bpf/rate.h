/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The per-trap rate limit (--rate-limit).
 */
#ifndef TRAPSTREAM_RATE_H
#define TRAPSTREAM_RATE_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ts_filter_key);
	__type(value, struct ts_rate_bucket);
} rate_buckets SEC(".maps");

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

#endif /* TRAPSTREAM_RATE_H */
