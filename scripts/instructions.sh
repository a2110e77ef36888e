#!/usr/bin/env bash
# Counts instructions per operation of each hot path with callgrind (needs valgrind:
# `apt-get install valgrind`). Instruction counts do not depend on machine load, so this is the
# regression check to trust on a noisy machine. Usage: bash scripts/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
manifest=benches/compare/Cargo.toml
cargo bench --manifest-path "$manifest" --bench instructions --no-run >/dev/null 2>&1
bin="$(ls -t benches/compare/target/release/deps/instructions-* | grep -v '\.d$' | head -1)"
out="$(mktemp -d)"
count() {
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect='instructions::measured' \
    --callgrind-out-file="$out/cg" "$bin" "$1" "$2" "$n" 2>&1 \
    | awk -v n="$n" '/Collected/ {gsub(",", "", $4); printf "%.0f", $4 / n}'
}
printf '%-15s %10s %10s %10s %10s\n' workload registry tally added sentry
for w in w1 histogram gauge w2 w3 w6 root_unsampled root_sampled trace3_sampled; do
  floor="$(count "$w" registry)"
  tally="$(count "$w" tally)"
  case "$w" in
    w3 | root_* | trace3_*) sentry="$(count "$w" sentry)" ;;
    *) sentry="-" ;;
  esac
  printf '%-15s %10s %10s %10s %10s\n' "$w" "$floor" "$tally" "$((tally - floor))" "$sentry"
done
rm -rf "$out"
