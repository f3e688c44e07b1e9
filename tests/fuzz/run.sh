#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60): installs cargo-fuzz if it is
# missing, builds, runs, and exits non-zero if any target found a crash.
#
#   bash tests/fuzz/run.sh 60
#
# The toolchain here is stable, and cargo-fuzz's instrumentation (AddressSanitizer,
# SanitizerCoverage) takes -Z flags: RUSTC_BOOTSTRAP=1 lets stable rustc accept
# them. Builds go to $CARGO_TARGET_DIR/fuzz when CARGO_TARGET_DIR is set (never
# into the main build's directories: other flags would rebuild everything),
# else to tests/fuzz/target. The working corpus lives next to the build and
# grows from run to run; seeds/ and regressions/ are read, never written.
# A crash input is kept in tests/fuzz/artifacts/TARGET/; copy a minimised one
# (cargo fuzz tmin) into regressions/TARGET/ so every later run replays it.
set -uo pipefail

seconds=${1:-60}
case $seconds in
    '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
target_dir=${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}
target_dir=${target_dir:-$fuzz_dir/target}
targets=(decode_event decode_flow packer config_file)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 1
fi

common=(--fuzz-dir "$fuzz_dir" --target-dir "$target_dir" --release --debug-assertions)
cargo fuzz build "${common[@]}" || exit 1

failed=()
for t in "${targets[@]}"; do
    corpus=$target_dir/corpus/$t
    mkdir -p "$corpus" "$fuzz_dir/artifacts/$t"
    inputs=("$corpus")
    for d in "$fuzz_dir/seeds/$t" "$fuzz_dir/regressions/$t"; do
        [ -d "$d" ] && inputs+=("$d")
    done
    flags=(-max_total_time="$seconds" -timeout=10 -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1)
    [ -f "$fuzz_dir/$t.dict" ] && flags+=(-dict="$fuzz_dir/$t.dict")
    echo "run.sh: fuzzing $t for ${seconds}s" >&2
    if ! cargo fuzz run "${common[@]}" "$t" "${inputs[@]}" -- "${flags[@]}"; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: crashes in: ${failed[*]} (inputs in $fuzz_dir/artifacts/)" >&2
    exit 1
fi
echo "run.sh: ${#targets[@]} targets, ${seconds}s each, no crash" >&2
