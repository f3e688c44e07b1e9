#!/usr/bin/env bash
# Builds the Debian package: a binary that runs on Debian 11 and 12 (glibc
# 2.31 symbols at most, libelf and zlib linked in), the man page and shell
# completions from the clap definition, then `cargo deb`.
#
#   bash debian/build-deb.sh [cargo-deb options, e.g. --deb-version 0.1.0-2]
#
# Prints the path of the .deb on its last line. Run as root on Debian 12 (it
# installs what it needs). The README ("Installing on a switch") explains the choices.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Pinned so that a rebuild links against the same glibc stubs.
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
CARGO_DEB_VERSION=3.8.0
GLIBC_FLOOR=2.31
TRIPLE=x86_64-unknown-linux-gnu

log() { echo "build-deb: $*" >&2; }
die() { log "$*"; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
tools="$target_dir/deb-tools"

install_tools() {
    # The BPF build needs clang, libbpf's build needs make and a C compiler;
    # libelf.a and libz.a come from the -dev packages.
    local pkgs=(clang llvm pkg-config make gcc libelf-dev zlib1g-dev binutils python3 python3-venv)
    local missing=()
    for p in "${pkgs[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi

    if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
        log "installing cargo-deb $CARGO_DEB_VERSION"
        cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
    fi

    # zig (from PyPI) provides glibc stubs of any version: linking against
    # 2.31 makes the binary load on Debian 11 even though this host has 2.36.
    if [ "$("$tools/venv/bin/python3" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ] \
        || [ "$("$tools/venv/bin/cargo-zigbuild" --version 2>/dev/null | awk '{print $2}')" != "$CARGO_ZIGBUILD_VERSION" ]; then
        log "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $tools/venv"
        rm -rf "$tools/venv"
        python3 -m venv "$tools/venv"
        "$tools/venv/bin/pip" install -q "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
    fi
}

# libbpf-sys's `static` feature links libelf.a and libz.a but only searches
# its own OUT_DIR and LIBBPF_SYS_LIBRARY_PATH. zig cross-compiles with its own
# glibc headers, so it must not see /usr/include or /usr/lib wholesale: give it
# directories that hold only libelf's and zlib's files.
stage_static_deps() {
    local multiarch
    multiarch=$(gcc -print-multiarch)
    rm -rf "$tools/static"
    mkdir -p "$tools/static/lib" "$tools/static/include"
    for f in libelf.a libz.a; do
        [ -f "/usr/lib/$multiarch/$f" ] || die "/usr/lib/$multiarch/$f missing (libelf-dev, zlib1g-dev)"
        ln -s "/usr/lib/$multiarch/$f" "$tools/static/lib/$f"
    done
    for f in libelf.h gelf.h zlib.h zconf.h; do
        [ -f "/usr/include/$f" ] || die "/usr/include/$f missing (libelf-dev, zlib1g-dev)"
        ln -s "/usr/include/$f" "$tools/static/include/$f"
    done
}

build() {
    export PATH="$tools/venv/bin:$PATH"
    export "LIBBPF_SYS_LIBRARY_PATH_${TRIPLE//-/_}=$tools/static/lib"
    export LIBBPF_SYS_EXTRA_CFLAGS="-I$tools/static/include"
    log "building $TRIPLE.$GLIBC_FLOOR (static libelf, zlib)"
    cargo zigbuild --release --locked --target "$TRIPLE.$GLIBC_FLOOR" \
        --features libbpf-rs/static --bin trapstream --example gen-assets
}

check_portable() {
    local bin=$1 needed newest
    needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    log "NEEDED: $needed"
    case " $needed " in
        *libelf*|*libz.so*) die "$bin links libelf or zlib dynamically" ;;
    esac
    newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    log "newest glibc symbol version: $newest"
    [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_FLOOR" | sort -V | tail -n 1)" = "$GLIBC_FLOOR" ] \
        || die "$bin needs GLIBC_$newest, newer than $GLIBC_FLOOR (Debian 11)"
}

install_tools
stage_static_deps
build
out="$target_dir/$TRIPLE/release"
check_portable "$out/trapstream"

rm -rf debian/generated
"$out/examples/gen-assets" debian/generated >&2

mkdir -p "$target_dir/debian"
deb=$(cargo deb --no-build --target "$TRIPLE" --output "$target_dir/debian/" "$@" | tail -n 1)
[ -f "$deb" ] || die "cargo deb did not report a package (got '$deb')"
log "built $deb ($(stat -c %s "$deb") bytes)"
echo "$deb"
