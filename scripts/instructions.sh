#!/usr/bin/env bash
# Counts instructions per operation of each hot path with callgrind (needs valgrind:
# `apt-get install valgrind`). Instruction counts do not depend on machine load, so this is the
# regression check to trust on a noisy machine.
#
# Usage: bash scripts/instructions.sh [--record | --compare] [N]
#   (no flag)   print the table
#   --record    also write it to benches/instructions.baseline (the last recorded numbers)
#   --compare   print it beside benches/instructions.baseline; exit 1 when any tally figure grew
#               by more than 2% (and 10 instructions) over the baseline
set -euo pipefail
cd "$(dirname "$0")/.."
mode=print
case "${1:-}" in
  --record | --compare) mode="${1#--}"; shift ;;
esac
n="${1:-20000}"
baseline=benches/instructions.baseline
manifest=benches/compare/Cargo.toml
cargo bench --manifest-path "$manifest" --bench instructions --no-run >/dev/null 2>&1
target="${CARGO_TARGET_DIR:-benches/compare/target}"
bin="$(ls -t "$target"/release/deps/instructions-* | grep -v '\.d$' | head -1)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
count() {
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect='instructions::measured*' \
    --callgrind-out-file="$out/cg" "$bin" "$1" "$2" "$n" 2>&1 \
    | awk -v n="$n" '/Collected/ {gsub(",", "", $4); printf "%.0f", $4 / n}'
}
table="$out/table"
printf '%-15s %10s %10s %10s %10s %12s %12s %10s\n' workload registry tally added sentry otel-metrics metrics-prom span-timer >"$table"
for w in w1 histogram gauge w2 w3 w6 root_unsampled root_sampled trace3_sampled; do
  floor="$(count "$w" registry)"
  tally="$(count "$w" tally)"
  case "$w" in
    w3 | root_* | trace3_*) sentry="$(count "$w" sentry)" ;;
    *) sentry="-" ;;
  esac
  otel=- prom=- timer=-
  if [ "$w" = w1 ]; then
    otel="$(count w1 otel-metrics)"
    prom="$(count w1 metrics-prom)"
  fi
  if [ "$w" = w2 ]; then
    timer="$(count w2 span-timer)"
  fi
  printf '%-15s %10s %10s %10s %10s %12s %12s %10s\n' "$w" "$floor" "$tally" "$((tally - floor))" "$sentry" \
    "$otel" "$prom" "$timer" >>"$table"
done
case "$mode" in
  print) cat "$table" ;;
  record)
    cat "$table"
    {
      echo "# instructions per operation: bash scripts/instructions.sh --record $n"
      echo "# $(date -u +%Y-%m-%d), $(rustc -V)"
      cat "$table"
    } >"$baseline"
    echo "recorded in $baseline"
    ;;
  compare)
    python3 - "$table" "$baseline" <<'PY'
import sys

def rows(path):
    out = {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 5 and not line.startswith("#") and parts[0] != "workload":
            out[parts[0]] = int(parts[2])
    return out

now, before = rows(sys.argv[1]), rows(sys.argv[2])
print(f"{'workload':<15} {'baseline':>10} {'now':>10} {'change':>8}")
worse = []
for name, value in now.items():
    old = before.get(name)
    if old is None:
        print(f"{name:<15} {'-':>10} {value:>10} {'new':>8}")
        continue
    change = (value - old) / old * 100
    print(f"{name:<15} {old:>10} {value:>10} {change:>+7.1f}%")
    if value > old * 1.02 and value - old > 10:
        worse.append(name)
if worse:
    print("regressed (tally, > 2%): " + ", ".join(worse))
    sys.exit(1)
print("no regression against " + sys.argv[2])
PY
    ;;
esac
