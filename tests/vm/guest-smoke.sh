#!/bin/sh
# Guest script (run as /test.sh by run-guest.sh): proves the VM environment
# that trapstream's devlink tests need. Exits non-zero on the first failure.
# Writes into $RESULTS: kernel, traps.txt, fid_miss-0.txt, fid_miss-1.txt,
# blackhole_route.txt, tracepoint-format.txt, btf-size, trapstream-version
# (when $TRAPSTREAM is set) and smoke.ok at the end.
set -eu

RESULTS=${RESULTS:?RESULTS not set}
DEV=netdevsim/netdevsim10
step() { echo "--- smoke: $* (uptime $(cut -d' ' -f1 /proc/uptime) s)"; }
fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }

uname -a | tee "$RESULTS/kernel"

step "BTF"
[ -r /sys/kernel/btf/vmlinux ] || fail "/sys/kernel/btf/vmlinux missing (kernel rejected its BTF?)"
wc -c < /sys/kernel/btf/vmlinux | tr -d ' ' > "$RESULTS/btf-size"
echo "vmlinux BTF: $(cat "$RESULTS/btf-size") bytes"

step "tracefs"
if [ -d /sys/kernel/tracing/events ]; then
	TRACING=/sys/kernel/tracing
elif [ -d /sys/kernel/debug/tracing/events ]; then
	TRACING=/sys/kernel/debug/tracing
else
	fail "no tracefs events directory"
fi
echo "tracefs at $TRACING" | tee "$RESULTS/tracefs"
if [ -d /sys/kernel/debug/tracing/events ]; then
	echo "also at /sys/kernel/debug/tracing" | tee -a "$RESULTS/tracefs"
fi
for tp in devlink/devlink_trap_report skb/kfree_skb; do
	[ -d "$TRACING/events/$tp" ] || fail "tracepoint $tp missing"
done
cat "$TRACING/events/devlink/devlink_trap_report/format" > "$RESULTS/tracepoint-format.txt"
cat "$TRACING/events/skb/kfree_skb/format" > "$RESULTS/kfree_skb-format.txt"

step "netdevsim device"
[ -w /sys/bus/netdevsim/new_device ] || fail "/sys/bus/netdevsim/new_device missing"
echo "10 2" > /sys/bus/netdevsim/new_device
# Ports show up asynchronously on some kernels: wait for both.
i=0
while [ "$(ls /sys/bus/netdevsim/devices/netdevsim10/net 2>/dev/null | wc -l)" -lt 2 ]; do
	i=$((i + 1)); [ $i -le 50 ] || fail "netdevsim10 ports did not appear"
	sleep 0.1
done
PORTS=$(ls /sys/bus/netdevsim/devices/netdevsim10/net)
for p in $PORTS; do
	ip link set "$p" up
done
ip -br link | tee "$RESULTS/links.txt"
devlink dev show | tee "$RESULTS/devlink-dev.txt"
grep -q "$DEV" "$RESULTS/devlink-dev.txt" || fail "$DEV not listed by devlink dev show"

step "devlink traps"
devlink trap show > "$RESULTS/traps.txt"   # the VM's only devlink device
cat "$RESULTS/traps.txt"
ntraps=$(grep -c ' name ' "$RESULTS/traps.txt" || true)
[ "$ntraps" -gt 0 ] || fail "devlink trap show lists no traps"
echo "traps listed: $ntraps"
for t in fid_miss blackhole_route ingress_flow_action_drop; do
	grep -q "name $t " "$RESULTS/traps.txt" || fail "trap $t not listed"
done

counter() { # counter FILE KEY: the number after KEY in devlink -s output
	tr -s ' \n' '\n\n' < "$1" | awk -v k="$2" 'prev == k {print; exit} {prev = $0}'
}
devlink -s trap show "$DEV" trap fid_miss > "$RESULTS/fid_miss-0.txt"
sleep 1
devlink -s trap show "$DEV" trap fid_miss > "$RESULTS/fid_miss-1.txt"
cat "$RESULTS/fid_miss-0.txt" "$RESULTS/fid_miss-1.txt"
p0=$(counter "$RESULTS/fid_miss-0.txt" packets)
p1=$(counter "$RESULTS/fid_miss-1.txt" packets)
[ -n "$p0" ] && [ -n "$p1" ] || fail "no packets counter in devlink -s output"
echo "fid_miss packets: $p0 -> $p1 over ~1 s"
[ "$p1" -gt "$p0" ] || fail "fid_miss counter did not grow ($p0 -> $p1): traps not firing"

step "trap action + flow action cookie"
devlink trap set "$DEV" trap blackhole_route action trap
devlink trap show "$DEV" trap blackhole_route | tee "$RESULTS/blackhole_route.txt"
grep -q 'action trap' "$RESULTS/blackhole_route.txt" || fail "blackhole_route action not changed to trap"
COOKIE=/sys/kernel/debug/netdevsim/netdevsim10/trap_flow_action_cookie
[ -w "$COOKIE" ] || fail "$COOKIE missing"
echo "deadbeef" > "$COOKIE"
devlink trap set "$DEV" trap ingress_flow_action_drop action trap
sleep 0.5
devlink -s trap show "$DEV" trap blackhole_route > "$RESULTS/blackhole_route-stats.txt"
cat "$RESULTS/blackhole_route-stats.txt"
b=$(counter "$RESULTS/blackhole_route-stats.txt" packets)
[ "${b:-0}" -gt 0 ] || fail "blackhole_route did not fire after action trap"

step "BPF"
[ -d /sys/fs/bpf ] || fail "/sys/fs/bpf missing"
command -v bpftool >/dev/null 2>&1 || fail "bpftool missing from the guest"
bpftool btf dump file /sys/kernel/btf/vmlinux format raw > /tmp/btf.txt
grep -q "STRUCT 'devlink_trap_metadata'" /tmp/btf.txt || fail "struct devlink_trap_metadata not in BTF"
grep -q "TYPEDEF 'btf_trace_devlink_trap_report'" /tmp/btf.txt || fail "btf_trace_devlink_trap_report not in BTF"
grep -q "TYPEDEF 'btf_trace_kfree_skb'" /tmp/btf.txt || fail "btf_trace_kfree_skb not in BTF"
bpftool btf dump file /sys/kernel/btf/vmlinux format c > /tmp/vmlinux.h
awk '/^struct devlink_trap_metadata \{/,/^\};/' /tmp/vmlinux.h | tee "$RESULTS/devlink_trap_metadata.h"
bpftool feature probe kernel > "$RESULTS/bpftool-feature.txt" 2>&1 || true
F=$RESULTS/bpftool-feature.txt
grep -E 'CONFIG_BPF_JIT |CONFIG_BPF_JIT_ALWAYS_ON|CONFIG_DEBUG_INFO_BTF ' "$F" || true
grep -q 'program_type tracing is available' "$F" || fail "bpftool: program type tracing not available"
grep -q 'map_type ringbuf is available' "$F" || fail "bpftool: ringbuf map not available"
# bpftool cannot probe helpers for tracing programs; raw_tracepoint
# programs get the same tracing helper set.
awk '/helpers supported for program type raw_tracepoint:/ {f = 1; next}
     f && !/^[[:space:]]/ {exit} f' "$F" > "$RESULTS/raw_tracepoint-helpers.txt"
for h in bpf_ringbuf_reserve bpf_ringbuf_submit bpf_ktime_get_boot_ns bpf_probe_read_kernel; do
	grep -q -- "- $h\$" "$RESULTS/raw_tracepoint-helpers.txt" || fail "helper $h not available to raw_tracepoint programs"
done
echo "tracing prog type, ringbuf map, ringbuf/ktime_get_boot_ns/probe_read_kernel helpers: available"

if [ -n "${TRAPSTREAM:-}" ]; then
	step "trapstream binary"
	"$TRAPSTREAM" --version > "$RESULTS/trapstream-version" 2>&1 || { cat "$RESULTS/trapstream-version"; fail "$TRAPSTREAM --version failed"; }
	cat "$RESULTS/trapstream-version"
fi

echo ok > "$RESULTS/smoke.ok"
step "all checks passed"
