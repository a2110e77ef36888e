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

step "peers (Python venv with sentry-sdk and Relay, for the Sentry tests)"
bash scripts/peers-setup.sh >/dev/null

step "tests, all features"
cargo test --all-features

step "tests, no features"
cargo test --no-default-features

step "docs (all features, and none)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "benchmarks build"
cargo bench --no-run

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

printf '\nall checks passed\n'
