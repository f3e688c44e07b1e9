# Sourced by test-package.sh and test-package-arm64.sh: what every install of
# the package must leave in a root, whatever its suite or architecture. The
# caller defines log and die and has copied the .deb into ROOT/tmp.

# check_install ROOT LABEL DEB FORMAT WANT WORK: dpkg -i DEB in ROOT, whose
# dpkg-query FORMAT for the package must then read WANT; the files, the
# conffile, the service left disabled; a binary that loads with the root's
# libraries (libelf and zlib are linked in, so neither may appear) and lists
# --source in its --help. WORK holds the ldd and --help output.
check_install() {
    local root=$1 label=$2 deb=$3 format=$4 want=$5 work=$6
    local in_root="chroot $1" v f
    log "$label: dpkg -i $(basename "$deb")"
    $in_root dpkg -i "/tmp/$(basename "$deb")" </dev/null
    v=$($in_root dpkg-query -W -f="$format" trapstream)
    [ "$v" = "$want" ] || die "$label: installed state: $v"
    for f in /usr/bin/trapstream /etc/trapstream/trapstream.toml /lib/systemd/system/trapstream.service \
        /usr/share/man/man1/trapstream.1.gz /usr/share/bash-completion/completions/trapstream \
        /usr/share/zsh/vendor-completions/_trapstream /usr/share/fish/vendor_completions.d/trapstream.fish \
        /usr/share/doc/trapstream/copyright /usr/share/doc/trapstream/changelog.Debian.gz; do
        [ -e "$root$f" ] || die "$label: $f missing"
    done
    grep -q '^ /etc/trapstream/trapstream.toml ' <<<"$($in_root dpkg-query -W -f='${Conffiles}\n' trapstream)" \
        || die "$label: /etc/trapstream/trapstream.toml is not a conffile"
    [ ! -e "$root/etc/systemd/system/multi-user.target.wants/trapstream.service" ] \
        || die "$label: the service was enabled on install"

    log "$label: ldd /usr/bin/trapstream"
    $in_root ldd /usr/bin/trapstream | tee "$work/ldd" >&2
    ! grep -Eq 'not found|libelf|libz\.' "$work/ldd" || die "$label: unresolved or libelf/zlib libraries"
    $in_root trapstream --help >"$work/help" || die "$label: trapstream --help"
    grep -q -- '--source' "$work/help" || die "$label: --help does not list --source"
}
