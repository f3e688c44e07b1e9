# Guest side of tests/vm_devlink.rs: runs trapstream against netdevsim's real
# devlink trap reports in several configurations and leaves, per scenario,
# in $RESULTS: NAME.out (what trapstream wrote), NAME.err (its log, ending
# in the final counters), NAME.status, and devlink's trap counters before
# and after (NAME.before.json, NAME.after.json). The host asserts on them.
#
# Each window is bracketed by taking the ports down: netdevsim reports only
# on running ports, so the counters read with the ports down cover exactly
# the reports trapstream was attached for.
set -eu

R=$RESULTS
T=$TRAPSTREAM
DEV=netdevsim/netdevsim10
COOKIE=deadbeef0102a5

uname -r > "$R/kernel"
uname -m > "$R/arch"
echo "10 2" > /sys/bus/netdevsim/new_device
for _ in $(seq 100); do
	[ "$(ls /sys/bus/netdevsim/devices/netdevsim10/net 2>/dev/null | wc -l)" -ge 2 ] && break
	sleep 0.1
done
PORTS=$(ls /sys/bus/netdevsim/devices/netdevsim10/net)
echo $PORTS > "$R/ports"

ports() {
	for p in $PORTS; do ip link set "$p" "$1"; done
}

# run NAME SECONDS TRAPSTREAM-ARGS...
run() {
	name=$1 secs=$2
	shift 2
	ports down
	devlink -s -j trap show > "$R/$name.before.json"
	"$T" "$@" > "$R/$name.out" 2> "$R/$name.err" &
	pid=$!
	for _ in $(seq 300); do
		grep -q capturing "$R/$name.err" && break
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	ports up
	# Traffic of the scenario's own, while the window is open.
	if [ -n "$DURING" ]; then $DURING; fi
	sleep "$secs"
	ports down
	# A report already under way when the ports went down lands now.
	sleep 0.5
	devlink -s -j trap show > "$R/$name.after.json"
	kill -TERM "$pid" 2> /dev/null || true
	rc=0
	wait "$pid" || rc=$?
	echo "$rc" > "$R/$name.status"
}

DURING=

# skb_drops PORT...: one datagram to each closed port on lo: a kernel drop each.
skb_drops() {
	for port in "$@"; do
		echo x | socat -u - "UDP-SENDTO:127.0.0.1:$port" || true
	done
}

# collector NAME PORT: a UDP socket in the guest writing what it receives.
collector() {
	socat -u "UDP-RECV:$2,bind=127.0.0.1" "OPEN:$R/$1.udp,creat,trunc" &
	echo $! > "$R/$1.collector.pid"
	sleep 0.2
}

stop_collector() {
	sleep 0.3
	kill "$(cat "$R/$1.collector.pid")" 2> /dev/null || true
}

# 1. The default trap types (drop, exception): netdevsim's exceptions fire.
run events 2 --stdout --source devlink
# 2. Control traps only when asked for.
run control 1 --stdout --source devlink --trap-types drop,exception,control
# 3. Drop traps after `devlink trap set ... action trap`, one with a cookie.
devlink trap set "$DEV" trap blackhole_route action trap
devlink trap set "$DEV" trap ingress_flow_action_drop action trap
echo "$COOKIE" > /sys/kernel/debug/netdevsim/netdevsim10/trap_flow_action_cookie
run drops 1.5 --stdout --source devlink
devlink trap set "$DEV" trap blackhole_route action drop
devlink trap set "$DEV" trap ingress_flow_action_drop action drop
# 4. Streaming to a collector over UDP, in both formats.
collector udp_json 9901
run udp_json 1.5 --source devlink -i 0.2 -b 5 127.0.0.1 9901
stop_collector udp_json
collector udp_influx 9902
run udp_influx 1.5 --source devlink -f influx -i 0.2 127.0.0.1 9902
stop_collector udp_influx
# 5. Aggregation in the kernel.
run aggregate 2 --stdout --source devlink -u 0.5 -d 192.0.2.99
# 5b. The same with the first 3 packets of each new flow sent at once, and
# captured: the packets sent alone carry their bytes.
run aggregate_exemplars 2 --stdout --source devlink -u 0.5 --exemplars 3 -d 192.0.2.99 \
	--pcap "$R/aggregate_exemplars.pcapng"
# 6. The kernel's own drops on this kernel (no drop reason before 5.17).
"$T" --stdout --source skb > "$R/skb.out" 2> "$R/skb.err" &
pid=$!
for _ in $(seq 300); do
	grep -q capturing "$R/skb.err" && break
	sleep 0.1
done
for port in 7001 7002 7003; do
	echo x | socat -u - "UDP-SENDTO:127.0.0.1:$port" || true
done
sleep 0.5
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
echo "$rc" > "$R/skb.status"
echo "$COOKIE" > "$R/cookie"
# 7. Filters judge the source they describe, with both sources at once: a
# trap-group list keeps one group of traps and every kernel drop; a port
# list keeps one port's traps and the kernel's drops on lo.
printf '[filters]\ninclude_trap_groups = ["l3_exceptions"]\n' > /tmp/groups.toml
DURING="skb_drops 7101 7102 7103"
run filter_groups 1.5 --stdout --source all -c /tmp/groups.toml
set -- $PORTS
echo "$1" > "$R/filter_port"
printf '[filters]\ninclude_ports = ["%s", "lo"]\n' "$1" > /tmp/ports.toml
DURING="skb_drops 7201 7202 7203"
run filter_ports 1.5 --stdout --source all -c /tmp/ports.toml
# A trap-name list judges traps only; a netns list judges both (here the
# initial namespace, where the ports and lo are).
printf '[filters]\nexclude_trap_names = ["fid_miss"]\ninclude_netns = [%s]\n' \
	"$(stat -L -c %i /proc/self/ns/net)" > /tmp/names.toml
DURING="skb_drops 7301 7302 7303"
run filter_names 1.5 --stdout --source all -c /tmp/names.toml
DURING=
# 8. The packets themselves as pcapng next to --stdout's records; the host
# reads the file with tshark.
devlink trap set "$DEV" trap blackhole_route action trap
run pcap 1.5 --stdout --source devlink --pcap "$R/pcap.pcapng"
devlink trap set "$DEV" trap blackhole_route action drop
