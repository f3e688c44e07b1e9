#!/usr/bin/env bash
# Prepare (or fetch from cache) the arm64 userland that run-guest.sh packs
# into an arm64 guest's initramfs: Debian 12's busybox-static, bash,
# iproute2 (ip, tc, devlink), bpftool and socat with their libraries, the
# same tools the x86 guests take from this (Debian 12) host.
#
#   tests/vm/userland-arm64.sh      prints the root directory on its last line
#
# Only debootstrap's first (--foreign) stage runs, which downloads; every
# downloaded package is then unpacked with dpkg-deb -x. Nothing arm64 runs
# here, so no emulation is needed; the tree is a file source, not a system.
# Cached in ${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}/userland-arm64-HASH
# (HASH covers this script). About a minute cold.
set -euo pipefail

main() {
die() { printf 'userland-arm64.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'userland-arm64.sh: %s\n' "$*" >&2; }

SUITE=bookworm
PKGS=busybox-static,bash,iproute2,socat,bpftool
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}
HASH=$(sha256sum < "${BASH_SOURCE[0]}" | cut -c1-16)
OUT=$CACHE/userland-arm64-$HASH
if [[ -e $OUT/.complete ]]; then
	echo "$OUT"
	exit 0
fi
mkdir -p "$CACHE"
exec 9>"$OUT.lock" && flock 9 || die "cannot lock $OUT.lock"
if [[ -e $OUT/.complete ]]; then
	echo "$OUT"
	exit 0
fi
command -v debootstrap >/dev/null || {
	[[ $(id -u) -eq 0 ]] || die "debootstrap not found and not root"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 \
		|| die "apt-get install debootstrap failed"
}
MIRROR=$("$HERE/../../.ci/debian-mirror") || die "cannot tell this machine's Debian mirror"
TMP=$OUT.tmp
rm -rf "$TMP" "$OUT"
t0=$(date +%s)
log "debootstrap --foreign --arch=arm64 $SUITE (+ $PKGS)"
debootstrap --foreign --arch=arm64 --variant=minbase --include="$PKGS" "$SUITE" "$TMP" "$MIRROR" \
	> "$CACHE/userland-arm64.log" 2>&1 \
	|| { tail -n 20 "$CACHE/userland-arm64.log" >&2; die "debootstrap failed (log: $CACHE/userland-arm64.log)"; }
shopt -s nullglob
debs=("$TMP"/var/cache/apt/archives/*.deb)
shopt -u nullglob
((${#debs[@]})) || die "debootstrap left no packages in $TMP/var/cache/apt/archives"
for d in "${debs[@]}"; do
	dpkg-deb -x "$d" "$TMP" || die "cannot unpack $d"
done
rm -rf "$TMP"/var/cache/apt/archives/*.deb
for f in bin/busybox bin/bash bin/ip sbin/tc sbin/devlink usr/sbin/bpftool usr/bin/socat; do
	[[ -e $TMP/$f ]] || die "$f missing from the arm64 userland"
done
touch "$TMP/.complete"
mv "$TMP" "$OUT"
log "arm64 userland ready in $(($(date +%s) - t0)) s: $OUT"
echo "$OUT"
}

main "$@"; exit $?
