#!/bin/bash
# Kernel-side benchmarks of trapstream on real drops. As root:
#
#   bash benches/kernel.sh [handler] [stats] [cost] [e2e] [profile]   (default: all but profile)
#
#   handler  BPF_PROG_TEST_RUN of the skb handler on a 60-byte IPv4/UDP frame,
#            per event and aggregated (cargo bench --bench handler)
#   stats    ns per event of the attached program under a flood of real drops,
#            from bpf_stats (run_time_ns / run_cnt), --source skb vs -u 1, alternating
#   cost     flood rate with trapstream attached / without, alternating off, on, ...,
#            and with the floor programs (stats and cost: FLOORS, flood --probe): an empty
#            one, and ones doing only what any per-event or per-flow design must
#   e2e      the highest drop rate with zero loss (nested, ring_lost, decode_errors, channel_lost,
#            send_lost, unacked_lost, refused all 0, read = sent) over E2E_SECS at default
#            settings, and trapstream's RSS at that rate
#   profile  perf record of the flood process, off / per event / aggregated: where a drop's time goes
#
# Environment: SECS (flood seconds per run, 10), PAIRS (alternations, 3),
# FLOWS (distinct flows in the flood, 16), PAYLOAD (UDP payload bytes of each
# flood datagram: the flood's 18, 60-byte frames, unless set; 1400 for
# full-size frames), FLOOD_CPU (1), AGENT_CPU (0: where
# trapstream is pinned in stats/cost so that its user space does not take the
# flood's CPU), E2E_SECS (30), E2E_STEPS (5 bisection steps), CARGO_TARGET_DIR,
# NO_BUILD=1 (use the binaries already built), BASE (another trapstream
# binary, e.g. the previous commit's: stats and cost then run it too,
# alternating with this tree's, each case labelled "base/"), FLOORS ("empty
# event-floor flow-floor").
#
# The flood sends UDP from namespace A to a closed port in namespace B over a
# veth pair: B's stack drops every datagram with NO_SOCKET on the sending CPU.

set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SECS=${SECS:-10}
PAIRS=${PAIRS:-3}
FLOWS=${FLOWS:-16}
FLOOD_CPU=${FLOOD_CPU:-1}
AGENT_CPU=${AGENT_CPU:-0}
E2E_SECS=${E2E_SECS:-30}
BIN=$TARGET/release/trapstream
# The binaries compared, by label: this tree's, then BASE's if given.
VARIANTS=("new:$BIN")
[ -z "${BASE:-}" ] || VARIANTS+=("base:$BASE")
# Label prefix of the variant in use: "" for this tree, "base/" for BASE.
prefix() { [ "${1%%:*}" = new ] || echo "${1%%:*}/"; }
FLOOD=$TARGET/release/examples/flood

SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(handler stats cost e2e)
want() { local s; for s in "${SECTIONS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

[ "$(id -u)" = 0 ] || { echo "kernel.sh: needs root" >&2; exit 1; }
for tool in bpftool jq ip taskset awk; do
	command -v $tool >/dev/null || { echo "kernel.sh: needs $tool" >&2; exit 1; }
done

if [ -z "${NO_BUILD:-}" ]; then
	(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --bin trapstream --example flood)
fi

ID=$$
NSA=tsb${ID}a NSB=tsb${ID}b
IP_A=10.251.$((ID % 250)).1 IP_B=10.251.$((ID % 250)).2
WORK=$(mktemp -d /tmp/trapstream-kernel-bench.XXXXXX)
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
PIDS=()

# Children still running; a pid leaves the list once waited for, so that a
# reused pid is never signalled.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$NSA" 2>/dev/null || true
	ip netns del "$NSB" 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS" || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NSA"
ip netns add "$NSB"
ip link add "${NSA}0" type veth peer name "${NSB}0"
for side in A B; do
	ns=NS$side ip=IP_$side
	ip link set "${!ns}0" netns "${!ns}"
	ip -n "${!ns}" link set lo up
	ip -n "${!ns}" addr add "${!ip}/24" dev "${!ns}0"
	ip -n "${!ns}" link set "${!ns}0" up
done

KERNEL=$(uname -r)
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "# $(date -u +%FT%TZ) kernel $KERNEL, $CPU_MODEL, $(nproc) CPUs; flood: $FLOWS flows," \
	"${PAYLOAD:-18}-byte payloads, CPU $FLOOD_CPU, ${SECS}s per run"

# ---- helpers ---------------------------------------------------------------

# flood ARGS...: one run from A to B's closed ports; prints "RATE CPU_RATE":
# drops per wall second, and per CPU second of the flood thread (the drop
# path runs in its context), which other processes on the CPU do not move.
flood() {
	"$FLOOD" --netns "$NSA" --dst "$IP_B" --port 9 --flows "$FLOWS" --cpu "$FLOOD_CPU" --secs "$SECS" \
		${PAYLOAD:+--payload "$PAYLOAD"} "$@" |
		sed -n 's/.* rate=\([0-9]*\) .*cpu_rate=\([0-9]*\).*/\1 \2/p'
}

COLLECTOR_PORT=$((20000 + ID % 20000))
# start_collector CPU: the stand-in collector, pinned so that it takes time
# from a known CPU (on a switch it runs on another host).
start_collector() {
	"$FLOOD" --collect "$COLLECTOR_PORT" --secs 100000 --cpu "$1" >"$WORK/collector" &
	COLLECTOR_PID=$!
	PIDS+=("$COLLECTOR_PID")
	wait_for "$WORK/collector" listening
}
stop_collector() {
	kill -TERM "$COLLECTOR_PID"
	wait "$COLLECTOR_PID" || true
	forget "$COLLECTOR_PID"
	tail -1 "$WORK/collector"
}

wait_for() { # FILE TEXT
	local i
	for i in $(seq 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "kernel.sh: no '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}

# start_agent PIN ARGS...: trapstream to the collector; PIN is a CPU list or "".
start_agent() {
	local pin=$1
	shift
	local cmd=("${AGENT_BIN:-$BIN}" "$@")
	[[ " $* " == *" --stdout "* ]] || cmd+=(127.0.0.1 "$COLLECTOR_PORT")
	[ -z "$pin" ] || cmd=(taskset -c "$pin" "${cmd[@]}")
	: >"$WORK/agent"
	NO_COLOR=1 "${cmd[@]}" >/dev/null 2>"$WORK/agent" &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	wait_for "$WORK/agent" capturing
}
stop_agent() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || { echo "kernel.sh: trapstream exited with $?" >&2; cat "$WORK/agent" >&2; exit 1; }
	forget "$AGENT_PID"
	FINAL=$(sed -n 's/.*final: //p' "$WORK/agent")
}
# A counter from the final stats line; 0 when this version does not log it.
counter() {
	local v
	v=$(echo "$FINAL" | tr ' ' '\n' | sed -n "s/^$1=//p")
	echo "${v:-0}"
}

# The attached kfree_skb program of the running agent (by the fds it holds).
agent_prog_id() {
	local f id
	for f in /proc/"$AGENT_PID"/fdinfo/*; do
		id=$(sed -n 's/^prog_id:\s*//p' "$f" 2>/dev/null) || continue
		[ -n "$id" ] || continue
		if bpftool -j prog show id "$id" 2>/dev/null | jq -e '.name | startswith("handle_kfree_sk")' >/dev/null; then
			echo "$id"
			return
		fi
	done
}
prog_stats() { bpftool -j prog show id "$1" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
mean() { printf '%s\n' "$@" | awk '{ s += $1; n++ } END { printf "%.0f", (n ? s / n : 0) }'; }

# Warm the path (neighbour entries, page cache) before anything is timed.
"$FLOOD" --netns "$NSA" --dst "$IP_B" --flows "$FLOWS" --secs 1 >/dev/null

# ---- handler: BPF_PROG_TEST_RUN --------------------------------------------

if want handler; then
	echo "## handler: BPF_PROG_TEST_RUN, $REPO"
	(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo bench --bench handler) | grep -E '^(#|handler)'
fi

# ---- stats: bpf_stats under real drops ------------------------------------

# Records to standard output (/dev/null), the cheapest output, so that the
# sender keeps up with the flood: once it falls behind, the poll thread waits
# for it, the ring fills and the kernel takes its cheap path (no record) for
# the drops it loses, which would flatter the figures. ring_lost is printed
# for each run to show that it stays 0.
MODES=("per-event:--source skb --stdout" "aggregated:--source skb -u 1 --stdout")
# Floor probes (flood --probe): labels empty-probe, event-floor, flow-floor;
# program names empty_probe, event_floor, flow_floor.
FLOORS=(${FLOORS:-empty event-floor flow-floor})
floor_label() { [ "$1" = empty ] && echo empty-probe || echo "$1"; }
floor_prog() { local l; l=$(floor_label "$1"); echo "${l//-/_}"; }

if want stats; then
	echo "## stats: bpf_stats run_time_ns/run_cnt of the attached program during a ${SECS}s flood (trapstream on CPU $AGENT_CPU)"
	sysctl -qw kernel.bpf_stats_enabled=1
	start_collector "$AGENT_CPU"
	LABELS=()
	for round in $(seq "$PAIRS"); do
		# The floors, read inside the flood's run: a program that does nothing
		# (the accounting's own clock reads), and ones that do only what any
		# per-event or per-flow design must (examples/flood/probes.rs).
		for floor in "${FLOORS[@]}"; do
			prog=$(floor_prog "$floor")
			flood --probe "$floor" >"$WORK/floor" &
			fpid=$!
			for _ in $(seq 50); do
				id=$(bpftool -j prog show name "$prog" 2>/dev/null | jq -r 'if type == "array" then (map(.id) | max) else .id end // empty' || true)
				[ -z "$id" ] || break
				sleep 0.1
			done
			[ -n "$id" ] || { echo "kernel.sh: the $floor probe did not attach" >&2; exit 1; }
			read -r t0 c0 < <(prog_stats "$id")
			sleep $((SECS > 2 ? SECS - 2 : 1))
			read -r t1 c1 < <(prog_stats "$id")
			wait "$fpid"
			ns=$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%.1f", (c ? t / c : 0) }')
			name=$(floor_label "$floor")
			echo "stats/$name round $round: $ns ns/event over $((c1 - c0)) runs"
			[ "$round" != 1 ] || LABELS+=("$name")
			key=${name//[-\/]/_}
			eval "NS_$key+=(\$ns)"
		done
		for m in "${MODES[@]}"; do
			for v in "${VARIANTS[@]}"; do
				name=$(prefix "$v")${m%%:*}
				AGENT_BIN=${v#*:}
				[ "$round" != 1 ] || LABELS+=("$name")
				# shellcheck disable=SC2086
				start_agent "$AGENT_CPU" ${m#*:} --stats-interval 0
				id=$(agent_prog_id)
				read -r t0 c0 < <(prog_stats "$id")
				read -r rate cpu_rate < <(flood)
				read -r t1 c1 < <(prog_stats "$id")
				stop_agent
				ns=$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%.1f", (c ? t / c : 0) }')
				echo "stats/$name round $round: $ns ns/event over $((c1 - c0)) runs; flood $rate/s ($cpu_rate/CPU-s);" \
					"seen=$(counter seen) filtered=$(counter filtered) ring_lost=$(counter ring_lost)"
				key=${name//[-\/]/_}
				eval "NS_$key+=(\$ns)"
			done
		done
	done
	AGENT_BIN=
	stop_collector >/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
	for name in "${LABELS[@]}"; do
		key=${name//[-\/]/_}
		eval "vals=(\"\${NS_$key[@]}\")"
		echo "stats/$name: $(printf '%s\n' "${vals[@]}" | sort -n | awk 'NR == 1') ns/event min," \
			"$(printf '%s\n' "${vals[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') median"
	done
fi

# ---- cost: the dropping workload with and without trapstream --------------

if want cost; then
	echo "## cost: flood rate with trapstream / without, alternating, bpf_stats off (trapstream on CPU $AGENT_CPU)"
	echo "# per wall second, and per CPU second of the flood thread (robust to other load on the machine)"
	others=$(bpftool -j prog show | jq '[.[] | select(.name | startswith("handle_kfree_sk"))] | length')
	[ "$others" = 0 ] || echo "# warning: $others kfree_skb programs of other trapstream instances are loaded: 'off' is not bare"
	start_collector "$AGENT_CPU"
	OFF=() OFF_CPU=() LABELS=()
	run_off() {
		read -r off off_cpu < <(flood)
		OFF+=("$off") OFF_CPU+=("$off_cpu")
	}
	for round in $(seq "$PAIRS"); do
		run_off
		line="cost round $round: off $off/s ($off_cpu/CPU-s)"
		# The floors: a kfree_skb program that does nothing, and ones that do
		# only what any per-event or per-flow design must.
		for floor in "${FLOORS[@]}"; do
			name=$(floor_label "$floor")
			key=${name//[-\/]/_}
			read -r on on_cpu < <(flood --probe "$floor")
			[ "$round" != 1 ] || LABELS+=("$name")
			eval "ON_$key+=(\$on) ON_CPU_$key+=(\$on_cpu)"
			line+=", $name $on/s ($on_cpu/CPU-s) = $(ratio "$on" "$off") ($(ratio "$on_cpu" "$off_cpu") per CPU-s)"
		done
		for m in "${MODES[@]}"; do
			for v in "${VARIANTS[@]}"; do
				name=$(prefix "$v")${m%%:*}
				key=${name//[-\/]/_}
				[ "$round" != 1 ] || LABELS+=("$name")
				AGENT_BIN=${v#*:}
				# shellcheck disable=SC2086
				start_agent "$AGENT_CPU" ${m#*:} --stats-interval 0
				read -r on on_cpu < <(flood)
				stop_agent
				eval "ON_$key+=(\$on) ON_CPU_$key+=(\$on_cpu)"
				line+=", $name $on/s ($on_cpu/CPU-s) = $(ratio "$on" "$off") ($(ratio "$on_cpu" "$off_cpu") per CPU-s, ring_lost=$(counter ring_lost))"
			done
		done
		echo "$line"
	done
	AGENT_BIN=
	# One more off run, so that every on run sits between two off runs.
	run_off
	echo "cost closing off run: $off/s ($off_cpu/CPU-s)"
	stop_collector >/dev/null
	for name in "${LABELS[@]}"; do
		key=${name//[-\/]/_}
		eval "on=(\"\${ON_$key[@]}\") on_cpu=(\"\${ON_CPU_$key[@]}\")"
		# The added CPU time per drop does not depend on what else runs on
		# the drop path (another agent's program adds to on and off alike).
		added=$(awk -v on="$(mean "${on_cpu[@]}")" -v off="$(mean "${OFF_CPU[@]}")" \
			'BEGIN { printf "%.0f", (on > 0 && off > 0 ? 1e9 / on - 1e9 / off : 0) }')
		echo "cost/$name: $(ratio "$(mean "${on_cpu[@]}")" "$(mean "${OFF_CPU[@]}")") per CPU-s" \
			"(mean $(mean "${on_cpu[@]}") vs $(mean "${OFF_CPU[@]}") drops/CPU-s, +$added ns of CPU per drop);" \
			"$(ratio "$(mean "${on[@]}")" "$(mean "${OFF[@]}")") per wall second" \
			"(mean $(mean "${on[@]}") vs $(mean "${OFF[@]}") drops/s)"
	done
fi

# ---- e2e: highest rate without loss, RSS ------------------------------------

# thread_sample PID: per thread "name cpu_ticks voluntary nonvoluntary" (context
# switches: nonvoluntary ones are preemptions, the sign of threads contending).
thread_sample() {
	local t
	for t in /proc/"$1"/task/*; do
		awk -v tid="${t##*/}" '
			FNR == 1 && FILENAME ~ /stat$/ { sub(/^[^)]*\) /, ""); ticks = $12 + $13 }
			FILENAME ~ /comm$/ { name = $0 }
			/^voluntary_ctxt_switches/ { v = $2 }
			/^nonvoluntary_ctxt_switches/ { n = $2 }
			END { print tid, name, ticks, v, n }' "$t/stat" "$t/comm" "$t/status" 2>/dev/null || true
	done
}
# sample_placement PID: every 100 ms, the CPU each thread last ran on ("name cpu").
sample_placement() {
	local t
	while sleep 0.1; do
		for t in /proc/"$1"/task/*; do
			awk '{ sub(/^[^)]*\) /, ""); print $37 }' "$t/stat" 2>/dev/null | sed "s/^/$(cat "$t/comm" 2>/dev/null) /" || true
		done
	done
}
# thread_report: CPU time, context switches and placement of the poll and
# sender threads between the two samples of e2e_run.
thread_report() {
	local hz
	hz=$(getconf CLK_TCK)
	join <(sort "$WORK/threads0") <(sort "$WORK/threads1") | awk -v hz="$hz" -v secs="$E2E_SECS" '
		$2 == "poll" || $2 == "sender" {
			printf "%s %.2f CPU-s (%.0f %% of the run), %d voluntary / %d nonvoluntary switches; ",
				$2, ($7 - $3) / hz, 100 * ($7 - $3) / hz / secs, $8 - $4, $9 - $5 }'
	awk '$1 == "poll" || $1 == "sender" { n[$1]++; on[$1 " on CPU " $2]++ }
		END { for (k in on) { split(k, a, " "); printf "%s %.0f %%; ", k, 100 * on[k] / n[a[1]] } }' "$WORK/placement" |
		sed 's/; $//'
}

# e2e_run RATE: default settings, trapstream unpinned, for E2E_SECS; sets
# E2E_LINE, E2E_OK (zero loss), E2E_GOT (the rate reached), E2E_RSS, E2E_HWM.
e2e_run() {
	local rate=$1 got rss hwm lost
	# The collector shares the flood's CPU: on a switch it is another host,
	# so its cost must not land on trapstream's CPU.
	start_collector "$FLOOD_CPU"
	start_agent "" --source skb
	thread_sample "$AGENT_PID" >"$WORK/threads0"
	sample_placement "$AGENT_PID" >"$WORK/placement" &
	local sampler=$!
	PIDS+=("$sampler")
	read -r got _ < <(SECS=$E2E_SECS flood --rate "$rate")
	thread_sample "$AGENT_PID" >"$WORK/threads1"
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	forget "$sampler"
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$AGENT_PID"/status)
	hwm=$(awk '/VmHWM/ {print $2}' /proc/"$AGENT_PID"/status)
	stop_agent
	local collected
	collected=$(stop_collector)
	lost=$(($(counter nested) + $(counter ring_lost) + $(counter decode_errors) + $(counter channel_lost) + $(counter send_lost) + $(counter unacked_lost) + $(counter refused)))
	E2E_OK=0
	[ "$lost" = 0 ] && [ "$(counter read)" = "$(counter sent)" ] && E2E_OK=1
	E2E_LINE="asked ${rate}/s got ${got}/s for ${E2E_SECS}s: ok=$E2E_OK VmRSS=${rss}kB VmHWM=${hwm}kB; $FINAL; collector: $collected; load $(cut -d' ' -f1-3 /proc/loadavg)"
	E2E_LINE+=$'\n'"  threads during the flood: $(thread_report)"
	E2E_GOT=$got E2E_RSS=$rss E2E_HWM=$hwm
}

if want e2e; then
	echo "## e2e: default settings (json, -b 20, --max-datagram 1400) to a UDP collector on 127.0.0.1, flood on CPU $FLOOD_CPU, ${E2E_SECS}s runs"
	e2e_run 0
	echo "e2e unpaced: $E2E_LINE"
	BEST=0 BEST_LINE=""
	if [ "$E2E_OK" = 1 ]; then
		BEST=$E2E_GOT BEST_LINE=$E2E_LINE
	else
		# Bisect the paced rate; every probe is a full-length run.
		lo=0 hi=$E2E_GOT
		for _ in $(seq "${E2E_STEPS:-5}"); do
			mid=$(((lo + hi) / 2))
			e2e_run "$mid"
			echo "e2e probe: $E2E_LINE"
			if [ "$E2E_OK" = 1 ]; then
				lo=$mid BEST=$E2E_GOT BEST_LINE=$E2E_LINE
			else
				hi=$mid
			fi
		done
	fi
	if [ "$BEST" -gt 0 ]; then
		echo "e2e: $BEST drops/s for ${E2E_SECS}s with zero loss: $BEST_LINE"
	else
		echo "e2e: no zero-loss rate found"
	fi
fi

# ---- profile: where a drop's time goes ---------------------------------------

if want profile; then
	command -v perf >/dev/null || { echo "kernel.sh: profile needs perf" >&2; exit 1; }
	for m in "off:" "${MODES[@]}"; do
		name=${m%%:*}
		echo "## profile/$name: perf record of the flood process (its drops run in its context), ${SECS}s"
		start_collector "$AGENT_CPU"
		# shellcheck disable=SC2086
		[ "$name" = off ] || start_agent "$AGENT_CPU" ${m#*:} --stats-interval 0
		"$FLOOD" --netns "$NSA" --dst "$IP_B" --port 9 --flows "$FLOWS" --cpu "$FLOOD_CPU" --secs "$SECS" \
			${PAYLOAD:+--payload "$PAYLOAD"} >"$WORK/flood" &
		flood_pid=$!
		PIDS+=("$flood_pid")
		perf record -q -p "$flood_pid" -e cpu-clock -F 4999 -g -o "$WORK/perf.data" 2>/dev/null || true
		wait "$flood_pid" || true
		forget "$flood_pid"
		[ "$name" = off ] || stop_agent
		stop_collector >/dev/null
		echo "# flood: $(cat "$WORK/flood")"
		echo "# self time, top symbols"
		perf report -i "$WORK/perf.data" --no-children --sort symbol -g none --percent-limit 1.5 2>/dev/null |
			grep -E '^ +[0-9]' | sed 's/  *- *- *$//' | cut -c1-110 | awk 'NR <= 25'
		echo "# inclusive time of the drop path and the BPF program"
		perf report -i "$WORK/perf.data" --children --sort symbol -g none 2>/dev/null |
			grep -E 'bpf_prog_|kfree_skb|bpf_trace_run|bpf_ringbuf|htab_map|jhash|bpf_probe_read|sk_skb_reason_drop|udp_sendmmsg|__udp4_lib_rcv' |
			sed 's/  *- *- *$//' | cut -c1-110 | awk 'NR <= 20'
	done
fi
