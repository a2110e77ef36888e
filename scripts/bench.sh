#!/usr/bin/env bash
# Runs the criterion benchmarks RUNS times (default 3) and prints, per benchmark, the median of
# the runs' medians, in ns. Usage: [BENCHES="layer capture"] bash scripts/bench.sh [RUNS] [FILTER]
#
# Compare with the last recorded numbers in BENCHMARKS.md (same machine kind: ratios to the
# `registry` rows are what carries over between machines).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
filter="${2:-}"
out="$(mktemp -d)"
for run in $(seq 1 "$runs"); do
  rm -rf target/criterion
  for bench in ${BENCHES:-layer capture}; do
    cargo bench --bench "$bench" -- ${filter:+"$filter"} >/dev/null 2>&1
  done
  for f in target/criterion/*/*/new/estimates.json; do
    bench="$(echo "$f" | awk -F/ '{print $3 "/" $4}')"
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
