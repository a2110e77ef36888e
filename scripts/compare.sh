#!/usr/bin/env bash
# tracing-tally beside its peers, same run (benches/compare: `peers` with criterion for W1, W2,
# W3, W6; `scale`, one process per peer, for W4 and W5). Runs everything RUNS times (default 3),
# takes the median over the runs of criterion's median and of each `scale` result, and writes
# benches/compare/results.md.
#
# Usage: bash scripts/compare.sh [RUNS]
#   RUNS=N      same as the argument
#   QUICK=1     a smoke run: criterion 0.2 s warm-up, 0.5 s measurement, 10 samples; W4 0.5 s
#               per point
#   W4_SECONDS  seconds per W4 point (default 2, QUICK 0.5)
# Needs cargo and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-${RUNS:-3}}"
manifest=benches/compare/Cargo.toml
criterion_dir=benches/compare/target/criterion
results=benches/compare/results.md
criterion_args=()
w4_seconds="${W4_SECONDS:-2}"
if [ "${QUICK:-0}" = 1 ]; then
  criterion_args=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
  w4_seconds="${W4_SECONDS:-0.5}"
fi
w4_peers="registry atomic otel-metrics metrics-prom metrics-prom-handle cadence-nop cadence-queue-nop tally-discard tally-dogstatsd"
w5_peers="registry otel-metrics otel-metrics-200k metrics-prom cadence-queue-nop tally-discard tally-200k"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "building benches/compare (peers, scale)" >&2
cargo bench --manifest-path "$manifest" --bench peers --bench scale --no-run \
  --message-format=json-render-diagnostics >"$out/build.json"
scale="$(python3 - "$out/build.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "scale" \
            and message.get("executable"):
        print(message["executable"])
PY
)"
[ -x "$scale" ] || { echo "cannot find the scale executable" >&2; exit 1; }

for run in $(seq 1 "$runs"); do
  rm -rf "$criterion_dir"/w1 "$criterion_dir"/w2 "$criterion_dir"/w3 "$criterion_dir"/w6
  echo "run $run of $runs: peers (criterion)" >&2
  if ! cargo bench --manifest-path "$manifest" --bench peers -- ${criterion_args[@]+"${criterion_args[@]}"} \
    >"$out/peers-$run.log" 2>&1; then
    tail -n 30 "$out/peers-$run.log" >&2
    exit 1
  fi
  python3 - "$criterion_dir" "$run" >>"$out/criterion.jsonl" <<'PY'
import glob, json, os, sys
root, run = sys.argv[1], int(sys.argv[2])
for group in ("w1", "w2", "w3", "w6"):
    for new in glob.glob(os.path.join(root, group, "*", "new")):
        try:
            bench = json.load(open(os.path.join(new, "benchmark.json")))
            estimates = json.load(open(os.path.join(new, "estimates.json")))
        except (OSError, ValueError):
            continue
        print(json.dumps({"run": run, "workload": bench["group_id"], "peer": bench["function_id"],
                          "ns": estimates["median"]["point_estimate"]}))
PY
  echo "run $run of $runs: scale (W4, W5)" >&2
  for peer in $w4_peers; do
    "$scale" w4 "$peer" "$w4_seconds" | sed "s/^/run=$run /" >>"$out/scale.txt" \
      || echo "scale w4 $peer failed" >&2
  done
  for peer in $w5_peers; do
    "$scale" w5 "$peer" | sed "s/^/run=$run /" >>"$out/scale.txt" || echo "scale w5 $peer failed" >&2
  done
done

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) CPUs)"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ]; then
  revision="$revision + uncommitted changes"
fi
python3 - "$out" "$results" "$runs" "${QUICK:-0}" "$w4_seconds" "$(rustc -V)" "$cpu" "$revision" \
  benches/compare/Cargo.lock <<'PY'
import datetime, json, os, re, statistics, sys

out, results, runs, quick, w4_seconds, rustc, cpu, revision, lock = sys.argv[1:10]
runs = int(runs)

# Medians of criterion's medians: {(workload, peer): [ns per run]}.
timings = {}
criterion = os.path.join(out, "criterion.jsonl")
if os.path.exists(criterion):
    for line in open(criterion):
        row = json.loads(line)
        timings.setdefault((row["workload"], row["peer"]), []).append(row["ns"])

# `scale` lines: {(workload, peer): [{key: value} per run]}.
scale = {}
scale_file = os.path.join(out, "scale.txt")
if os.path.exists(scale_file):
    for line in open(scale_file):
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        scale.setdefault((fields["workload"], fields["peer"]), []).append(fields)


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=None):
    if value is None:
        return "—"
    if digits is None:
        digits = 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return fmt(a / b, 2) if a is not None and b else "—"


def versions():
    found, name = {}, None
    for line in open(lock):
        m = re.match(r'name = "(.*)"', line)
        if m:
            name = m.group(1)
        m = re.match(r'version = "(.*)"', line)
        if m and name:
            found.setdefault(name, []).append(m.group(1))
            name = None
    return found


ORDER = {
    "w1": ["atomic", "registry", "otel-metrics", "otel-full", "metrics-prom", "metrics-prom-handle",
           "cadence-nop", "cadence-queue-nop", "sentry", "tally-discard", "tally-jsonl",
           "tally-dogstatsd", "tally-sentry"],
    "w2": ["atomic", "registry", "span-timer", "otel-full", "metrics-prom", "metrics-prom-handle", "cadence-nop",
           "cadence-queue-nop", "sentry-sampled", "sentry-unsampled", "tally-discard", "tally-traced",
           "tally-jsonl", "tally-dogstatsd", "tally-sentry"],
    "w3": ["registry", "otel-full", "sentry", "tally-discard", "tally-jsonl", "tally-dogstatsd",
           "tally-sentry"],
    "w6": ["registry", "tally-discard", "fmt-only", "fmt+tally", "fmt+otel-metrics", "fmt+sentry"],
}
TITLES = {
    "w1": "W1: `info!(monotonic_counter.requests = 1u64, route = \"/api/users\", status = 200u64)`",
    "w2": "W2: `#[instrument] fn handler(id: u64)`, empty body (non-tracing peers: manual `Instant` timing)",
    "w3": "W3: `error!(error = %e, \"failed\")` inside an entered `info_span!(\"request\")`",
    "w6": "W6: `debug!(key = \"v\", \"msg\")`, recorded by none of the peers, beside a `fmt` layer",
}


def peers_of(workload, known):
    order = ORDER.get(workload, [])
    extra = sorted(p for (w, p) in known if w == workload and p not in order)
    return [p for p in order if (workload, p) in known] + extra


lines = []
add = lines.append
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
add("# tracing-tally beside its peers, same run")
add("")
add(f"Generated by `scripts/compare.sh {runs}`{' with QUICK=1 (smoke run: short criterion times, not for quoting)' if quick == '1' else ''} on {now}.")
add("")
add(f"- {rustc}, `cargo bench` profile (release + debuginfo)")
add(f"- CPU: {cpu}; a shared VM, so wall times are noisy: compare ratios, not absolute numbers")
add(f"- tracing-tally at `{revision}`")
add(f"- Runs: {runs}. W1–W3, W6: criterion's median per run, then the median over runs. "
    f"W4, W5: one process per peer and run, median over runs of each figure. W4: {w4_seconds} s per point.")
add("- Set-ups: see the doc comments of `benches/compare/benches/setup/mod.rs` (peers), "
    "`peers.rs` (W1–W3, W6, scoped dispatch) and `scale.rs` (W4, W5, global dispatch); they follow "
    "`specs/peer-bench.md`.")
add("- `× registry`: median over the `registry` median of the same workload. `÷ tally`: the peer's "
    "median over tally-discard's (> 1: tally is faster).")
add("")
add("Versions (benches/compare/Cargo.lock):")
add("")
add("| crate | version |")
add("|---|---|")
known_versions = versions()
for crate in ["tracing", "tracing-core", "tracing-subscriber", "tracing-opentelemetry", "opentelemetry",
              "opentelemetry_sdk", "metrics", "metrics-util", "metrics-exporter-prometheus", "cadence",
              "crossbeam-channel", "sentry", "sentry-core", "sentry-tracing", "criterion",
              "tracing-tally"]:
    add(f"| {crate} | {', '.join(known_versions.get(crate, ['—']))} |")

for workload in ("w1", "w2", "w3", "w6"):
    add("")
    add(f"## {TITLES[workload]}")
    add("")
    add("| peer | runs (ns) | **median ns/op** | × registry | ÷ tally |")
    add("|---|---|---|---|---|")
    registry = median_of(timings.get((workload, "registry"), []))
    for peer in peers_of(workload, timings):
        values = timings[(workload, peer)]
        median = median_of(values)
        # W6: the fmt rows compare with tally beside the same fmt layer.
        reference = "fmt+tally" if workload == "w6" and peer.startswith("fmt") else "tally-discard"
        tally = median_of(timings.get((workload, reference), []))
        runs_text = " / ".join(fmt(v) for v in values)
        add(f"| {peer} | {runs_text} | **{fmt(median)}** | {ratio(median, registry)} | {ratio(median, tally)} |")
    if workload == "w3":
        add("")
        add("A new span is entered (untimed) every 1,000 errors: the OpenTelemetry layer keeps an open "
            "span's events until it closes.")
    if workload == "w6":
        add("")
        add("`÷ tally` of the `fmt` rows is over `fmt+tally` (tally beside the same `fmt` layer); "
            "`registry` and `tally-discard` are alone, without `fmt`.")

add("")
add("## W4: W1 on 1 thread, then on 2 threads at once (global dispatch)")
add("")
add("| peer | runs (2T/1T) | 1T ns/op | 2T ns/op per thread | **2T/1T throughput** | 1T × registry | 1T ÷ tally |")
add("|---|---|---|---|---|---|---|")
w4 = {p: rows for (w, p), rows in scale.items() if w == "w4"}
w4_median = {p: {k: median_of([number(r.get(k)) for r in rows]) for k in ("t1_ns", "t2_ns", "scaling")}
             for p, rows in w4.items()}
w4_order = ["registry", "atomic", "otel-metrics", "metrics-prom", "metrics-prom-handle", "cadence-nop",
            "cadence-queue-nop", "tally-discard", "tally-dogstatsd"]
registry_t1 = w4_median.get("registry", {}).get("t1_ns")
tally_t1 = w4_median.get("tally-discard", {}).get("t1_ns")
for peer in [p for p in w4_order if p in w4] + sorted(p for p in w4 if p not in w4_order):
    m = w4_median[peer]
    runs_text = " / ".join(fmt(number(r.get("scaling")), 2) for r in w4[peer])
    add(f"| {peer} | {runs_text} | {fmt(m['t1_ns'])} | {fmt(m['t2_ns'])} | **{fmt(m['scaling'], 2)}** | "
        f"{ratio(m['t1_ns'], registry_t1)} | {ratio(m['t1_ns'], tally_t1)} |")
add("")
add("2.0 is perfect scaling on 2 cores. Per-thread time is each thread's own time over its own "
    "operations; background threads (flushers, consumers, upkeep) compete for the same 2 cores.")

add("")
add("## W5: 100,000 distinct `route` values, each incremented once (global dispatch)")
add("")
add("| peer | runs (ns/op) | **ns/op** | ΔVmRSS MiB | ΔVmHWM MiB | series kept | **bytes/series** (ΔRSS) | overflowed (tally) | ÷ tally (ns/op) |")
add("|---|---|---|---|---|---|---|---|---|")
w5 = {p: rows for (w, p), rows in scale.items() if w == "w5"}
w5_order = ["registry", "otel-metrics", "otel-metrics-200k", "metrics-prom", "cadence-queue-nop",
            "tally-discard", "tally-200k"]
keys = ("ns_op", "rss_kib", "hwm_kib", "series", "bytes_per_series", "overflowed")
w5_median = {p: {k: median_of([number(r.get(k)) for r in rows]) for k in keys} for p, rows in w5.items()}
tally_ns = w5_median.get("tally-discard", {}).get("ns_op")
for peer in [p for p in w5_order if p in w5] + sorted(p for p in w5 if p not in w5_order):
    m = w5_median[peer]
    runs_text = " / ".join(fmt(number(r.get("ns_op"))) for r in w5[peer])
    mib = lambda kib: None if kib is None else kib / 1024
    bytes_text = fmt(m["bytes_per_series"], 0) if m["bytes_per_series"] is not None else "n/a (nothing kept)"
    overflowed = fmt(m["overflowed"], 0) if m["overflowed"] is not None else "n/a"
    add(f"| {peer} | {runs_text} | **{fmt(m['ns_op'])}** | {fmt(mib(m['rss_kib']), 1)} | "
        f"{fmt(mib(m['hwm_kib']), 1)} | {fmt(m['series'], 0)} | {bytes_text} | {overflowed} | "
        f"{ratio(m['ns_op'], tally_ns)} |")
add("")
add("Series kept: OpenTelemetry's collected data points (the overflow series included), the "
    "`requests` lines Prometheus renders, tally's `Stats::live_series` (overflow series excluded); "
    "one more than 100,000 for the warm-up route. Tally is flushed before its memory is read. "
    "Default limits: OpenTelemetry 2,000 series per instrument; tally 2,000 per metric and 50,000 "
    "in all (`tally-200k` and `otel-metrics-200k` raise them to 200,000). With few series kept, "
    "bytes/series is mostly fixed overhead (buffers, thread state), not a per-series cost.")

open(results, "w").write("\n".join(lines) + "\n")
print(f"wrote {results}", file=sys.stderr)
PY
