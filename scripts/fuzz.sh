#!/usr/bin/env bash
# Fuzzes the parsers and encoders briefly: every target in fuzz/ (cargo-fuzz, libFuzzer) for a
# bounded number of runs, starting from the committed corpus in fuzz/corpus/<target>. Fails on
# any crash: a panic, or a violated invariant (see src/fuzzing/).
#
#   bash scripts/fuzz.sh [RUNS_PER_TARGET]      # default 20000 runs per target
#
# Builds with AddressSanitizer, debug assertions and overflow checks, on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets it take the nightly flags cargo-fuzz passes). FUZZ_SANITIZER=none
# builds without a sanitizer, where ASan does not work. cargo-fuzz is installed into
# target/tools if it is not on PATH.
#
# Longer, by hand (new inputs go into fuzz/corpus/<target>; crashes into fuzz/artifacts/):
#
#   export PATH="$PWD/target/tools/bin:$PATH" RUSTC_BOOTSTRAP=1
#   cargo fuzz list
#   cargo fuzz run statsd_encode -- -max_total_time=600
#   cargo fuzz run statsd_encode fuzz/artifacts/statsd_encode/crash-...   # reproduce
#   cargo fuzz fmt statsd_encode fuzz/artifacts/statsd_encode/crash-...   # show the input
#
# Before committing new corpus files, keep it small (a few dozen files, well under 200 KB):
#
#   cargo fuzz cmin statsd_encode
#
# or, smaller still, a set cover over edges, keeping the largest files:
#
#   B=fuzz/target/x86_64-unknown-linux-gnu/release; mkdir /tmp/min
#   $B/statsd_encode -set_cover_merge=1 -use_counters=0 -use_value_profile=0 /tmp/min fuzz/corpus/statsd_encode
set -euo pipefail

cd "$(dirname "$0")/.."
runs="${1:-20000}"
sanitizer="${FUZZ_SANITIZER:-address}"
tools="$PWD/target/tools"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ ! -x "$tools/bin/cargo-fuzz" ]; then
        cargo install cargo-fuzz --locked --root "$tools"
    fi
    export PATH="$tools/bin:$PATH"
fi
export RUSTC_BOOTSTRAP=1

cargo fuzz build --sanitizer "$sanitizer"
for target in $(cargo fuzz list); do
    echo "=== fuzz $target: $runs runs"
    # New inputs go to a scratch directory: the committed corpus is only read.
    scratch="$(mktemp -d)"
    failed=0
    cargo fuzz run --sanitizer "$sanitizer" "$target" "$scratch" "fuzz/corpus/$target" -- \
        -runs="$runs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
        | grep -vE '^#[0-9]+' || failed=1
    rm -rf "$scratch"
    if [ "$failed" -ne 0 ]; then
        echo "fuzz $target: FAILED (the input is in fuzz/artifacts/$target)" >&2
        exit 1
    fi
done
echo "fuzz: all targets passed"
