// SPDX-License-Identifier: GPL-2.0
/*
 * sdk_emu: a stand-in, for trapstream's VM tests, for the one path of NVIDIA's
 * Switch SDK kernel drivers that trapstream sees (sx_core's drop monitor ->
 * sx_netdev's sx_net_dm_hw_report, see ../shared/reference/sdk-path.md):
 *
 *   - a dummy devlink instance on a fake bus: devlink_dummy/devlink_dummy0,
 *     driver devlink_dummy, no traps registered (devlink shows nothing);
 *   - per report: an skb holding the frame, eth_type_trans() on the input
 *     port, a struct devlink_trap_metadata built on the stack with trap_type
 *     never set (0), the tracepoint called directly (never the kernel's
 *     devlink_trap_report(), so devlink keeps no statistics), then
 *     kfree_skb() of the copy;
 *   - on kernels whose devlink.h carries SONiC's extension
 *     (SX_EXTEND_WJH_BUFFER_LINUX_CHANNEL, added by build-kernel.sh for the
 *     "-wjh" kernels) the egress port, LAG, traffic class, occupancy, latency
 *     and their validity bits.
 *
 * Built into the test kernels by tests/vm/build-kernel.sh. The guest sends
 * reports by writing one line per call to /sys/kernel/debug/sdk_emu/report:
 *
 *   trap=NAME [group=NAME] in=IFNAME pkt=HEX [cookie=[HEX]] [count=N]
 *   [out=IFNAME] [lag=IFNAME] [tc=N] [occ=N] [lat=N] [valid=BITS]
 *
 * For the bad input a driver could pass: a name may be empty or of any
 * length, a missing group is a NULL group name, `cookie=` with no bytes is a
 * cookie of length 0 (up to 64 bytes, more than TC_COOKIE_MAX, are taken).
 * pkt is the whole Ethernet frame; valid is a bit mask (1 traffic class,
 * 2 occupancy, 4 latency), and where a bit is clear the field carries the
 * SDK's invalid marker instead of the value given. Trap and group names are
 * interned: one name keeps one address, as the SDK's static tables do.
 * A write fails with EINVAL on a malformed line and ENODEV on an unknown
 * interface, and reports nothing then.
 */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/etherdevice.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <net/devlink.h>
#include <net/flow_offload.h>
#include <net/net_namespace.h>
#include <trace/events/devlink.h>

#define EMU_LINE_MAX 8192
#define EMU_FRAME_MAX 2048
#define EMU_COOKIE_MAX 64
#define EMU_NAMES_MAX 128
#define EMU_COUNT_MAX 1000000

/* The SDK's markers for a field its CQE did not carry (sdk-path.md). */
#define EMU_TC_INVALID 0x1f
#define EMU_OCC_INVALID 0xffff
#define EMU_LATENCY_INVALID 0xffffff

static const char *emu_names[EMU_NAMES_MAX];
static DEFINE_MUTEX(emu_lock);
static struct devlink *emu_devlink;
static struct dentry *emu_dir;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
static int emu_match(struct device *dev, const struct device_driver *drv)
#else
static int emu_match(struct device *dev, struct device_driver *drv)
#endif
{
	return 1;
}

static struct bus_type emu_bus = {
	.name = "devlink_dummy",
	.match = emu_match,
};

static int emu_probe(struct device *dev)
{
	return 0;
}

static struct device_driver emu_driver = {
	.name = "devlink_dummy",
	.bus = &emu_bus,
	.probe = emu_probe,
};

static void emu_dev_release(struct device *dev)
{
}

static struct device emu_dev = {
	.bus = &emu_bus,
	.release = emu_dev_release,
};

static const struct devlink_ops emu_devlink_ops = {};

/* The interned copy of `name` (caller holds emu_lock). */
static const char *emu_intern(const char *name)
{
	int i;

	for (i = 0; i < EMU_NAMES_MAX && emu_names[i]; i++)
		if (!strcmp(emu_names[i], name))
			return emu_names[i];
	if (i == EMU_NAMES_MAX)
		return NULL;
	emu_names[i] = kstrdup(name, GFP_KERNEL);
	return emu_names[i];
}

struct emu_report {
	const char *trap;
	const char *group;
	struct net_device *in, *out, *lag;
	u8 frame[EMU_FRAME_MAX];
	size_t frame_len;
	u8 cookie_buf[sizeof(struct flow_action_cookie) + EMU_COOKIE_MAX];
	bool has_cookie;
	unsigned int count;
	u16 tc;
	u64 occ, lat;
	u8 valid;
};

static int emu_hex(const char *hex, u8 *out, size_t max, size_t *len, bool empty_ok)
{
	size_t n = strlen(hex);

	*len = 0;
	if (n == 0 && empty_ok)
		return 0;
	if (n == 0 || n % 2 || n / 2 > max)
		return -EINVAL;
	if (hex2bin(out, hex, n / 2))
		return -EINVAL;
	*len = n / 2;
	return 0;
}

static int emu_netdev(const char *name, struct net_device **dev)
{
	if (*dev)
		return -EINVAL;
	*dev = dev_get_by_name(&init_net, name);
	return *dev ? 0 : -ENODEV;
}

static int emu_parse(char *line, struct emu_report *r)
{
	struct flow_action_cookie *fa = (void *)r->cookie_buf;
	char *tok, *val;
	size_t n;
	int err = 0;

	while (!err && (tok = strsep(&line, " \t\n")) != NULL) {
		if (!*tok)
			continue;
		val = strchr(tok, '=');
		if (!val)
			return -EINVAL;
		*val++ = '\0';
		if (!strcmp(tok, "trap"))
			err = (r->trap = emu_intern(val)) ? 0 : -ENOSPC;
		else if (!strcmp(tok, "group"))
			err = (r->group = emu_intern(val)) ? 0 : -ENOSPC;
		else if (!strcmp(tok, "in"))
			err = emu_netdev(val, &r->in);
		else if (!strcmp(tok, "out"))
			err = emu_netdev(val, &r->out);
		else if (!strcmp(tok, "lag"))
			err = emu_netdev(val, &r->lag);
		else if (!strcmp(tok, "pkt"))
			err = emu_hex(val, r->frame, sizeof(r->frame), &r->frame_len, false);
		else if (!strcmp(tok, "cookie")) {
			err = emu_hex(val, fa->cookie, EMU_COOKIE_MAX, &n, true);
			fa->cookie_len = n;
			r->has_cookie = true;
		} else if (!strcmp(tok, "count"))
			err = kstrtouint(val, 0, &r->count);
		else if (!strcmp(tok, "tc"))
			err = kstrtou16(val, 0, &r->tc);
		else if (!strcmp(tok, "occ"))
			err = kstrtou64(val, 0, &r->occ);
		else if (!strcmp(tok, "lat"))
			err = kstrtou64(val, 0, &r->lat);
		else if (!strcmp(tok, "valid"))
			err = kstrtou8(val, 0, &r->valid);
		else
			err = -EINVAL;
	}
	if (err)
		return err;
	if (!r->trap || !r->in || r->frame_len < ETH_HLEN ||
	    r->count == 0 || r->count > EMU_COUNT_MAX)
		return -EINVAL;
	return 0;
}

/* One report, as sx_net_dm_hw_report does it. */
static int emu_report_one(struct emu_report *r)
{
	struct devlink_trap_metadata md = {};
	struct sk_buff *skb;

	skb = alloc_skb(NET_IP_ALIGN + r->frame_len, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	skb_reserve(skb, NET_IP_ALIGN);
	skb_put_data(skb, r->frame, r->frame_len);
	skb->protocol = eth_type_trans(skb, r->in);

	md.trap_name = r->trap;
	md.trap_group_name = r->group;
	md.input_dev = r->in;
	if (r->has_cookie)
		md.fa_cookie = (const struct flow_action_cookie *)r->cookie_buf;
#ifdef SX_EXTEND_WJH_BUFFER_LINUX_CHANNEL
	md.output_port_dev = r->out;
	md.output_lag_dev = r->lag;
	md.out_tc_valid = !!(r->valid & 1);
	md.out_tc_occ_valid = !!(r->valid & 2);
	md.latency_valid = !!(r->valid & 4);
	md.out_tc = md.out_tc_valid ? r->tc : EMU_TC_INVALID;
	md.out_tc_occ = md.out_tc_occ_valid ? r->occ : EMU_OCC_INVALID;
	md.latency = md.latency_valid ? r->lat : EMU_LATENCY_INVALID;
#endif
	if (trace_devlink_trap_report_enabled())
		trace_devlink_trap_report(emu_devlink, skb, &md);
	kfree_skb(skb);
	return 0;
}

static ssize_t emu_report_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	struct emu_report *r;
	char *line;
	unsigned int i;
	int err;

	if (len >= EMU_LINE_MAX)
		return -E2BIG;
	line = memdup_user_nul(ubuf, len);
	if (IS_ERR(line))
		return PTR_ERR(line);
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		kfree(line);
		return -ENOMEM;
	}
	r->count = 1;
	mutex_lock(&emu_lock);
	err = emu_parse(line, r);
	for (i = 0; !err && i < r->count; i++) {
		err = emu_report_one(r);
		cond_resched();
	}
	mutex_unlock(&emu_lock);
	if (r->in)
		dev_put(r->in);
	if (r->out)
		dev_put(r->out);
	if (r->lag)
		dev_put(r->lag);
	kfree(r);
	kfree(line);
	return err ? err : len;
}

static const struct file_operations emu_report_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = emu_report_write,
};

static int __init sdk_emu_init(void)
{
	int err;

	err = bus_register(&emu_bus);
	if (err)
		return err;
	err = driver_register(&emu_driver);
	if (err)
		goto err_bus;
	dev_set_name(&emu_dev, "devlink_dummy0");
	err = device_register(&emu_dev);
	if (err) {
		put_device(&emu_dev);
		goto err_driver;
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 15, 0)
	emu_devlink = devlink_alloc(&emu_devlink_ops, 0, &emu_dev);
	err = emu_devlink ? 0 : -ENOMEM;
	if (!err)
		devlink_register(emu_devlink);
#else
	emu_devlink = devlink_alloc(&emu_devlink_ops, 0);
	err = emu_devlink ? devlink_register(emu_devlink, &emu_dev) : -ENOMEM;
#endif
	if (err)
		goto err_device;
	emu_dir = debugfs_create_dir("sdk_emu", NULL);
	debugfs_create_file("report", 0200, emu_dir, NULL, &emu_report_fops);
	pr_info("sdk_emu: devlink_dummy/devlink_dummy0 ready%s\n",
#ifdef SX_EXTEND_WJH_BUFFER_LINUX_CHANNEL
		", with SONiC's extended trap metadata"
#else
		""
#endif
	);
	return 0;

err_device:
	if (emu_devlink)
		devlink_free(emu_devlink);
	device_unregister(&emu_dev);
err_driver:
	driver_unregister(&emu_driver);
err_bus:
	bus_unregister(&emu_bus);
	return err;
}
late_initcall(sdk_emu_init);
