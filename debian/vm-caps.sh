#!/bin/sh
# shellcheck shell=bash
# run-guest.sh runs it with the guest's sh, which is bash (for /dev/udp).
# Guest script for tests/vm/run-guest.sh: which capabilities and which
# RLIMIT_MEMLOCK trapstream needs on the guest's kernel (e.g. 5.10, where BPF
# maps are still charged to RLIMIT_MEMLOCK). Runs the skb source as nobody
# with each set while sending UDP to a closed port, and writes one line per
# case to $RESULTS/summary.
#
#   TRAPSTREAM_VM_EXTRA_BINS="setpriv prlimit" tests/vm/run-guest.sh \
#       /var/cache/trapstream-vm/linux-5.10-*/bzImage OUTDIR debian/vm-caps.sh \
#       target/x86_64-unknown-linux-gnu/release/trapstream
RESULTS=${RESULTS:?}
T=${TRAPSTREAM:?}
PORT=47555
uname -r | tee "$RESULTS/kernel"
grep 'locked memory' /proc/self/limits | tee "$RESULTS/init-memlock"

# $1 name, $2 setpriv capability list, $3 memlock soft:hard, rest: arguments.
run() {
	name=$1 caps=$2 memlock=$3
	shift 3
	prlimit --memlock="$memlock" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
		--inh-caps="$caps" --ambient-caps="$caps" --bounding-set="$caps" -- \
		"$T" "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" &
	pid=$!
	sleep 3
	for _ in 1 2 3; do
		echo x >/dev/udp/127.0.0.1/$PORT
		sleep 0.3
	done
	sleep 2
	kill -INT $pid 2>/dev/null
	wait $pid
	rc=$?
	echo "$name: caps=$caps memlock=$memlock exit=$rc records=$(grep -c "\"dstPort\":$PORT" "$RESULTS/$name.out")" \
		"| $(sed 's/\x1b\[[0-9;]*m//g' "$RESULTS/$name.err" | tail -n 1)" | tee -a "$RESULTS/summary"
}

# cap_38 = CAP_PERFMON, cap_39 = CAP_BPF, cap_24 = CAP_SYS_RESOURCE
run both_64k "-all,+cap_39,+cap_38" 65536:65536 --stdout --source skb
run both_64k_hard_unlimited "-all,+cap_39,+cap_38" 65536:unlimited --stdout --source skb
run both_unlimited "-all,+cap_39,+cap_38" unlimited:unlimited --stdout --source skb
run both_sys_resource_64k "-all,+cap_39,+cap_38,+cap_24" 65536:65536 --stdout --source skb
run bpf_unlimited "-all,+cap_39" unlimited:unlimited --stdout --source skb
run perfmon_unlimited "-all,+cap_38" unlimited:unlimited --stdout --source skb
exit 0
