#!/usr/bin/env bash
# Runs one fuzz target for a while, on one core:
#
#   tools/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   tools/fuzz.sh list
#
# Targets live in fuzz/ (its own cargo workspace); see docs/reliability.md, "Fuzzing".
# cargo-fuzz needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
# Builds are optimized, with debug assertions (overflow checks) and without a sanitizer (the
# code fuzzed has no unsafe code of its own; a sanitizer halves the executions).
#
# The committed seeds (fuzz/corpus/TARGET) are read; new inputs go to a work corpus
# ($FUZZ_WORK/TARGET, default target/fuzz-work/TARGET), so the committed corpus only changes by
# hand (cargo fuzz cmin, see the docs). Crashes are written to fuzz/artifacts/TARGET/.
# Environment: FUZZ_TARGET_DIR (cargo target directory, default target/fuzz), FUZZ_WORK.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ ${1:-} == list ]]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz list
    exit 0
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer options...] | $0 list" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
work=${FUZZ_WORK:-$root/target/fuzz-work}/$target
mkdir -p "$work" "fuzz/corpus/$target" "fuzz/artifacts/$target"

RUSTC_BOOTSTRAP=1 cargo fuzz build -O -a -s none --target-dir "$target_dir" "$target"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin="$target_dir/$triple/release/$target"

# One process, one core; inputs up to 64 KiB (16 MiB bodies are refused by size, not content);
# a 10 s timeout per input catches hangs; -rss_limit_mb catches runaway memory.
exec "$bin" \
    -max_total_time="$seconds" \
    -max_len=65536 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" \
    "$@" \
    "$work" "fuzz/corpus/$target"
