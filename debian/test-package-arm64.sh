#!/usr/bin/env bash
# Proves the arm64 package on this x86-64 host, in an arm64 Debian 11
# (bullseye) root run through qemu-user (binfmt_misc):
#   - dpkg -i installs it, with the files, the conffile and the unit, and
#     without enabling the service;
#   - the binary loads with the root's glibc 2.31 (ldd: no libelf/zlib, nothing
#     missing) and prints --version and --help;
#   - with no kernel BTF visible (the root has no /sys), it stops with the
#     one-line BTF error, not a crash;
#   - remove and purge leave nothing behind;
#   - dpkg refuses each package in the other architecture's Debian 11 root.
# Capturing needs the kernel's BPF, which qemu-user does not translate: the
# arm64 binary's captures are proven in an arm64 VM (tests/vm_arm64.rs).
#
#   bash debian/test-package-arm64.sh
#   bash debian/test-package-arm64.sh --prepare   only register binfmt and
#        debootstrap the arm64 root (emulated, the slow part when cold), so
#        .ci/run can do it in the background while it builds
#
# Run as root. Roots are cached in $TRAPSTREAM_ROOTS (default
# /var/cache/trapstream-debootstrap) as bullseye-arm64 (and bullseye, shared
# with test-package.sh) and copied for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

ROOTS=${TRAPSTREAM_ROOTS:-/var/cache/trapstream-debootstrap}
. debian/install-checks.sh

log() { echo "test-package-arm64: $*" >&2; }
die() { echo "test-package-arm64: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, binfmt_misc)"

work=$(mktemp -d /var/tmp/trapstream-test-package-arm64.XXXXXX)
mounted=()
cleanup() {
    local rc=$? i
    set +e
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}"; done
    if grep -q " $work" /proc/mounts; then
        echo "test-package-arm64: mounts remain under $work; not removing it" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# .ci/run may be installing packages in the background: wait for the lock.
lockwait=(-o DPkg::Lock::Timeout=600)
for p in debootstrap debian-archive-keyring qemu-user-static binutils; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] && continue
    log "installing $p"
    apt-get "${lockwait[@]}" install -y -qq --no-install-recommends "$p" >/dev/null \
        || { apt-get "${lockwait[@]}" update -qq && apt-get "${lockwait[@]}" install -y -qq --no-install-recommends "$p" >/dev/null; } \
        || die "apt-get install $p"
done

# arm64 executables run through qemu-aarch64-static. The F flag opens the
# interpreter once, at registration, so it also works inside chroots.
ensure_binfmt() {
    local bm=/proc/sys/fs/binfmt_misc
    [ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm" || die "cannot mount binfmt_misc"
    if [ ! -e "$bm/qemu-aarch64" ]; then
        log "registering qemu-aarch64 with binfmt_misc"
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$bm/register" || die "cannot register qemu-aarch64"
    fi
    grep -qx enabled "$bm/qemu-aarch64" || die "binfmt qemu-aarch64 is disabled"
    grep -q '^flags: .*F' "$bm/qemu-aarch64" || die "binfmt qemu-aarch64 lacks the F flag (chroots need it)"
}

# ensure_root DIR SUITE ARCH: a cached minbase root.
ensure_root() {
    local dir=$1 suite=$2 arch=$3 t0
    [ -x "$dir/usr/bin/dpkg" ] && return 0
    t0=$(date +%s)
    log "debootstrap --arch=$arch $suite from $(.ci/debian-mirror) into $dir"
    rm -rf "$dir.tmp"
    mkdir -p "$(dirname "$dir")"
    debootstrap --arch="$arch" --variant=minbase "$suite" "$dir.tmp" "$(.ci/debian-mirror)" \
        >"$work/debootstrap-$arch.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap-$arch.log" >&2; die "debootstrap $arch $suite"; }
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    log "debootstrap $arch $suite took $(($(date +%s) - t0)) s"
}

# copy_root CACHED NAME: a throwaway copy with /proc only (no /sys: no BTF),
# in $work/NAME. Not in a subshell: cleanup must see the mount.
copy_root() {
    cp -a "$1" "$work/$2"
    mount -t proc proc "$work/$2/proc"
    mounted+=("$work/$2/proc")
}

ensure_binfmt
if [ "${1:-}" = --prepare ]; then
    ensure_root "$ROOTS/bullseye-arm64" bullseye arm64
    exit 0
fi
# cargo deb deletes older versions from its output directory: keep copies.
deb=$(bash debian/build-deb.sh --arch arm64 | tail -n 1)
cp "$deb" "$work/" && deb="$work/$(basename "$deb")"
deb_version=$(dpkg-deb -f "$deb" Version)
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || die "$(basename "$deb"): Architecture is $(dpkg-deb -f "$deb" Architecture)"
log "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"

ensure_root "$ROOTS/bullseye-arm64" bullseye arm64
ensure_root "$ROOTS/bullseye" bullseye amd64
copy_root "$ROOTS/bullseye-arm64" arm64
root=$work/arm64
in_root="chroot $root"
cp "$deb" "$root/tmp/"

arch=$($in_root dpkg --print-architecture)
[ "$arch" = arm64 ] || die "the arm64 root's dpkg says $arch"
log "arm64 root: $($in_root uname -m), glibc $($in_root ldd --version | awk 'NR == 1 {print $NF}')"

check_install "$root" arm64 "$deb" '${Version} ${Architecture} ${Status}' "$deb_version arm64 install ok installed" "$work"
grep -q '^\.TH trapstream' <<<"$(zcat "$root/usr/share/man/man1/trapstream.1.gz")" || die "the man page has no .TH"
machine=$(readelf -h "$root/usr/bin/trapstream" | sed -n 's/^ *Machine: *//p')
[ "$machine" = AArch64 ] || die "/usr/bin/trapstream is for $machine"

version=$($in_root trapstream --version) || die "trapstream --version"
[ "$version" = "trapstream $(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')" ] \
    || die "--version printed '$version'"
log "arm64: $version"

log "arm64: no kernel BTF (no /sys in the root)"
[ ! -e "$root/sys/kernel/btf/vmlinux" ] || die "the root sees kernel BTF"
rc=0
$in_root trapstream --stdout --source skb >"$work/nobtf.out" 2>"$work/nobtf.err" </dev/null || rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$work/nobtf.err" >"$work/nobtf.txt"
log "arm64: exit $rc: $(cat "$work/nobtf.txt")"
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die "without BTF: exit status $rc"
[ "$(wc -l <"$work/nobtf.txt")" -eq 1 ] || die "without BTF: not one line: $(cat "$work/nobtf.txt")"
grep -q "kernel's BTF.*CONFIG_DEBUG_INFO_BTF" "$work/nobtf.txt" || die "without BTF: unexpected message"
[ ! -s "$work/nobtf.out" ] || die "without BTF: wrote to stdout"

log "arm64: remove, purge"
$in_root dpkg -r trapstream </dev/null
[ ! -e "$root/usr/bin/trapstream" ] || die "remove left /usr/bin/trapstream"
$in_root dpkg --purge trapstream </dev/null
[ ! -e "$root/etc/trapstream" ] || die "purge left /etc/trapstream"

# refuse ROOT DEB OTHER_ARCH ROOT_ARCH: dpkg must say why and install nothing.
refuse() {
    local r=$1 d=$2 pkg_arch=$3 sys_arch=$4 rc=0
    chroot "$r" dpkg -i "/tmp/$(basename "$d")" </dev/null >"$work/refuse.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || die "dpkg installed the $pkg_arch package on $sys_arch"
    grep -q "package architecture ($pkg_arch) does not match system ($sys_arch)" "$work/refuse.log" \
        || die "dpkg's refusal of $pkg_arch on $sys_arch: $(cat "$work/refuse.log")"
    ! chroot "$r" dpkg-query -W trapstream >/dev/null 2>&1 || die "$pkg_arch on $sys_arch: trapstream is known to dpkg"
    log "$sys_arch root refuses the $pkg_arch package: $(grep -m1 'does not match' "$work/refuse.log")"
}
# TRAPSTREAM_DEB_AMD64: an amd64 .deb already built (saves a rebuild by hand).
deb_amd64=${TRAPSTREAM_DEB_AMD64:-$(bash debian/build-deb.sh | tail -n 1)}
[ "$(dpkg-deb -f "$deb_amd64" Architecture)" = amd64 ] || die "$(basename "$deb_amd64"): Architecture is $(dpkg-deb -f "$deb_amd64" Architecture)"
cp "$deb_amd64" "$root/tmp/"
refuse "$root" "$deb_amd64" amd64 arm64
copy_root "$ROOTS/bullseye" amd64
root_amd64=$work/amd64
cp "$deb" "$root_amd64/tmp/"
refuse "$root_amd64" "$deb" arm64 amd64
log "all passed"
