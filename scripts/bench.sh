#!/usr/bin/env bash
# Runs the criterion benchmarks RUNS times (default 3) and prints, per benchmark, the median of
# the runs' medians, in ns. Usage: [BENCHES="layer capture"] bash scripts/bench.sh [RUNS] [FILTER]
# `layer` is the library's own benchmark (tally beside the tracing floor); the others are in the
# comparison crate, benches/compare (tally beside its peers).
#
# Compare with the last recorded numbers in BENCHMARKS.md (same machine kind: ratios to the
# `registry` rows are what carries over between machines).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
filter="${2:-}"
out="$(mktemp -d)"
for run in $(seq 1 "$runs"); do
  rm -rf target/criterion benches/compare/target/criterion
  for bench in ${BENCHES:-layer capture}; do
    if [ "$bench" = layer ]; then
      cargo bench --bench layer -- ${filter:+"$filter"} >/dev/null 2>&1
    else
      cargo bench --manifest-path benches/compare/Cargo.toml --bench "$bench" -- ${filter:+"$filter"} >/dev/null 2>&1
    fi
  done
  for f in target/criterion/*/*/new/estimates.json benches/compare/target/criterion/*/*/new/estimates.json; do
    [ -f "$f" ] || continue
    bench="$(echo "$f" | awk -F/ '{print $(NF-3) "/" $(NF-2)}')"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$f" \
      >>"$out/$(echo "$bench" | tr / _)"
  done
  echo "run $run of $runs done" >&2
done
printf '%-58s %10s   %s\n' "benchmark" "median ns" "runs"
for f in "$out"/*; do
  name="$(basename "$f")"
  python3 - "$f" "$name" <<'PY'
import statistics, sys
values = [float(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{sys.argv[2]:<58} {statistics.median(values):10.1f}   " + " ".join(f"{v:.1f}" for v in values))
PY
done
rm -rf "$out"
