# Guest side of tests/vm_sdk.rs: the vendor-SDK trap path. The kernel's
# sdk_emu (tests/vm/sdk_emu.c) reports packets the way NVIDIA's Switch SDK
# does on SONiC and Cumulus hosts; this script makes it report every SDK
# trap name, cookies, SONiC's extended metadata and floods, with trapstream
# running in several ways, and leaves per scenario in $RESULTS: NAME.out
# (what trapstream wrote), NAME.err (its log, ending in the final counters)
# and NAME.status. The host asserts on them.
#
# TRAPSTREAM_GUEST_SDK_TRAPS: "name group;name group;..." from
# tests/data/sdk-traps.tsv.
set -eu

R=$RESULTS
T=$TRAPSTREAM
EMU=/sys/kernel/debug/sdk_emu/report

uname -r > "$R/kernel"
[ -w "$EMU" ] || { echo "no $EMU: the kernel lacks sdk_emu" >&2; exit 1; }
# Whether this kernel's trap metadata carries SONiC's fields, by its BTF
# (output_lag_dev is SONiC's alone: psample_metadata has an out_tc_valid too).
if bpftool btf dump file /sys/kernel/btf/vmlinux | grep -q "'output_lag_dev'"; then echo 1; else echo 0; fi > "$R/wjh"

# Switch ports and a LAG: veth pairs, the far ends unused. No IPv6 on them:
# its router and neighbour solicitations would be kernel drops on swp1 in
# the scenarios that count them.
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
for p in swp1 swp2 swp3 PortChannel1; do
	ip link add "$p" type veth peer name "${p}_p"
	ip link set "$p" up
	ip link set "${p}_p" up
done
for p in swp1 swp2 swp3 PortChannel1; do cat "/sys/class/net/$p/ifindex"; done > "$R/ifindexes"

# Ethernet 0c:42:a1:a9:81:66 -> 24:8a:07:ca:22:59, IPv4 192.0.2.1 ->
# 198.51.100.7, id 0x1234, TTL 64, UDP 1234 -> 4789 (42 bytes). FRAME2
# differs in the UDP source port only (1235): another flow.
ETH=248a07ca22590c42a1a981660800
IP=4500001c1234000040110000c0000201c6336407
FRAME=${ETH}${IP}04d212b500080000
FRAME2=${ETH}${IP}04d312b500080000

report() { echo "$*" > "$EMU"; }

# start NAME TRAPSTREAM-ARGS...: run trapstream in the background until `finish`.
start() {
	name=$1
	shift
	"$T" "$@" > "$R/$name.out" 2> "$R/$name.err" &
	pid=$!
	for _ in $(seq 300); do
		grep -q capturing "$R/$name.err" && return 0
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	echo "trapstream did not start for $name" >&2
	cat "$R/$name.err" >&2
	exit 1
}

finish() {
	sleep 0.5
	kill -TERM "$pid" 2> /dev/null || true
	rc=0
	wait "$pid" || rc=$?
	echo "$rc" > "$R/$name.status"
}

# 1. Every SDK trap name once, ACL drops with their cookie (user value with
# the direction in bits 19:18: ingress 0x00123, egress 0x40123, multipoint 0x80123).
start names --stdout --source devlink --trap-types drop,exception,threshold,control
IFS=';'
for entry in $TRAPSTREAM_GUEST_SDK_TRAPS; do
	IFS=' '
	set -- $entry
	case $1 in
		ingress_flow_action_drop) cookie=cookie=23010000 ;;
		egress_flow_action_drop) cookie=cookie=23010400 ;;
		flow_action_drop) cookie=cookie=23010800 ;;
		*) cookie= ;;
	esac
	report "trap=$1 group=$2 in=swp1 pkt=$FRAME $cookie"
	IFS=';'
done
# The default again (space, tab, newline): $(seq ...) below splits on newlines.
unset IFS
finish

# 2. --trap-types by the taxonomy's type, not the SDK's constant 0: only the drop passes
# (not the exception, the threshold crossing or the control trap).
start types --stdout --source devlink --trap-types drop
report "trap=blackhole_route group=router in=swp1 pkt=$FRAME"
report "trap=unresolved_neigh group=router in=swp1 pkt=$FRAME"
report "trap=congestion_thresh_crossed group=buffer in=swp1 pkt=$FRAME"
report "trap=uc_loopback group=router in=swp1 pkt=$FRAME"
finish

# 3. SONiC's extended metadata: all valid, none valid, some valid, no LAG.
# Invalid fields carry the SDK's markers whatever value is given here.
start wjh --stdout --source devlink
report "trap=tail_drop group=buffer in=swp1 pkt=$FRAME out=swp2 lag=PortChannel1 tc=3 occ=100 lat=2000 valid=7"
report "trap=early_drop group=buffer in=swp1 pkt=$FRAME out=swp2 lag=PortChannel1 tc=5 occ=7 lat=9 valid=0"
report "trap=congestion_thresh_crossed group=buffer in=swp1 pkt=$FRAME out=swp2 tc=6 occ=11 lat=12 valid=5"
report "trap=latency_thresh_crossed group=buffer in=swp1 pkt=$FRAME out=swp3 tc=1 occ=4096 lat=16777215 valid=2"
finish

# 4. Both sources: the SDK frees its copy of each reported packet with
# kfree_skb; that free is the same packet, not a second, kernel-drop record.
# The port list keeps the guest's other kernel drops out of the count.
printf '[filters]\ninclude_ports = ["swp1"]\n' > /tmp/swp1.toml
start all --stdout --source all -c /tmp/swp1.toml
report "trap=blackhole_route group=router in=swp1 pkt=$FRAME count=20"
finish
# The control: with the skb source alone, the same frees are kernel drops.
start skbonly --stdout --source skb -c /tmp/swp1.toml
report "trap=blackhole_route group=router in=swp1 pkt=$FRAME count=20"
finish

# 5. Aggregation: counts per {trap, port, flow} and, on SONiC kernels, egress port.
start agg --stdout --source devlink -u 0.5 -d 192.0.2.99
report "trap=tail_drop group=buffer in=swp1 pkt=$FRAME out=swp2 tc=3 occ=100 lat=2000 valid=7 count=50"
report "trap=blackhole_route group=router in=swp1 pkt=$FRAME count=30"
report "trap=tail_drop group=buffer in=swp1 pkt=$FRAME out=swp3 tc=3 occ=100 lat=2000 valid=7 count=20"
sleep 0.7
report "trap=tail_drop group=buffer in=swp1 pkt=$FRAME2 out=swp2 count=10"
report "trap=blackhole_route group=router in=swp1 pkt=$FRAME count=5"
finish

# 6. What a driver could get wrong: an unknown name, an empty one, one longer
# than trapstream keeps (63 bytes), no group at all (NULL), an unknown group,
# one longer than kept (39 bytes), a cookie of no bytes, one of 64 bytes (more
# than kept), and a report with no egress device and nothing valid.
LONG_NAME=abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefgh
LONG_GROUP=group_of_forty_characters_abcdefghijklm
COOKIE64=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
start bad --stdout --source devlink --trap-types drop,exception,threshold,control
report "trap=not_a_known_sdk_trap group=router in=swp1 pkt=$FRAME"
report "trap= group=l2 in=swp1 pkt=$FRAME"
report "trap=$LONG_NAME group=router in=swp1 pkt=$FRAME"
report "trap=blackhole_neigh in=swp1 pkt=$FRAME"
report "trap=port_list_is_empty group=no_such_group in=swp1 pkt=$FRAME"
report "trap=smac_is_zero group=$LONG_GROUP in=swp1 pkt=$FRAME"
report "trap=ingress_flow_action_drop group=acl in=swp1 pkt=$FRAME cookie="
report "trap=egress_flow_action_drop group=acl in=swp1 pkt=$FRAME cookie=$COOKIE64"
report "trap=early_drop group=buffer in=swp1 pkt=$FRAME tc=9 occ=9 lat=9 valid=0"
finish
