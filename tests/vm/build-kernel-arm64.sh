#!/usr/bin/env bash
# Build (or fetch from cache) an arm64 test kernel with netdevsim, devlink,
# BTF and BPF tracing, cross-compiled on this x86-64 host, for the arm64
# QEMU tests (qemu-system-aarch64 -M virt, TCG).
#
#   tests/vm/build-kernel-arm64.sh VERSION      VERSION: 5.10 | 6.1 | 6.12
#
# The x86 kernels' recipe (build-kernel.sh), for ARCH=arm64 with Debian's
# gcc-aarch64-linux-gnu: the same linux-source-VERSION package (shared
# download under CACHE/src), tinyconfig + kernel.fragment +
# kernel-arm64.fragment + olddefconfig. No SDK emulator and no -wjh variant:
# the arm64 tests run the devlink scenarios (guest-devlink.sh) only.
# Output: ${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}/linux-arm64-VERSION-HASH/
#   Image, config, System.map, vmlinux.btf, source-version, build.log; HASH
#   covers this script and both fragments (not build-kernel.sh, so neither
#   script's edits rebuild the other's kernels).
# The Image path is the last line on stdout; everything else goes to stderr.
# A cached Image is returned at once; every failure exits non-zero.
#
# Environment: TRAPSTREAM_VM_CACHE, TRAPSTREAM_VM_KEEP_BUILD, TRAPSTREAM_VM_JOBS
# as for build-kernel.sh.
set -euo pipefail

# One function, parsed before it runs (see build-kernel.sh).
main() {
die() { printf 'build-kernel-arm64.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-kernel-arm64.sh: %s\n' "$*" >&2; }

[[ $# -eq 1 ]] || die "usage: $0 VERSION   (VERSION: 5.10 | 6.1 | 6.12)"
VERSION=$1
case "$VERSION" in
	5.10) SUITE=bullseye ;;
	6.1)  SUITE=bookworm ;;
	6.12) SUITE=trixie ;;
	*) die "unsupported VERSION '$VERSION' (want 5.10, 6.1 or 6.12)" ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENTS=("$HERE/kernel.fragment" "$HERE/kernel-arm64.fragment")
for f in "${FRAGMENTS[@]}"; do [[ -r $f ]] || die "missing $f"; done
CACHE=${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}
HASH=$(cat "${FRAGMENTS[@]}" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
NAME=linux-arm64-$VERSION-$HASH
OUT=$CACHE/$NAME
JOBS=${TRAPSTREAM_VM_JOBS:-$(nproc)}
CROSS=aarch64-linux-gnu-
KMAKE=(make ARCH=arm64 CROSS_COMPILE=$CROSS)

if [[ -s $OUT/Image ]]; then
	log "cached: $OUT/Image"
	echo "$OUT/Image"
	exit 0
fi
mkdir -p "$CACHE" || die "cannot create cache directory $CACHE"
exec 9>"$CACHE/$NAME.lock" || die "cannot open lock file $CACHE/$NAME.lock"
flock 9 || die "cannot lock $CACHE/$NAME.lock"
if [[ -s $OUT/Image ]]; then
	log "cached (built by a concurrent run): $OUT/Image"
	echo "$OUT/Image"
	exit 0
fi

# ---------------------------------------------------------------- host deps
# The cross compiler, and what run-guest-arm64.sh needs to boot the result.
DEPS=(flex bison bc dwarves libssl-dev libelf-dev make gcc gcc-aarch64-linux-gnu
      libc6-dev xz-utils cpio kmod python3 bpftool qemu-system-arm)
missing=()
for p in "${DEPS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $st == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "installing missing host packages: ${missing[*]}"
	[[ $(id -u) -eq 0 ]] || die "not root; cannot install: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	lockwait=(-o DPkg::Lock::Timeout=600)
	if ! apt-get "${lockwait[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
		apt-get "${lockwait[@]}" update >&2 || die "apt-get update failed"
		apt-get "${lockwait[@]}" install -y --no-install-recommends "${missing[@]}" >&2 \
			|| die "apt-get install ${missing[*]} failed"
	fi
fi
command -v pahole >/dev/null || die "pahole not found (package dwarves)"
command -v "${CROSS}gcc" >/dev/null || die "${CROSS}gcc not found (package gcc-aarch64-linux-gnu)"

# ------------------------------------------------------------ kernel source
# Same private apt state and download directory as build-kernel.sh, so a
# machine that built the x86 kernels does not download the source again.
APTDIR=$CACHE/apt/$SUITE
SRCDIR=$CACHE/src
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/no-sources.list.d" "$SRCDIR"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $KEYRING ]] || die "missing $KEYRING (package debian-archive-keyring)"
MIRROR=$("$HERE/../../.ci/debian-mirror") || die "cannot tell this machine's Debian mirror"
printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" > "$APTDIR/sources.list"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APTDIR/sources.list"
	-o "Dir::Etc::SourceParts=$APTDIR/no-sources.list.d"
	-o "Dir::State::Lists=$APTDIR/lists"
	-o "Dir::Cache=$APTDIR/cache"
	-o "Acquire::Languages=none"
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "APT::Sandbox::User=root"
)
PKG=linux-source-$VERSION
# Another builder may be downloading the same package: share its lock.
exec 8>"$SRCDIR/.$PKG.lock" && flock 8
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
	(cd "$SRCDIR" && apt-get "${APT_OPTS[@]}" download "$PKG" >&2) || die "apt-get download $PKG failed"
	shopt -s nullglob
	debs=("$SRCDIR/${PKG}_"*_all.deb)
	shopt -u nullglob
	((${#debs[@]})) || die "apt-get download $PKG left no .deb in $SRCDIR"
fi
exec 8>&-
DEB=${debs[-1]}
SRCVER=$(dpkg-deb -f "$DEB" Version) || die "cannot read $DEB"

BUILD=$CACHE/build/$NAME
for d in "$CACHE/build/linux-arm64-$VERSION-"*; do
	[[ -d $d && $(basename "$d") != "$NAME" ]] || continue
	flock -n "$CACHE/$(basename "$d").lock" rm -rf "$d" || true
done
rm -rf "$BUILD"
mkdir -p "$BUILD"
tarball=$(dpkg-deb -c "$DEB" |
	awk -v pkg="$PKG" '$NF ~ ("^\\./usr/src/" pkg "\\.tar\\.[a-z0-9]+$") && !t {t = $NF} END {print t}')
[[ -n $tarball ]] || die "no source tarball inside $DEB"
log "unpacking $PKG $SRCVER"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO "$tarball" | tar -xJf - -C "$BUILD" \
	|| die "cannot unpack $tarball from $DEB"
KSRC=$BUILD/$PKG
[[ -f $KSRC/Makefile ]] || die "unexpected tarball layout: no $KSRC/Makefile"

# ------------------------------------------------------------------ config
BUILDLOG=$BUILD/build.log
: > "$BUILDLOG"
run_logged() {
	if ! (cd "$KSRC" && "$@") >>"$BUILDLOG" 2>&1; then
		tail -n 60 "$BUILDLOG" >&2
		die "'$*' failed for $PKG $SRCVER (full log: $BUILDLOG)"
	fi
}
export KBUILD_BUILD_USER=trapstream KBUILD_BUILD_HOST=vm
unset ARCH CROSS_COMPILE KCFLAGS KCPPFLAGS

log "configuring: tinyconfig + kernel.fragment + kernel-arm64.fragment + olddefconfig"
run_logged "${KMAKE[@]}" tinyconfig
run_logged scripts/kconfig/merge_config.sh -m .config "${FRAGMENTS[@]}"
run_logged "${KMAKE[@]}" olddefconfig

REQUIRED_Y=(
	NETDEVSIM NET_DEVLINK PSAMPLE
	BPF_SYSCALL BPF_JIT BPF_JIT_ALWAYS_ON BPF_EVENTS PERF_EVENTS TRACING TRACEPOINTS EVENT_TRACING
	DEBUG_INFO DEBUG_INFO_BTF DEBUG_FS
	NET INET IPV6 NET_NS VETH PACKET UNIX
	VIRTIO_PCI NET_9P NET_9P_VIRTIO 9P_FS HW_RANDOM_VIRTIO
	BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_AMBA_PL011_CONSOLE PCI_HOST_GENERIC
	BINFMT_ELF BINFMT_SCRIPT PROC_FS SYSFS SMP FUTEX EPOLL KALLSYMS IKCONFIG_PROC
)
bad=()
for opt in "${REQUIRED_Y[@]}"; do
	grep -qx "CONFIG_$opt=y" "$KSRC/.config" || bad+=("CONFIG_$opt ($(grep -E "^(# )?CONFIG_$opt[= ]" "$KSRC/.config" || echo 'absent'))")
done
if ((${#bad[@]})); then
	grep -E 'warning:' "$BUILDLOG" | tail -n 40 >&2 || true
	printf '  not =y: %s\n' "${bad[@]}" >&2
	die "kernel $SRCVER: required options did not end up =y after olddefconfig"
fi
# pahole >= 1.24 and 5.10: see build-kernel.sh.
if [[ $VERSION == 5.10 ]]; then
	grep -q -- '--skip_encoding_btf_enum64' "$KSRC/scripts/pahole-flags.sh" 2>/dev/null \
		|| die "$PKG $SRCVER lacks the pahole >= 1.24 fix (--skip_encoding_btf_enum64)"
fi

# ------------------------------------------------------------------- build
log "building $PKG $SRCVER Image with ${CROSS}gcc $(${CROSS}gcc -dumpfullversion), make -j$JOBS (log: $BUILDLOG)"
t0=$(date +%s)
run_logged "${KMAKE[@]}" -j"$JOBS" Image
t1=$(date +%s)
log "built in $((t1 - t0)) s"

IMG=$KSRC/arch/arm64/boot/Image
[[ -s $IMG ]] || die "make succeeded but $IMG is missing"
sections=$(readelf -S "$KSRC/vmlinux") || die "readelf cannot read $KSRC/vmlinux"
grep -q '\.BTF ' <<<"$sections" || die "vmlinux has no .BTF section"
stage=$CACHE/.stage-$NAME-$$
rm -rf "$stage"
mkdir -p "$stage"
cp "$IMG" "$stage/Image"
cp "$KSRC/.config" "$stage/config"
cp "$KSRC/System.map" "$stage/System.map"
${CROSS}objcopy -O binary --only-section=.BTF "$KSRC/vmlinux" "$stage/vmlinux.btf" \
	|| die "cannot extract .BTF from vmlinux"
bpftool btf dump file "$stage/vmlinux.btf" > "$BUILD/btf.txt" \
	|| die "bpftool cannot parse the kernel's BTF"
for check in "] STRUCT 'devlink_trap_metadata'" "] TYPEDEF 'btf_trace_devlink_trap_report'" \
	"] TYPEDEF 'btf_trace_kfree_skb'" "] STRUCT 'user_pt_regs'"; do
	grep -qF "$check" "$BUILD/btf.txt" || die "kernel BTF lacks $check"
done
if [[ $VERSION == 5.10 ]] && grep -q '^\[[0-9]*\] ENUM64 ' "$BUILD/btf.txt"; then
	die "pahole emitted BTF_KIND_ENUM64, which $VERSION rejects at boot"
fi
printf '%s %s (arm64)\nbuilt %s in %s s with %s, %s, make -j%s\n' "$PKG" "$SRCVER" \
	"$(date -u +%FT%TZ)" "$((t1 - t0))" "${CROSS}gcc $(${CROSS}gcc -dumpfullversion)" \
	"pahole $(pahole --version)" "$JOBS" > "$stage/source-version"
cp "$BUILDLOG" "$stage/build.log"
rm -rf "$OUT"
mv "$stage" "$OUT"
log "done: $OUT/Image ($(stat -c %s "$OUT/Image") bytes)"

if [[ ${TRAPSTREAM_VM_KEEP_BUILD:-0} != 1 ]]; then
	rm -rf "$BUILD"
fi
echo "$OUT/Image"
}

main "$@"; exit $?
