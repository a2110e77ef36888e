#!/usr/bin/env bash
# Runs every check and test of tracing-tally, as CI does. Usage: bash scripts/test.sh
#
# Needs a Rust toolchain (rustup, with rustfmt and clippy) on the PATH; everything else it needs
# it installs or builds itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a Rust toolchain (https://rustup.rs), then rerun" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "cargo $component not found: run 'rustup component add $component'" >&2
    exit 1
  fi
done

# Keep memory and time in check on small (2-core) machines.
export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL=0

step "format"
cargo fmt --all -- --check

step "clippy (all targets, all features)"
cargo clippy --all-targets --all-features -- -D warnings

step "peers (Python venv: sentry-sdk, Relay, datadog-api-client; npm: Etsy statsd)"
bash scripts/peers-setup.sh >/dev/null
bash scripts/statsd-setup.sh >/dev/null

step "tests, all features"
cargo test --all-features

step "fuzz (each target briefly, over the committed corpus)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
bash scripts/fuzz.sh 20000

step "tests, no features"
cargo test --no-default-features

step "docs (all features, and none)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "benchmarks build (the library's, and the comparison crate's with the peers)"
cargo bench --no-run
cargo fmt --manifest-path benches/compare/Cargo.toml -- --check
cargo clippy --manifest-path benches/compare/Cargo.toml --all-targets -- -D warnings
cargo bench --manifest-path benches/compare/Cargo.toml --no-run

step "reliability checks: the soak (exact counts, RSS within the series limits at 10^6 tags) and the hot path with every backend down (RELIABILITY.md)"
SOAK_CHECK=1 SOAK_SECS=8 cargo bench --bench soak
FAULTS_CHECK=1 cargo bench --all-features --bench faults

step "examples run"
QUICKSTART_SECONDS=1 TALLY_JSONL="$(mktemp)" cargo run --example quickstart >/dev/null

step "examples run: sentry, against a local receiver, every envelope checked by Sentry's code"
PY="$(bash scripts/peers-setup.sh | tail -n1)"
receiver_out="$(mktemp)"
"$PY" tools/peers/http_sink.py 0 >"$receiver_out" &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q LISTENING "$receiver_out" && break
  sleep 0.1
done
port="$(awk '/LISTENING/ { print $2 }' "$receiver_out")"
SENTRY_DSN="http://public@127.0.0.1:$port/42" cargo run --features sentry --example sentry >/dev/null
"$PY" tools/peers/check_received.py "$port" event transaction session trace_metric

step "examples run: dogstatsd, against the strict DogStatsD receiver"
dsd_dir="$(mktemp -d)"
"$PY" tools/peers/dogstatsd_sink.py "$dsd_dir/dsd.jsonl" --udp 0 >"$dsd_dir/out" &
dsd=$!
trap 'kill "$receiver" "$dsd" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q LISTENING "$dsd_dir/out" && break
  sleep 0.1
done
dsd_port="$(awk '/LISTENING udp/ { print $3 }' "$dsd_dir/out")"
DD_AGENT_HOST=127.0.0.1 DD_DOGSTATSD_PORT="$dsd_port" DD_ENV=ci \
  cargo run --features statsd --example dogstatsd >/dev/null
# What the example emits (50 requests on two routes, 7 of them failing), waited for by polling.
"$PY" tools/peers/dogstatsd_check.py "$dsd_dir/dsd.jsonl" --wait 10 --expect-none-bad --compact \
  --expect 'example.requests|c=50' --expect 'example.responses|c=50' \
  --expect 'example.payload_bytes|d=50' --expect 'example.span.duration|d=50' \
  --expect 'example.queue_depth|g=4' --expect 'example.active_users|s=13' \
  --expect 'example.tally.errors.captured|c=7' --expect-events 7 >/dev/null

step "examples run: datadog_http, against a local receiver, every payload checked with Datadog's API models"
"$PY" tools/peers/http_sink.py 0 >"$dsd_dir/http" &
dd=$!
trap 'kill "$receiver" "$dsd" "$dd" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q LISTENING "$dsd_dir/http" && break
  sleep 0.1
done
dd_port="$(awk '/LISTENING/ { print $2 }' "$dsd_dir/http")"
DD_API_KEY=0123456789abcdef0123456789abcdef DD_URL="http://127.0.0.1:$dd_port" \
  cargo run --features datadog --example datadog_http >/dev/null
"$PY" tools/peers/dd_check_received.py "$dd_port" v2-series v1-distribution v1-event --check-time

step "examples run: serverless"
cargo run --example serverless >/dev/null

printf '\nall checks passed\n'
