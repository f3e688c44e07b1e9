#!/usr/bin/env bash
# Build (or fetch from cache) a small x86_64 test kernel with netdevsim, devlink,
# BTF and BPF tracing, for trapstream's QEMU tests.
#
#   tests/vm/build-kernel.sh VERSION
#        VERSION: 5.10 | 6.1 | 6.12 | 6.1-wjh | 6.12-wjh
#
# Source: Debian's linux-source-VERSION package (bullseye / bookworm / trixie),
# fetched with `apt-get download` through a private apt sources list and state
# directory under the cache (nothing is installed from those suites).
# Config: tinyconfig + tests/vm/kernel.fragment + olddefconfig.
# Built in: tests/vm/sdk_emu.c, the vendor-SDK trap report emulator
#   (drivers/net/sdk_emu.c in the tree).
# The -wjh variants: the same tree rebuilt with SONiC's extension of struct
#   devlink_trap_metadata (egress port and LAG, traffic class, occupancy,
#   latency, validity bits; ../shared/reference/sdk-path.md), which sdk_emu
#   then fills. Building 6.1 or 6.12 builds its -wjh variant too, as an
#   incremental rebuild of the same tree (minutes, not a second full build).
# Output: ${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}/linux-VERSION-HASH/
#   bzImage, config, System.map, vmlinux.btf (raw .BTF, for `bpftool btf dump
#   file`), source-version, build.log; HASH covers this script, the fragment
#   and the emulator.
# The bzImage path is the last line on stdout; everything else goes to stderr.
# A cached bzImage is returned at once. Every failure exits non-zero with a
# message on stderr; nothing is skipped.
#
# Environment:
#   TRAPSTREAM_VM_CACHE       cache root (default /var/cache/trapstream-vm)
#   TRAPSTREAM_VM_KEEP_BUILD  1 = keep the built source tree (~1-2 GB) under
#                             CACHE/build/ instead of deleting it
#   TRAPSTREAM_VM_JOBS        make -j value (default: nproc)
set -euo pipefail

# The whole script is one function, parsed before it runs, and the call is on
# the same line as its exit: bash reads scripts as it goes, so without this an
# in-place edit during a build would change what the running build executes.
main() {
die() { printf 'build-kernel.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-kernel.sh: %s\n' "$*" >&2; }

[[ $# -eq 1 ]] || die "usage: $0 VERSION   (VERSION: 5.10 | 6.1 | 6.12 | 6.1-wjh | 6.12-wjh)"
REQUESTED=$1
VERSION=${REQUESTED%-wjh}
case "$REQUESTED" in
	5.10) SUITE=bullseye ;;
	6.1|6.1-wjh)  SUITE=bookworm ;;
	6.12|6.12-wjh) SUITE=trixie ;;
	*) die "unsupported VERSION '$REQUESTED' (want 5.10, 6.1, 6.12, 6.1-wjh or 6.12-wjh)" ;;
esac
# SONiC carries its extension on 6.1 and 6.12 only; 5.10 stands for Cumulus 5
# and older SONiC, which have none.
WJH=0
[[ $VERSION == 6.1 || $VERSION == 6.12 ]] && WJH=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENT=$HERE/kernel.fragment
EMULATOR=$HERE/sdk_emu.c
[[ -r $FRAGMENT ]] || die "missing $FRAGMENT"
[[ -r $EMULATOR ]] || die "missing $EMULATOR"
CACHE=${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}
HASH=$(cat "$FRAGMENT" "$EMULATOR" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
NAME=linux-$VERSION-$HASH
OUT=$CACHE/$NAME
OUT_WJH=$CACHE/linux-$VERSION-wjh-$HASH
WANT=$CACHE/linux-$REQUESTED-$HASH
JOBS=${TRAPSTREAM_VM_JOBS:-$(nproc)}

# The base and its variant come from one build: both must be there.
built() { [[ -s $OUT/bzImage ]] && { ((WJH == 0)) || [[ -s $OUT_WJH/bzImage ]]; }; }
if built; then
	log "cached: $WANT/bzImage"
	echo "$WANT/bzImage"
	exit 0
fi

mkdir -p "$CACHE" || die "cannot create cache directory $CACHE"

# One build per NAME at a time; a second caller waits, then finds the cache.
exec 9>"$CACHE/$NAME.lock" || die "cannot open lock file $CACHE/$NAME.lock"
flock 9 || die "cannot lock $CACHE/$NAME.lock"
if built; then
	log "cached (built by a concurrent run): $WANT/bzImage"
	echo "$WANT/bzImage"
	exit 0
fi

# ---------------------------------------------------------------- host deps
# Build deps for the kernel, plus what run-guest.sh needs, so one call
# prepares a machine. pahole (dwarves) is needed for DEBUG_INFO_BTF; bpftool
# checks the BTF here and is copied into the guest by run-guest.sh.
DEPS=(flex bison bc dwarves libssl-dev libelf-dev make gcc libc6-dev xz-utils
      cpio kmod python3 bpftool qemu-system-x86 busybox-static iproute2)
missing=()
for p in "${DEPS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $st == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "installing missing host packages: ${missing[*]}"
	command -v apt-get >/dev/null || die "apt-get not found; install: ${missing[*]}"
	[[ $(id -u) -eq 0 ]] || die "not root; cannot install: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for the dpkg lock (another build may be installing the same).
	local lockwait=(-o DPkg::Lock::Timeout=600)
	if ! apt-get "${lockwait[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
		log "apt-get install failed; running apt-get update and retrying"
		apt-get "${lockwait[@]}" update >&2 || die "apt-get update failed"
		apt-get "${lockwait[@]}" install -y --no-install-recommends "${missing[@]}" >&2 \
			|| die "apt-get install ${missing[*]} failed"
	fi
fi
command -v pahole >/dev/null || die "pahole not found (package dwarves); DEBUG_INFO_BTF needs it"

# ------------------------------------------------------------ kernel source
# Private apt configuration: only this suite, own lists and package cache, no
# translations or AppStream metadata. The system's apt state is not touched.
APTDIR=$CACHE/apt/$SUITE
SRCDIR=$CACHE/src
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$SRCDIR"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $KEYRING ]] || die "missing $KEYRING (package debian-archive-keyring)"
# The archive is the one this machine's apt already uses (no host fixed here).
MIRROR=$("$HERE/../../.ci/debian-mirror") || die "cannot tell this machine's Debian mirror"
printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" \
	> "$APTDIR/sources.list"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APTDIR/sources.list"
	-o "Dir::Etc::SourceParts=$APTDIR/no-sources.list.d"
	-o "Dir::State::Lists=$APTDIR/lists"
	-o "Dir::Cache=$APTDIR/cache"
	-o "Acquire::Languages=none"
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
	-o "APT::Sandbox::User=root"
)
mkdir -p "$APTDIR/no-sources.list.d"

PKG=linux-source-$VERSION
# A .deb that dpkg-deb cannot read (an interrupted download) is fetched again.
for d in "$SRCDIR/${PKG}_"*_all.deb; do
	[[ -e $d ]] || continue
	dpkg-deb -f "$d" Version >/dev/null 2>&1 || { log "removing unreadable $d"; rm -f "$d"; }
done
shopt -s nullglob
debs=("$SRCDIR/${PKG}_"*_all.deb)
shopt -u nullglob
if ((${#debs[@]} == 0)); then
	log "fetching $PKG from Debian $SUITE"
	apt-get "${APT_OPTS[@]}" update >&2 || die "apt-get update for $SUITE failed"
	(cd "$SRCDIR" && apt-get "${APT_OPTS[@]}" download "$PKG" >&2) \
		|| die "apt-get download $PKG ($SUITE) failed"
	shopt -s nullglob
	debs=("$SRCDIR/${PKG}_"*_all.deb)
	shopt -u nullglob
	((${#debs[@]})) || die "apt-get download $PKG left no .deb in $SRCDIR"
else
	log "using downloaded ${debs[-1]}"
fi
DEB=${debs[-1]}
SRCVER=$(dpkg-deb -f "$DEB" Version) || die "cannot read $DEB"

BUILD=$CACHE/build/$NAME
# Trees of this version with another hash (an older fragment or script, or a
# failed build) are never used again: remove those no build holds locked.
for d in "$CACHE/build/linux-$VERSION-"*; do
	[[ -d $d && $(basename "$d") != "$NAME" ]] || continue
	flock -n "$CACHE/$(basename "$d").lock" rm -rf "$d" || true
done
rm -rf "$BUILD"
mkdir -p "$BUILD"
# The .deb carries usr/src/linux-source-VERSION.tar.{xz,bz2,...}.
# awk reads its whole input (no early exit): under pipefail a reader that
# stops early can fail the pipeline through SIGPIPE, depending on timing.
tarball=$(dpkg-deb -c "$DEB" |
	awk -v pkg="$PKG" '$NF ~ ("^\\./usr/src/" pkg "\\.tar\\.[a-z0-9]+$") && !t {t = $NF} END {print t}')
[[ -n $tarball ]] || die "no source tarball inside $DEB"
log "unpacking $PKG $SRCVER ($tarball)"
inner=$BUILD/$(basename "$tarball")
dpkg-deb --fsys-tarfile "$DEB" | tar -xO "$tarball" > "$inner" \
	|| die "cannot extract $tarball from $DEB"
# GNU tar picks the decompressor from the file's magic (xz-utils for .xz).
tar -xf "$inner" -C "$BUILD" || die "cannot unpack $tarball (missing decompressor?)"
rm -f "$inner"
KSRC=$BUILD/$PKG
[[ -f $KSRC/Makefile ]] || die "unexpected tarball layout: no $KSRC/Makefile"

# The SDK emulator, built in (no module loading in the guest).
cp "$EMULATOR" "$KSRC/drivers/net/sdk_emu.c"
printf '\n# trapstream test kernel: vendor-SDK trap report emulator\nobj-y += sdk_emu.o\n' \
	>> "$KSRC/drivers/net/Makefile"

# ------------------------------------------------------------------ config
BUILDLOG=$BUILD/build.log
: > "$BUILDLOG"
run_logged() {
	# Runs "$@" in KSRC with output to BUILDLOG; on failure shows its tail.
	if ! (cd "$KSRC" && "$@") >>"$BUILDLOG" 2>&1; then
		tail -n 60 "$BUILDLOG" >&2
		die "'$*' failed for $PKG $SRCVER (full log: $BUILDLOG)"
	fi
}

# Make the build independent of the host's environment.
export KBUILD_BUILD_USER=trapstream KBUILD_BUILD_HOST=vm
unset ARCH CROSS_COMPILE KCFLAGS KCPPFLAGS

log "configuring: tinyconfig + $(basename "$FRAGMENT") + olddefconfig"
run_logged make ARCH=x86_64 tinyconfig
run_logged scripts/kconfig/merge_config.sh -m .config "$FRAGMENT"
run_logged make ARCH=x86_64 olddefconfig

# Options the harness and trapstream rely on. merge_config only warns when a
# requested value does not stick (a missing dependency, an option that does
# not exist in this version), so check the result here.
REQUIRED_Y=(
	NETDEVSIM NET_DEVLINK PSAMPLE
	BPF_SYSCALL BPF_JIT BPF_JIT_ALWAYS_ON BPF_EVENTS PERF_EVENTS TRACING TRACEPOINTS EVENT_TRACING
	DEBUG_INFO DEBUG_INFO_BTF DEBUG_FS
	NET INET IPV6 NET_NS VETH PACKET UNIX
	VIRTIO_PCI NET_9P NET_9P_VIRTIO 9P_FS HW_RANDOM_VIRTIO
	BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_8250_CONSOLE
	BINFMT_ELF BINFMT_SCRIPT PROC_FS SYSFS SMP FUTEX EPOLL KALLSYMS IKCONFIG_PROC
)
bad=()
for opt in "${REQUIRED_Y[@]}"; do
	grep -qx "CONFIG_$opt=y" "$KSRC/.config" || bad+=("CONFIG_$opt ($(grep -E "^(# )?CONFIG_$opt[= ]" "$KSRC/.config" || echo 'absent'))")
done
if ((${#bad[@]})); then
	grep -E 'warning:' "$BUILDLOG" | tail -n 40 >&2 || true
	printf '  not =y: %s\n' "${bad[@]}" >&2
	die "kernel $SRCVER: required options did not end up =y after olddefconfig (see merge_config warnings above)"
fi

# BTF and pahole. linux-source-5.10 (5.10.223) already carries
# scripts/pahole-flags.sh, which adds --skip_encoding_btf_enum64 for pahole
# >= 1.24 (bookworm has 1.24); without it 5.10 would reject its own
# vmlinux BTF at boot (BTF_KIND_ENUM64 is unknown before 6.0) and
# /sys/kernel/btf/vmlinux would be missing. Fail here rather than ship such a
# kernel if a source ever lacks that fix. 6.1 and 6.12 handle this themselves.
if [[ $VERSION == 5.10 ]]; then
	grep -q -- '--skip_encoding_btf_enum64' "$KSRC/scripts/pahole-flags.sh" 2>/dev/null \
		|| die "$PKG $SRCVER lacks the pahole >= 1.24 fix (--skip_encoding_btf_enum64 in scripts/pahole-flags.sh)"
fi
log "pahole $(pahole --version), gcc $(gcc -dumpfullversion)"

# ------------------------------------------------------------------- build
# The emulator first: a compile error in it shows in seconds, not after the
# whole kernel.
log "building $PKG $SRCVER: the SDK emulator, then bzImage with make -j$JOBS (log: $BUILDLOG)"
t0=$(date +%s)
run_logged make ARCH=x86_64 -j"$JOBS" drivers/net/sdk_emu.o
run_logged make ARCH=x86_64 -j"$JOBS" bzImage
t1=$(date +%s)
log "built in $((t1 - t0)) s"

# stage DEST SECONDS EXTRA_BTF_CHECK...: copy the built kernel to DEST, after
# checking its BTF holds what trapstream and the tests rely on.
stage() {
	local dest=$1 secs=$2 stage check
	shift 2
	local BZ=$KSRC/arch/x86/boot/bzImage
	[[ -s $BZ ]] || die "make succeeded but $BZ is missing"
	# The .BTF section must exist in vmlinux (whether the kernel accepts it
	# shows at boot: /sys/kernel/btf/vmlinux, checked by guest-smoke.sh).
	# Not `readelf | grep -q`: grep -q exits at the first match, readelf dies
	# of SIGPIPE and pipefail fails the check on a vmlinux that has the section.
	local sections
	sections=$(readelf -S "$KSRC/vmlinux") || die "readelf cannot read $KSRC/vmlinux"
	grep -q '\.BTF ' <<<"$sections" || die "vmlinux has no .BTF section"

	stage=$CACHE/.stage-$(basename "$dest")-$$
	rm -rf "$stage"
	mkdir -p "$stage"
	cp "$BZ" "$stage/bzImage"
	cp "$KSRC/.config" "$stage/config"
	cp "$KSRC/System.map" "$stage/System.map"
	objcopy -O binary --only-section=.BTF "$KSRC/vmlinux" "$stage/vmlinux.btf" \
		|| die "cannot extract .BTF from vmlinux"
	[[ -s $stage/vmlinux.btf ]] || die "extracted .BTF is empty"
	bpftool btf dump file "$stage/vmlinux.btf" > "$BUILD/btf.txt" \
		|| die "bpftool cannot parse the kernel's BTF ($stage/vmlinux.btf)"
	for check in "] STRUCT 'devlink_trap_metadata'" "] TYPEDEF 'btf_trace_devlink_trap_report'" \
		"] TYPEDEF 'btf_trace_kfree_skb'" "$@"; do
		grep -qF "$check" "$BUILD/btf.txt" || die "kernel BTF lacks $check"
	done
	# Kernels before 6.0 reject BTF that holds ENUM64 (see the pahole note above).
	if [[ $VERSION == 5.10 ]] && grep -q '^\[[0-9]*\] ENUM64 ' "$BUILD/btf.txt"; then
		die "pahole emitted BTF_KIND_ENUM64, which $VERSION rejects at boot"
	fi
	# The emulator is in: its bus and its report function.
	grep -q ' sdk_emu_init$' "$KSRC/System.map" || die "sdk_emu is not in the kernel"
	printf '%s %s\nbuilt %s in %s s with %s, %s, make -j%s\n' "$PKG" "$SRCVER" \
		"$(date -u +%FT%TZ)" "$secs" "gcc $(gcc -dumpfullversion)" \
		"pahole $(pahole --version)" "$JOBS" > "$stage/source-version"
	cp "$BUILDLOG" "$stage/build.log"
	rm -rf "$dest"
	mv "$stage" "$dest"
	log "done: $dest/bzImage ($(stat -c %s "$dest/bzImage") bytes)"
}
# Upstream layout: nothing after trap_type.
stage "$OUT" "$((t1 - t0))"

if ((WJH)); then
	# SONiC's fields after trap_type, in its order and types (sdk-path.md),
	# and the macro the SDK tests to fill them.
	H=$KSRC/include/net/devlink.h
	n=$(grep -c '^	enum devlink_trap_type trap_type;$' "$H" || true)
	[[ $n == 1 ]] || die "$H: expected one 'enum devlink_trap_type trap_type;' line, found $n"
	awk '
		/^struct devlink_trap_metadata \{$/ { print "#define SX_EXTEND_WJH_BUFFER_LINUX_CHANNEL" }
		{ print }
		/^\tenum devlink_trap_type trap_type;$/ {
			print "\t/* SONiC: WJH buffer linux channel (trapstream test kernel) */"
			print "\tstruct net_device *output_port_dev;"
			print "\tstruct net_device *output_lag_dev;"
			print "\tu16 out_tc;"
			print "\tu64 out_tc_occ;"
			print "\tu64 latency;"
			print "\tu8 out_tc_valid:1,"
			print "\t   out_tc_occ_valid:1,"
			print "\t   latency_valid:1,"
			print "\t   unused:5;"
		}' "$H" > "$H.wjh" && mv "$H.wjh" "$H" || die "cannot patch $H"
	grep -q '^#define SX_EXTEND_WJH_BUFFER_LINUX_CHANNEL$' "$H" || die "$H: no struct devlink_trap_metadata to extend"
	log "rebuilding $PKG $SRCVER with SONiC's extended trap metadata"
	t2=$(date +%s)
	run_logged make ARCH=x86_64 -j"$JOBS" bzImage
	t3=$(date +%s)
	log "rebuilt in $((t3 - t2)) s"
	stage "$OUT_WJH" "$((t3 - t2))" "'out_tc_valid' type_id=" "'output_lag_dev' type_id=" "'latency' type_id="
fi

if [[ ${TRAPSTREAM_VM_KEEP_BUILD:-0} != 1 ]]; then
	rm -rf "$BUILD"
fi
echo "$WANT/bzImage"
}

main "$@"; exit $?
