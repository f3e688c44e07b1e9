#!/usr/bin/env bash
# Boot a test kernel in QEMU (TCG), run one guest script in it, collect results.
#
#   tests/vm/run-guest.sh KERNEL_IMAGE OUTDIR GUEST_SCRIPT [TRAPSTREAM_BINARY]
#
# The guest is an initramfs: busybox-static, bash as /bin/sh, iproute2's devlink/ip/tc and
# bpftool with their shared libraries, optionally the
# trapstream binary (as /trapstream, with its libraries), and GUEST_SCRIPT as
# /test.sh. /init mounts proc, sysfs, devtmpfs, debugfs, tracefs, bpffs and
# tmpfs, brings lo up, mounts OUTDIR (shared over virtio-9p) on /results and
# runs `sh /test.sh` there with:
#   RESULTS=/results        write result files here; they appear in OUTDIR
#   TRAPSTREAM=/trapstream  set only when TRAPSTREAM_BINARY was given
#   TRAPSTREAM_GUEST_*      every host variable with this prefix, passed as is
# and then `reboot -f`.
#
# After the run OUTDIR holds:
#   status        test.sh's exit code (written by /init in the guest)
#   stdout stderr test.sh's output (also on the console as it happens)
#   console.log   the whole serial console (kernel log + everything above)
#   ...           whatever test.sh wrote to $RESULTS
#
# Exit code: 0 test.sh exited 0; 1 test.sh exited non-zero; 2 the harness or
# the VM failed (bad arguments, timeout, kernel panic, no status written).
# On 1 and 2 the tail of console.log goes to stderr.
#
# OUTDIR must be empty or absent, or a directory this script used before (it
# holds .trapstream-vm-outdir); such a directory is emptied first, so results
# of an earlier run can never be mistaken for this run's.
#
# Environment:
#   TRAPSTREAM_VM_CACHE    cache root, shared with build-kernel.sh; the base
#                          initramfs is cached in CACHE/initramfs/
#                          (default /var/cache/trapstream-vm)
#   TRAPSTREAM_VM_TIMEOUT  wall-clock limit for QEMU in seconds (default 300)
#   TRAPSTREAM_VM_SMP      guest CPUs (default 2)
#   TRAPSTREAM_VM_MEM      guest memory in MiB (default 1024)
#   TRAPSTREAM_VM_EXTRA_BINS  space-separated host executables to add to the
#                          guest's /usr/bin, with their libraries
#   TRAPSTREAM_VM_VERBOSE  1 = also stream the console to stderr while running
#   TRAPSTREAM_VM_APPEND   extra kernel command line (e.g. "quiet")
#   TRAPSTREAM_VM_ARCH     x86_64 (default) or arm64. arm64 boots KERNEL_IMAGE
#                          (an Image from build-kernel-arm64.sh) with
#                          qemu-system-aarch64 -M virt, and takes busybox,
#                          bash, iproute2, bpftool and every EXTRA_BINS name
#                          from the arm64 userland of userland-arm64.sh
#                          instead of the host; TRAPSTREAM_BINARY must then be
#                          an arm64 executable.
set -euo pipefail

# The whole script is one function, parsed before it runs, and the call is on
# the same line as its exit: bash reads scripts as it goes, so without this an
# in-place edit would change what a running instance executes.
main() {
die() { printf 'run-guest.sh: error: %s\n' "$*" >&2; exit 2; }
log() { printf 'run-guest.sh: %s\n' "$*" >&2; }

[[ $# -eq 3 || $# -eq 4 ]] || die "usage: $0 KERNEL_IMAGE OUTDIR GUEST_SCRIPT [TRAPSTREAM_BINARY]"
KERNEL=$1 OUTDIR=$2 SCRIPT=$3 TRAPSTREAM_BIN=${4:-}
[[ -s $KERNEL ]] || die "kernel image '$KERNEL' not found"
[[ -r $SCRIPT ]] || die "guest script '$SCRIPT' not found"
if [[ -n $TRAPSTREAM_BIN ]]; then
	[[ -x $TRAPSTREAM_BIN ]] || die "trapstream binary '$TRAPSTREAM_BIN' not found or not executable"
fi

CACHE=${TRAPSTREAM_VM_CACHE:-/var/cache/trapstream-vm}
ARCH=${TRAPSTREAM_VM_ARCH:-x86_64}
# UL: the root the guest's userland comes from ("" = this host).
UL=
case $ARCH in
	x86_64) QEMU_BIN=qemu-system-x86_64 LIBTOOL=ldd ;;
	arm64)
		QEMU_BIN=qemu-system-aarch64 LIBTOOL=readelf
		UL=$(bash "$(dirname "${BASH_SOURCE[0]}")/userland-arm64.sh" | tail -n 1) \
			|| die "cannot prepare the arm64 userland (tests/vm/userland-arm64.sh)"
		[[ -d $UL ]] || die "userland-arm64.sh printed '$UL', not a directory"
		;;
	*) die "TRAPSTREAM_VM_ARCH '$ARCH': want x86_64 or arm64" ;;
esac
TIMEOUT=${TRAPSTREAM_VM_TIMEOUT:-300}
SMP=${TRAPSTREAM_VM_SMP:-2}
MEM=${TRAPSTREAM_VM_MEM:-1024}
for tool in "$QEMU_BIN" cpio timeout "$LIBTOOL" sha256sum; do
	command -v "$tool" >/dev/null || die "'$tool' not found (tests/vm/build-kernel.sh installs the host packages)"
done
if [[ -z $UL ]]; then
BUSYBOX=$(command -v busybox || true)
[[ -n $BUSYBOX ]] || die "busybox not found (package busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked; install busybox-static"
fi
else
BUSYBOX=$UL/bin/busybox
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing from the arm64 userland"
grep -q '(NEEDED)' <<<"$(readelf -d "$BUSYBOX")" && die "$BUSYBOX is dynamically linked"
fi

# ------------------------------------------------------------------- OUTDIR
MARKER=.trapstream-vm-outdir
mkdir -p "$OUTDIR" || die "cannot create OUTDIR '$OUTDIR'"
OUTDIR=$(cd "$OUTDIR" && pwd)
if [[ -e $OUTDIR/$MARKER ]]; then
	find "$OUTDIR" -mindepth 1 -delete || die "cannot empty $OUTDIR"
elif [[ -n $(ls -A "$OUTDIR") ]]; then
	die "OUTDIR '$OUTDIR' is not empty and was not made by run-guest.sh; give an empty or new directory"
fi
: > "$OUTDIR/$MARKER"

# ------------------------------------------------------------------ helpers
# add_exe ROOT SRC DEST: copy executable SRC to ROOT/DEST plus every shared
# library ldd lists for it (and the dynamic loader) at the same paths.
add_exe() {
	local root=$1 src=$2 dest=$3 out lib
	mkdir -p "$root/$(dirname "$dest")"
	cp -L "$src" "$root/$dest" || die "cannot copy $src"
	chmod 755 "$root/$dest"
	if [[ -n $UL ]]; then
		while read -r lib; do
			mkdir -p "$root/$(dirname "$lib")"
			cp "$UL$(ul_resolve "$lib")" "$root/$lib" || die "cannot copy $UL$lib (needed by $src)"
		done < <(ul_libs "$src")
		return 0
	fi
	if ! out=$(ldd "$src" 2>&1); then
		# ldd fails on static executables ("not a dynamic executable").
		grep -q 'not a dynamic executable\|statically linked' <<<"$out" && return 0
		die "ldd $src failed: $out"
	fi
	grep -q 'not found' <<<"$out" && die "ldd $src: missing libraries: $(grep 'not found' <<<"$out")"
	while read -r lib; do
		[[ -n $lib ]] || continue
		mkdir -p "$root/$(dirname "$lib")"
		cp -L "$lib" "$root/$lib" || die "cannot copy $lib (needed by $src)"
	done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out")
}

# ul_resolve PATH: PATH (absolute, inside UL) with its symlinks followed
# inside UL; an absolute link target must not lead to the host's file.
ul_resolve() {
	local p=$1 n=0 t
	while [[ -L $UL$p ]]; do
		t=$(readlink "$UL$p")
		[[ $t == /* ]] || t=$(dirname "$p")/$t
		p=$t
		((++n < 20)) || die "symlink loop at $p in $UL"
	done
	[[ -e $UL$p ]] || return 1
	echo "$p"
}

# ul_libs EXE: the program interpreter and every shared library EXE needs,
# transitively, as paths inside the foreign userland UL (where ldd cannot
# run): readelf's NEEDED entries, looked up in the directories the target's
# loader searches.
ul_libs() {
	local todo=("$1") seen=" " f name dir found interp
	interp=$(readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	[[ -n $interp ]] || return 0
	ul_resolve "$interp" >/dev/null || die "$1: interpreter $interp missing from $UL"
	echo "$interp"
	while ((${#todo[@]})); do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		while read -r name; do
			[[ $seen == *" $name "* ]] && continue
			seen+="$name "
			found=
			for dir in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib /usr/lib; do
				if [[ -e $UL$dir/$name || -L $UL$dir/$name ]]; then found=$dir/$name; break; fi
			done
			[[ -n $found ]] || die "$1 needs $name, which $UL does not have"
			echo "$found"
			found=$(ul_resolve "$found") || die "$UL$found is a dangling link"
			todo+=("$UL$found")
		done < <(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	done
}

# Files listed for the base image, for its cache key.
base_inputs() {
	local b
	for b in "$BUSYBOX" "$BASH_BIN" "${BASE_EXES[@]}"; do
		echo "$b"
		if [[ -n $UL ]]; then
			ul_libs "$b" | sed "s|^|$UL|"
		else
			ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
		fi
	done | sort -u
}

mkcpio() { # mkcpio DIR FILE: uncompressed newc archive (fastest to unpack under TCG)
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$2" \
		|| die "cpio failed for $1"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trapstream-vm.XXXXXX")
QEMU_PID=
cleanup() {
	[[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# -------------------------------------------------------- base initramfs
# busybox, bash (as /bin/sh), iproute2 tools, bpftool, /init.
# Cached by content.
# ul_exe NAME: NAME's path in the foreign userland, an arm64 executable.
ul_exe() {
	local d p
	for d in /usr/sbin /sbin /usr/bin /bin; do
		p=$(ul_resolve "$d/$1") || continue
		[[ -f $UL$p && -x $UL$p ]] || continue
		[[ $(readelf -h "$UL$p" | sed -n 's/^ *Machine: *//p') == AArch64 ]] \
			|| die "$UL$p is not an arm64 executable"
		echo "$UL$p"
		return 0
	done
	return 1
}
BASE_EXES=()
if [[ -z $UL ]]; then
for b in devlink ip tc; do
	p=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v "$b" || true)
	[[ -n $p ]] || die "'$b' not found on the host (package iproute2)"
	BASE_EXES+=("$p")
done
BASH_BIN=$(command -v bash) || die "bash not found"
BPFTOOL=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v bpftool || true)
[[ -n $BPFTOOL ]] || die "'bpftool' not found on the host (package bpftool)"
BASE_EXES+=("$BPFTOOL")
else
for b in devlink ip tc bpftool; do
	p=$(ul_exe "$b") || die "'$b' not found in the arm64 userland $UL"
	BASE_EXES+=("$p")
done
BASH_BIN=$(ul_exe bash) || die "bash not found in the arm64 userland $UL"
fi

write_init() {
	cat > "$1" <<'INIT'
#!/bin/busybox sh
# trapstream test VM init (generated by tests/vm/run-guest.sh)
/bin/busybox mkdir -p /dev /proc /sys /tmp /run /results
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
# /bin/sh is bash: busybox's own shell runs its built-in applets (ip, tc, ...)
# in preference to PATH, bash finds iproute2's ip/tc in /usr/sbin first.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
[ -d /sys/kernel/tracing ] && mount -t tracefs tracefs /sys/kernel/tracing
[ -d /sys/fs/bpf ] && mount -t bpf bpf /sys/fs/bpf
ip link set lo up
hostname trapstream-vm
echo "=== trapstream-vm: $(uname -r) $(uname -v) cpus=$(grep -c ^processor /proc/cpuinfo)"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /results; then
	echo "=== trapstream-vm: cannot mount the 9p results share"
	reboot -f
fi
[ -f /etc/guest-env ] && . /etc/guest-env
export RESULTS=/results
[ -x /trapstream ] && export TRAPSTREAM=/trapstream
echo "=== trapstream-vm: running /test.sh"
# Output goes to the results files and, through tee, to the console.
mkfifo /tmp/out.fifo /tmp/err.fifo
tee /results/stdout </tmp/out.fifo &
tee_out=$!
tee /results/stderr </tmp/err.fifo >&2 &
tee_err=$!
(cd /results && exec /bin/sh /test.sh) >/tmp/out.fifo 2>/tmp/err.fifo </dev/null
rc=$?
# A background process test.sh left running may hold the fifos open: give the
# tees 5 s to drain, then stop them.
( sleep 5; kill $tee_out $tee_err 2>/dev/null ) &
wait $tee_out $tee_err
echo "$rc" > /results/status
sync
echo "=== trapstream-vm: test.sh exit status $rc"
umount /results
reboot -f
INIT
	chmod 755 "$1"
}

INIT_TMP=$WORK/init
write_init "$INIT_TMP"
BASE_KEY=$( {
	cat "$INIT_TMP" "${BASH_SOURCE[0]}" | sha256sum
	base_inputs | xargs sha256sum
} | sha256sum | cut -c1-16)
BASE_PREFIX=base-
[[ $ARCH == x86_64 ]] || BASE_PREFIX=base-$ARCH-
BASE_CPIO=$CACHE/initramfs/$BASE_PREFIX$BASE_KEY.cpio
if [[ ! -s $BASE_CPIO ]]; then
	log "building base initramfs $BASE_CPIO"
	mkdir -p "$CACHE/initramfs" || die "cannot create $CACHE/initramfs"
	R=$WORK/base
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,root,results}
	cp "$BUSYBOX" "$R/bin/busybox"
	add_exe "$R" "$BASH_BIN" /bin/bash
	ln -s bash "$R/bin/sh"
	cp "$INIT_TMP" "$R/init"
	for p in "${BASE_EXES[@]}"; do
		add_exe "$R" "$p" "/usr/sbin/$(basename "$p")"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
	printf 'root:x:0:\n' > "$R/etc/group"
	mkcpio "$R" "$WORK/base.cpio"
	mv "$WORK/base.cpio" "$BASE_CPIO"
	# Images for other inputs (an older script or host packages) are stale.
	# Each architecture replaces only its own.
	for f in "$CACHE/initramfs/$BASE_PREFIX"*.cpio; do
		[[ $f != "$BASE_CPIO" ]] || continue
		[[ $ARCH != x86_64 || $(basename "$f") != base-arm64-* ]] || continue
		find "$f" -mmin +10 -delete || true
	done
fi

# ----------------------------------------------------- per-run overlay
# Appended as a second cpio archive: the kernel unpacks both into rootfs.
O=$WORK/overlay
mkdir -p "$O/etc"
cp "$SCRIPT" "$O/test.sh"
chmod 755 "$O/test.sh"
if [[ -n $TRAPSTREAM_BIN ]]; then
	if [[ -n $UL ]]; then
		[[ $(readelf -h "$TRAPSTREAM_BIN" | sed -n 's/^ *Machine: *//p') == AArch64 ]] \
			|| die "$TRAPSTREAM_BIN is not an arm64 executable"
	fi
	add_exe "$O" "$TRAPSTREAM_BIN" /trapstream
fi
for b in ${TRAPSTREAM_VM_EXTRA_BINS:-}; do
	if [[ -n $UL ]]; then
		p=$(ul_exe "$(basename "$b")" || true)
	else
		p=$(command -v "$b" || true)
	fi
	[[ -n $p ]] || die "TRAPSTREAM_VM_EXTRA_BINS: '$b' not found"
	add_exe "$O" "$p" "/usr/bin/$(basename "$p")"
done
: > "$O/etc/guest-env"
while IFS='=' read -r name _; do
	[[ $name == TRAPSTREAM_GUEST_* ]] || continue
	printf 'export %s=%q\n' "$name" "${!name}" >> "$O/etc/guest-env"
done < <(env)
mkcpio "$O" "$WORK/overlay.cpio"
cat "$BASE_CPIO" "$WORK/overlay.cpio" > "$WORK/initrd.cpio"

# -------------------------------------------------------------------- boot
CONSOLE=$OUTDIR/console.log
if [[ $ARCH == arm64 ]]; then
QEMU=(qemu-system-aarch64
	# cortex-a72: ARMv8.0 like the switches' cores; -cpu max would add
	# pointer authentication, which TCG emulates slowly.
	-M virt -cpu cortex-a72 -accel tcg -m "$MEM" -smp "$SMP"
)
SERIAL=ttyAMA0
else
QEMU=(qemu-system-x86_64
	-accel tcg -m "$MEM"
	# One CPU per socket: with the default topology (cores) SeaBIOS's MP table,
	# which is all a kernel without ACPI sees, lists only the first CPU.
	-smp "$SMP,sockets=$SMP,cores=1,threads=1"
)
SERIAL=ttyS0
fi
QEMU+=(
	-nographic -no-reboot -nic none
	-kernel "$KERNEL" -initrd "$WORK/initrd.cpio"
	-append "console=$SERIAL panic=-1 oops=panic ${TRAPSTREAM_VM_APPEND:-}"
	-fsdev "local,id=results,path=$OUTDIR,security_model=none"
	-device virtio-9p-pci,fsdev=results,mount_tag=results
	-device virtio-rng-pci
)
log "booting $(basename "$KERNEL") ($KERNEL), smp=$SMP mem=${MEM}M timeout=${TIMEOUT}s"
t0=$(date +%s.%N)
set +e
if [[ ${TRAPSTREAM_VM_VERBOSE:-0} == 1 ]]; then
	timeout --kill-after=10 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 | tee "$CONSOLE" >&2
	qrc=${PIPESTATUS[0]}
else
	timeout --kill-after=10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$CONSOLE" 2>&1 &
	QEMU_PID=$!
	wait "$QEMU_PID"
	qrc=$?
	QEMU_PID=
fi
set -e
t1=$(date +%s.%N)
ELAPSED=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")

fail_vm() {
	log "console tail ($CONSOLE):"
	tail -n 60 "$CONSOLE" >&2 || true
	die "$*"
}
case $qrc in
	0) ;;
	124|137) fail_vm "guest did not finish within ${TIMEOUT}s (killed)" ;;
	*) fail_vm "qemu exited with status $qrc after ${ELAPSED}s" ;;
esac
grep -q 'Kernel panic' "$CONSOLE" && fail_vm "kernel panic in the guest after ${ELAPSED}s"
[[ -s $OUTDIR/status ]] || fail_vm "guest wrote no status after ${ELAPSED}s (crash, or the 9p share failed)"
STATUS=$(tr -d '[:space:]' < "$OUTDIR/status")
[[ $STATUS =~ ^[0-9]+$ ]] || fail_vm "guest status file holds '$STATUS'"
if [[ $STATUS != 0 ]]; then
	log "console tail ($CONSOLE):"
	tail -n 40 "$CONSOLE" >&2
	log "guest script $(basename "$SCRIPT") exited $STATUS (run took ${ELAPSED}s)"
	exit 1
fi
log "guest script $(basename "$SCRIPT") passed (run took ${ELAPSED}s)"
}

main "$@"; exit $?
