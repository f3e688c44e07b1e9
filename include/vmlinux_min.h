/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The few kernel types trapstream reads, declared with preserve_access_index so
 * that every field access is a CO-RE relocation resolved against the running
 * kernel's BTF. Only the fields used are declared; their offsets here are
 * irrelevant. This replaces a multi-megabyte vmlinux.h and keeps the program
 * honest about exactly which kernel fields it depends on.
 */
#ifndef TRAPSTREAM_VMLINUX_MIN_H
#define TRAPSTREAM_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	char name[16];
	int ifindex;
	possible_net_t nd_net;
	unsigned short type; /* ARPHRD_*: what kind of link-layer header the device uses */
};

struct sock_common {
	possible_net_t skc_net;
};

struct sock {
	struct sock_common __sk_common;
};

struct sk_buff {
	struct net_device *dev;
	int skb_iif; /* ifindex the packet arrived on; 0 for locally generated packets */
	struct sock *sk;
	unsigned int len;
	__u8 vlan_present : 1; /* gone in 6.1: presence is then vlan_all != 0 */
	__be16 vlan_proto;
	__u16 vlan_tci;
	__u32 vlan_all;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned int tail; /* an offset from head on 64-bit (NET_SKBUFF_DATA_USES_OFFSET) */
	unsigned char *head;
	unsigned char *data;
};

struct kobject {
	const char *name;
};

struct bus_type {
	const char *name;
};

struct device {
	const char *init_name;
	struct kobject kobj;
	const struct bus_type *bus;
};

struct devlink {
	struct device *dev;
};

struct flow_action_cookie {
	__u32 cookie_len;
	__u8 cookie[];
};

enum devlink_trap_type {
	DEVLINK_TRAP_TYPE_DROP,
	DEVLINK_TRAP_TYPE_EXCEPTION,
	DEVLINK_TRAP_TYPE_CONTROL,
};

struct devlink_trap_metadata {
	const char *trap_name;
	const char *trap_group_name;
	struct net_device *input_dev;
	const struct flow_action_cookie *fa_cookie;
	enum devlink_trap_type trap_type;
};

/*
 * SONiC's extension of the same struct (its kernel patch for the vendor
 * SDK's WJH buffer "linux channel"), matched by CO-RE to the kernel's
 * struct devlink_trap_metadata: the ___wjh suffix is a flavour, ignored when
 * relocating. Read only after bpf_core_field_exists() says the running
 * kernel has the field; upstream kernels have none of them.
 */
struct devlink_trap_metadata___wjh {
	struct net_device *output_port_dev;
	struct net_device *output_lag_dev;
	__u16 out_tc;
	__u64 out_tc_occ;
	__u64 latency;
	__u8 out_tc_valid : 1;
	__u8 out_tc_occ_valid : 1;
	__u8 latency_valid : 1;
};

#pragma clang attribute pop

/* Values are relocated by name against the running kernel (bpf_core_enum_value). */
enum skb_drop_reason {
	SKB_CONSUMED = 1,
};

#endif /* TRAPSTREAM_VMLINUX_MIN_H */
