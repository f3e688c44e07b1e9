#!/usr/bin/env bash
# Proves the Debian package on the userlands it targets: builds it (and a
# higher version for the upgrade), then in a Debian 11 (bullseye) and a Debian
# 12 (bookworm) root:
#   - installs it, checks the files, the conffile, that the unit is not enabled,
#     that the binary needs no libelf/zlib and loads with the root's glibc;
#   - runs --version, --help, and a live `--stdout --source skb` capture that
#     must report a UDP drop this script causes (NO_SOCKET, its port);
#   - repeats the capture as an unprivileged user with only CAP_BPF and
#     CAP_PERFMON, and checks that it fails without either;
#   - checks the man page and the unit (systemd-analyze verify in the root,
#     systemd-analyze security <= 3.0);
#   - reinstalls, upgrades (keeping a locally edited conffile), removes and
#     purges (which must remove /etc/trapstream);
#   - boots the root with systemd-nspawn and runs the packaged unit under the
#     root's own systemd: it must stream the drop to a UDP collector on the
#     host's loopback as a transient user holding only CAP_BPF and CAP_PERFMON,
#     and stop cleanly. With a binary that knows --check-config, it must also
#     refuse to run on the shipped (collector-less) configuration.
# The roots share the host kernel, so they see the host's BPF and drops.
#
#   bash debian/test-package.sh
#
# Run as root. Installs its own packages. Debootstrapped roots are cached in
# $TRAPSTREAM_ROOTS (default /var/cache/trapstream-debootstrap) and copied
# for each run, so the cache stays pristine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

ROOTS=${TRAPSTREAM_ROOTS:-/var/cache/trapstream-debootstrap}
. debian/install-checks.sh
SUITES=(bullseye bookworm)
# Bumped when the roots need different contents, so old caches are completed.
ROOT_STAMP=".trapstream-root-1"
ROOT_EXTRA=(systemd man-db)
MAX_EXPOSURE=3.0
NS_A=ts-deb-a NS_B=ts-deb-b VETH_A=ts-deb-va VETH_B=ts-deb-vb
V4_A=10.213.7.1 V4_B=10.213.7.2
PORT=47123
# Capabilities by number: bullseye's setpriv (util-linux 2.36) predates the
# names bpf and perfmon.
# shellcheck disable=SC2034 # read through ${!name}
CAP_PERFMON=cap_38 CAP_BPF=cap_39 CAP_NET_ADMIN=cap_12
SVC_PORT=47124 COLLECTOR_PORT=47300

log() { echo "test-package: $*" >&2; }
die() { echo "test-package: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, BPF, network namespaces)"

work=$(mktemp -d /var/tmp/trapstream-test-package.XXXXXX)
mounted=()
cleanup() {
    local rc=$? i
    set +e
    [ -n "${capture_pid:-}" ] && kill "$capture_pid" 2>/dev/null && wait "$capture_pid" 2>/dev/null
    [ -n "${nspawn_pid:-}" ] && stop_container
    [ -n "${listener_pid:-}" ] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[i]}"; done
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    # Never delete through a mount point that is still there.
    if grep -q " $work" /proc/mounts; then
        echo "test-package: mounts remain under $work; not removing it" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT

install_host_packages() {
    local pkgs=(debootstrap debian-archive-keyring iproute2 systemd util-linux binutils python3)
    local missing=() p
    for p in "${pkgs[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The host's own Debian mirror, from its apt configuration.
mirror() {
    .ci/debian-mirror   # the script runs from the top of the checkout
}

mount_root() {
    local root=$1
    mount -t proc proc "$root/proc"
    mounted+=("$root/proc")
    # /sys carries /sys/kernel/btf/vmlinux, which loading the programs needs;
    # bullseye's systemd-analyze also needs the cgroup mounts under it.
    # rslave: unmounting the copy must not reach the host's mounts.
    mount --rbind /sys "$root/sys"
    mounted+=("$root/sys")
    mount --make-rslave "$root/sys"
    mount --bind /dev "$root/dev"
    mounted+=("$root/dev")
}

umount_root() {
    local root=$1 i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        case "${mounted[i]}" in
            "$root"/*) umount -R "${mounted[i]}"; unset 'mounted[i]' ;;
        esac
    done
    mounted=("${mounted[@]}")
}

ensure_root() {
    local suite=$1 dir="$ROOTS/$1"
    if [ ! -x "$dir/usr/bin/dpkg" ]; then
        log "debootstrap $suite from $(mirror) into $dir"
        rm -rf "$dir.tmp"
        mkdir -p "$ROOTS"
        debootstrap --variant=minbase "$suite" "$dir.tmp" "$(mirror)" >"$work/debootstrap-$suite.log" 2>&1 \
            || { tail -n 20 "$work/debootstrap-$suite.log" >&2; die "debootstrap $suite"; }
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
    fi
    if [ ! -e "$dir/$ROOT_STAMP" ]; then
        # systemd for `systemd-analyze verify` with the suite's own systemd,
        # man-db to check the man page.
        log "installing ${ROOT_EXTRA[*]} into the $suite root"
        mount_root "$dir"
        chroot "$dir" apt-get update -qq
        chroot "$dir" apt-get install -y -qq --no-install-recommends "${ROOT_EXTRA[@]}" >/dev/null
        chroot "$dir" apt-get clean
        umount_root "$dir"
        touch "$dir/$ROOT_STAMP"
    fi
}

make_hosts() {
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add "$VETH_A" type veth peer name "$VETH_B"
    ip link set "$VETH_A" netns "$NS_A"
    ip link set "$VETH_B" netns "$NS_B"
    ip -n "$NS_A" addr add "$V4_A/24" dev "$VETH_A"
    ip -n "$NS_B" addr add "$V4_B/24" dev "$VETH_B"
    for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_A" link set "$VETH_A" up
    ip -n "$NS_B" link set "$VETH_B" up
    netns_b=$(stat -L -c %i "/run/netns/$NS_B")
}

# Runs trapstream in the root (as root, or through setpriv with the given
# capabilities as nobody), sends UDP from A to a closed port in B until a
# record for it shows up (at most 20 s), stops trapstream with SIGINT. Leaves
# stdout in $out and stderr in $err; returns trapstream's exit status.
capture() {
    local root=$1 caps=${2:-} i rc
    out="$work/capture.out" err="$work/capture.err"
    : >"$out"
    : >"$err"
    local cmd=(/usr/bin/trapstream --stdout --source skb)
    if [ -n "$caps" ]; then
        cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="-all$caps"
            --ambient-caps="-all$caps" --bounding-set="-all$caps" -- "${cmd[@]}")
    fi
    chroot "$root" "${cmd[@]}" >"$out" 2>"$err" &
    capture_pid=$!
    # Sending before the programs are attached is harmless: keep sending
    # until a record arrives or trapstream exits.
    for ((i = 0; i < 100; i++)); do
        kill -0 "$capture_pid" 2>/dev/null || break
        ip netns exec "$NS_A" bash -c "echo trapstream-test > /dev/udp/$V4_B/$PORT" || true
        sleep 0.2
        grep -q "\"dstPort\":${PORT}[,}]" "$out" && break
    done
    kill -INT "$capture_pid" 2>/dev/null || true
    rc=0
    wait "$capture_pid" || rc=$?
    capture_pid=
    return $rc
}

# The record for our drop: NO_SOCKET, UDP to $PORT, seen in namespace B.
check_record() {
    python3 - "$out" "$PORT" "$V4_A" "$V4_B" "$netns_b" <<'EOF'
import json, sys
path, port, src, dst, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ours = []
for line in open(path):
    r = json.loads(line)
    p = r.get("packet", {})
    if p.get("TRANSPORT", {}).get("dstPort") == port and r.get("netnsIno") == ns:
        ours.append(r)
if not ours:
    sys.exit(f"no record for UDP port {port} in {path}")
r = ours[0]
want = {"source": "skb", "message": "kernelDrop", "skbDropReason": "NO_SOCKET", "dropReason": "NO_SOCKET"}
for k, v in want.items():
    if r.get(k) != v:
        sys.exit(f"{k} = {r.get(k)!r}, expected {v!r}: {json.dumps(r)}")
ip = r["packet"]["IP"]
if (ip["srcIp"], ip["dstIp"], ip["protocol"]) != (src, dst, 17):
    sys.exit(f"unexpected IP header: {ip}")
print(json.dumps(r))
EOF
}

# systemd-nspawn from the archive, unpacked rather than installed: installing
# systemd-container would also upgrade the host's systemd to its version.
get_nspawn() {
    if command -v systemd-nspawn >/dev/null; then
        nspawn=(systemd-nspawn)
        return
    fi
    local dir="$work/nspawn" f
    mkdir -p "$dir"
    chmod 755 "$work" "$dir"
    (cd "$dir" && apt-get download -q systemd systemd-container >/dev/null 2>&1) \
        || die "apt-get download systemd systemd-container"
    for f in "$dir"/*.deb; do dpkg-deb -x "$f" "$dir/root"; done
    nspawn=(env "LD_LIBRARY_PATH=$dir/root/usr/lib/x86_64-linux-gnu/systemd" "$dir/root/usr/bin/systemd-nspawn")
    "${nspawn[@]}" --version >/dev/null || die "unpacked systemd-nspawn does not run"
}

# Boots $1 with its own systemd. The container shares the host's network, so
# the service reaches the collector on 127.0.0.1 and sees the host's drops.
# nspawn's own seccomp filter denies bpf() unless asked; CAP_SYS_RESOURCE lets
# the container's systemd apply LimitMEMLOCK as a host's would.
boot_container() {
    local root=$1 i state=
    "${nspawn[@]}" -D "$root" --boot --register=no --keep-unit -q --console=pipe \
        --capability=CAP_BPF,CAP_PERFMON,CAP_SYS_RESOURCE --system-call-filter='bpf perf_event_open' \
        </dev/null >"$work/container.log" 2>&1 &
    nspawn_pid=$!
    ct=
    for ((i = 0; i < 600; i++)); do
        kill -0 "$nspawn_pid" 2>/dev/null || { tail -n 20 "$work/container.log" >&2; die "systemd-nspawn exited"; }
        [ -z "$ct" ] && ct=$(pgrep -P "$nspawn_pid" | awk 'NR == 1' || true)
        if [ -n "$ct" ]; then
            state=$(nsenter -t "$ct" -a systemctl is-system-running 2>/dev/null || true)
            case "$state" in running|degraded) return 0 ;; esac
        fi
        sleep 0.1
    done
    die "the container did not finish booting (state: ${state:-none})"
}

stop_container() {
    local i
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$nspawn_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid"
    wait "$nspawn_pid" 2>/dev/null || true
    nspawn_pid=
}

# Waits up to $2 tenths of a second for the unit's `systemctl show` property
# $1 to read $3.
wait_unit() {
    local prop=$1 tries=$2 want=$3 i got
    for ((i = 0; i < tries; i++)); do
        got=$(nsenter -t "$ct" -a systemctl show -p "$prop" --value trapstream.service)
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

test_service() {
    local suite=$1 root=$2 in_ct h i status
    local dropin="$root/etc/systemd/system/trapstream.service.d"
    if grep -q -- '--check-config' <<<"$(chroot "$root" /usr/bin/trapstream --help)"; then
        log "$suite: service with the shipped configuration (no collector) must not run"
        chroot "$root" systemctl enable trapstream.service
        boot_container "$root"
        in_ct="nsenter -t $ct -a"
        wait_unit ActiveState 300 failed \
            || die "$suite: unconfigured service: $($in_ct systemctl status --no-pager trapstream.service)"
        $in_ct journalctl -u trapstream.service --no-pager -o cat \
            | awk -v p="test-package: $suite: ExecStartPre said: " '/^trapstream:/ && !n++ {print p $0}' >&2 || true
        stop_container
        {
            echo 'collector_ip = "127.0.0.1"'
            echo "collector_port = $COLLECTOR_PORT"
            echo 'source = "skb"'
        } >>"$root/etc/trapstream/trapstream.toml"
    else
        # Until trapstream has --config: the packaged unit, hardening and all,
        # with only its commands replaced.
        log "$suite: this trapstream has no --check-config yet: the unit's commands are overridden"
        mkdir -p "$dropin"
        cat >"$dropin/test.conf" <<EOF
[Service]
ExecStartPre=
ExecStart=
ExecStart=/usr/bin/trapstream --source skb 127.0.0.1 $COLLECTOR_PORT
EOF
    fi
    chroot "$root" systemctl enable trapstream.service

    log "$suite: service streaming to udp://127.0.0.1:$COLLECTOR_PORT"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(120)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65535) + b"\n")
' "$COLLECTOR_PORT" "$work/collector.out" &
    listener_pid=$!
    boot_container "$root"
    in_ct="nsenter -t $ct -a"
    wait_unit SubState 300 running || die "$suite: $($in_ct systemctl status --no-pager trapstream.service)"
    h=$(pgrep -P "$ct" -f '^/usr/bin/trapstream' | awk 'NR == 1')
    [ -n "$h" ] || die "$suite: no trapstream process"
    grep -E '^(Uid|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$h/status" | tr '\t' ' ' \
        | sed "s/^/test-package: $suite: service /" >&2
    grep -q '^Uid:[[:space:]]0[[:space:]]' "/proc/$h/status" && die "$suite: the service runs as root"
    grep -q '^CapEff:[[:space:]]000000c000000000$' "/proc/$h/status" \
        || die "$suite: service capabilities are not CAP_BPF+CAP_PERFMON"
    grep -q '^CapBnd:[[:space:]]000000c000000000$' "/proc/$h/status" \
        || die "$suite: service bounding set is not CAP_BPF+CAP_PERFMON"
    grep -q '^NoNewPrivs:[[:space:]]1$' "/proc/$h/status" || die "$suite: NoNewPrivileges not in force"
    grep -q '^Seccomp:[[:space:]]2$' "/proc/$h/status" || die "$suite: no seccomp filter"
    # Only a manager holding CAP_SYS_RESOURCE can raise the limit, as the host's
    # systemd does; some sandboxes withhold it even from root.
    if prlimit --memlock=unlimited:unlimited true 2>/dev/null; then
        grep -q '^Max locked memory *unlimited *unlimited' "/proc/$h/limits" || die "$suite: LimitMEMLOCK not applied"
    else
        log "$suite: this machine cannot raise RLIMIT_MEMLOCK (no CAP_SYS_RESOURCE), LimitMEMLOCK=infinity unverified:" \
            "$(grep 'Max locked memory' "/proc/$h/limits" | tr -s ' ')"
    fi
    for ((i = 0; i < 150; i++)); do
        ip netns exec "$NS_A" bash -c "echo trapstream-test > /dev/udp/$V4_B/$SVC_PORT" || true
        sleep 0.2
        grep -q "\"dstPort\":${SVC_PORT}[,}]" "$work/collector.out" 2>/dev/null && break
    done
    python3 - "$work/collector.out" "$SVC_PORT" "$suite" <<'EOF' \
        || die "$suite: the collector got no record of the drop ($($in_ct journalctl -u trapstream.service --no-pager | tail -n 5))"
import json, sys
port = int(sys.argv[2])
for line in open(sys.argv[1]):
    for r in json.loads(line):
        if r["packet"].get("TRANSPORT", {}).get("dstPort") == port and r["skbDropReason"] == "NO_SOCKET":
            print(f"test-package: {sys.argv[3]}: collector got: {json.dumps(r)}", file=sys.stderr)
            sys.exit(0)
sys.exit(1)
EOF
    $in_ct systemctl stop trapstream.service
    status=$($in_ct systemctl show -p Result -p ExecMainStatus --value trapstream.service | tr '\n' ' ')
    [ "$status" = "success 0 " ] || die "$suite: stop: Result, ExecMainStatus = $status"
    $in_ct journalctl -u trapstream.service --no-pager | grep 'final:' | tail -n 1 \
        | sed "s/^/test-package: $suite: /" >&2
    stop_container
    kill "$listener_pid" 2>/dev/null || true
    wait "$listener_pid" 2>/dev/null || true
    listener_pid=
    rm -f "$work/collector.out"
}

test_suite() {
    local suite=$1 root="$work/$1" v
    log "=== $suite"
    ensure_root "$suite"
    cp -a "$ROOTS/$suite" "$root"
    cp "$deb" "$deb_up" "$root/tmp/"
    mount_root "$root"
    local in_root="chroot $root"

    log "$suite: glibc $($in_root ldd --version | awk 'NR == 1 {print $NF}'), systemd $($in_root systemctl --version | awk 'NR == 1 {print $2}')"
    check_install "$root" "$suite" "$deb" '${Version} ${Status}' "$deb_version install ok installed" "$work"
    $in_root man -w trapstream >/dev/null || die "$suite: man trapstream"
    log "$suite: $($in_root trapstream --version)"

    local record
    log "$suite: capture as root"
    capture "$root" || die "$suite: trapstream exited $? (stderr: $(cat "$err"))"
    record=$(check_record) || die "$suite: no record of the drop (stderr: $(cat "$err"))"
    log "$suite: record: $record"

    log "$suite: capture as nobody with CAP_BPF,CAP_PERFMON"
    capture "$root" ",+$CAP_BPF,+$CAP_PERFMON" || die "$suite: with CAP_BPF+CAP_PERFMON, trapstream exited $? ($(cat "$err"))"
    check_record >/dev/null || die "$suite: no record with CAP_BPF+CAP_PERFMON"
    local caps
    for caps in "CAP_NET_ADMIN" "CAP_BPF CAP_NET_ADMIN" "CAP_PERFMON CAP_NET_ADMIN"; do
        local spec="" c
        for c in $caps; do spec="$spec,+${!c}"; done
        if capture "$root" "$spec"; then
            die "$suite: trapstream ran as nobody with only $caps"
        fi
        log "$suite: as nobody with only $caps: $(sed 's/\x1b\[[0-9;]*m//g' "$err" | tail -n 1)"
    done

    log "$suite: systemd-analyze"
    $in_root systemd-analyze verify /lib/systemd/system/trapstream.service || die "$suite: systemd-analyze verify"
    local exposure
    exposure=$(systemd-analyze security --offline=true --root="$root" trapstream.service \
        | sed -n 's/.*Overall exposure level for trapstream.service: \([0-9.]*\).*/\1/p')
    log "$suite: systemd-analyze security: $exposure"
    python3 -c "import sys; sys.exit(not float('$exposure') <= $MAX_EXPOSURE)" \
        || die "$suite: exposure $exposure above $MAX_EXPOSURE"

    log "$suite: reinstall, upgrade to $deb_up_version, remove, purge"
    echo "# local edit" >>"$root/etc/trapstream/trapstream.toml"
    $in_root dpkg -i "/tmp/$(basename "$deb")" </dev/null
    $in_root dpkg -i "/tmp/$(basename "$deb_up")" </dev/null
    v=$($in_root dpkg-query -W -f='${Version}' trapstream)
    [ "$v" = "$deb_up_version" ] || die "$suite: version after upgrade: $v"
    [ "$(tail -n 1 "$root/etc/trapstream/trapstream.toml")" = '# local edit' ] \
        || die "$suite: the upgrade lost the local edit of the conffile"
    [ ! -e "$root/etc/systemd/system/multi-user.target.wants/trapstream.service" ] \
        || die "$suite: the upgrade enabled the service"
    $in_root dpkg -r trapstream </dev/null
    [ ! -e "$root/usr/bin/trapstream" ] || die "$suite: remove left /usr/bin/trapstream"
    [ -e "$root/etc/trapstream/trapstream.toml" ] || die "$suite: remove deleted the conffile"
    $in_root dpkg --purge trapstream </dev/null
    [ ! -e "$root/etc/trapstream" ] || die "$suite: purge left /etc/trapstream: $(ls -A "$root/etc/trapstream")"
    ! $in_root dpkg-query -W trapstream >/dev/null 2>&1 || die "$suite: still known to dpkg after purge"
    # Purge straight from installed, with an enabled unit, as an operator would.
    $in_root dpkg -i "/tmp/$(basename "$deb_up")" </dev/null
    $in_root systemctl enable trapstream.service
    [ -L "$root/etc/systemd/system/multi-user.target.wants/trapstream.service" ] || die "$suite: enable failed"
    $in_root dpkg --purge trapstream </dev/null
    [ ! -e "$root/etc/trapstream" ] || die "$suite: purge left /etc/trapstream"
    [ ! -e "$root/etc/systemd/system/multi-user.target.wants/trapstream.service" ] \
        || die "$suite: purge left the enablement symlink"

    $in_root dpkg -i "/tmp/$(basename "$deb_up")" </dev/null
    umount_root "$root"
    test_service "$suite" "$root"
    rm -rf "$root"
    log "$suite: ok"
}

install_host_packages
# cargo deb deletes older versions from its output directory: keep copies.
deb=$(bash debian/build-deb.sh | tail -n 1)
cp "$deb" "$work/"
deb="$work/$(basename "$deb")"
deb_version=$(dpkg-deb -f "$deb" Version)
deb_up_version="$deb_version.1"
deb_up=$(bash debian/build-deb.sh --deb-version "$deb_up_version" | tail -n 1)
cp "$deb_up" "$work/"
deb_up="$work/$(basename "$deb_up")"
dpkg --compare-versions "$deb_up_version" gt "$deb_version" || die "$deb_up_version is not higher than $deb_version"
log "packages: $deb ($(stat -c %s "$deb") bytes), $deb_up"

get_nspawn
make_hosts
for suite in "${SUITES[@]}"; do
    test_suite "$suite"
done
log "all passed: ${SUITES[*]}"
