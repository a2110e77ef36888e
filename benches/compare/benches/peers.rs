//! tracing-tally beside its peers, same run, same workloads (DESIGN.md §4, specs/peer-bench.md):
//! wall time per operation on the emitting thread, criterion.
//!
//! Groups, one function per peer (peers set up as `setup/mod.rs` describes):
//!
//! - `w1`: `info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64)`;
//!   the non-tracing peers make their own counter call with the same two tags (`atomic`: one
//!   `fetch_add`; `metrics-prom`: `counter!(..)` every call; `metrics-prom-handle`: a handle
//!   registered before the loop; cadence: `incr_with_tags(..)` with two tags). `sentry` records
//!   nothing here (an INFO event is below its error layer and not a span), it shows the cost of
//!   its filters.
//! - `w2`: `#[tracing::instrument] fn handler(id: u64)` with an empty body. The non-tracing peers
//!   time the same body with two `Instant::now()` and record the duration (`atomic`: two
//!   `fetch_add`, count and sum; `metrics-prom*`: a histogram with tag `span`; cadence:
//!   `time_with_tags` with tag `span`). `sentry-sampled` and `sentry-unsampled` are the Sentry set
//!   up at `traces_sample_rate` 1.0 and 0.0; `tally-traced` records every trace. Skipped:
//!   `otel-metrics`, whose `MetricsLayer` ignores spans (nothing to compare).
//! - `w3`: `error!(error = %e, "failed")` inside an entered `info_span!("request", route =
//!   "/api/users")`, the span entered outside the timed loop. To keep memory bounded (the
//!   OpenTelemetry layer keeps every event of an open span until it closes), a new span is
//!   entered for every 1,000 errors, untimed. Peers: those that capture errors (`otel-full`
//!   as a span event, `sentry`, every tally sink) and `registry`. Skipped: `atomic`, metrics,
//!   cadence and `otel-metrics`, which have no error capture.
//! - `w6`: `debug!(key = "v", "msg")`, which none of the peers records, beside a `fmt` layer
//!   (DEBUG, writing to `std::io::sink`): `fmt-only`, `fmt+tally` (tally-discard),
//!   `fmt+otel-metrics`, `fmt+sentry`; plus `registry` and `tally-discard` alone for scale.
//!   Skipped: the non-tracing peers (no `debug!` to skip) and the other tally sinks (an
//!   unrecorded event never reaches a sink).
//!
//! Every tracing peer is the thread's scoped default dispatcher while measured, and is dropped
//! (with its threads and clients) before the next one is built; `metrics-prom*` use
//! `metrics::with_local_recorder`, so nothing is global. Criterion: 1 s warm-up, 3 s
//! measurement, 30 samples (its command-line options override them).
//!
//! `cargo bench --manifest-path benches/compare/Cargo.toml --bench peers`, or
//! `bash scripts/compare.sh` for the medians of several runs in `benches/compare/results.md`.

// Benchmark set-up: a failure to build is a failed run.
#![allow(clippy::expect_used)]

#[path = "setup/mod.rs"]
mod setup;
#[path = "../../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use metrics_exporter_prometheus::PrometheusRecorder;
use tracing::{debug, error, info, info_span};

use setup::{Installed, Pipeline, ATOMIC, ATOMIC_SUM};

const W1: &[&str] = &[
    "atomic",
    "registry",
    "otel-metrics",
    "otel-full",
    "metrics-prom",
    "metrics-prom-handle",
    "cadence-nop",
    "cadence-queue-nop",
    "sentry",
    "tally-discard",
    "tally-jsonl",
    "tally-dogstatsd",
    "tally-sentry",
];
const W2: &[&str] = &[
    "atomic",
    "registry",
    "span-timer",
    "otel-full",
    "metrics-prom",
    "metrics-prom-handle",
    "cadence-nop",
    "cadence-queue-nop",
    "sentry-sampled",
    "sentry-unsampled",
    "tally-discard",
    "tally-traced",
    "tally-jsonl",
    "tally-dogstatsd",
    "tally-sentry",
];
const W3: &[&str] = &[
    "registry",
    "otel-full",
    "sentry",
    "tally-discard",
    "tally-jsonl",
    "tally-dogstatsd",
    "tally-sentry",
];
const W6: &[&str] =
    &["registry", "tally-discard", "fmt-only", "fmt+tally", "fmt+otel-metrics", "fmt+sentry"];

/// Errors per span in `w3`.
const ERRORS_PER_SPAN: u64 = 1_000;

fn w1_event() {
    info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64);
}

#[tracing::instrument]
fn handler(id: u64) {
    black_box(id);
}

/// The body of `handler`, for the peers timing it by hand.
#[inline(never)]
fn plain_handler(id: u64) {
    black_box(id);
}

/// Runs `plain_handler` between two clock reads; returns its duration.
fn timed() -> Duration {
    let start = Instant::now();
    plain_handler(7);
    start.elapsed()
}

fn w6_event() {
    debug!(key = "v", "msg");
}

/// Measures `f` with the Prometheus recorder installed for this thread only.
fn with_recorder<R>(recorder: &PrometheusRecorder, f: impl FnOnce() -> R) -> R {
    metrics::with_local_recorder(recorder, f)
}

fn bench_w1(group: &mut BenchmarkGroup<'_, WallTime>, peer: &str, installed: &Installed) {
    match &installed.pipeline {
        Pipeline::Tracing(dispatch) => group.bench_function(peer, |b| {
            tracing::dispatcher::with_default(dispatch, || b.iter(w1_event));
        }),
        Pipeline::Atomic => {
            group.bench_function(peer, |b| b.iter(|| ATOMIC.fetch_add(1, Ordering::Relaxed)))
        }
        Pipeline::Prometheus { recorder, pre_registered: true, .. } => {
            let counter = with_recorder(
                recorder,
                || metrics::counter!("requests", "route" => "/api/users", "status" => "200"),
            );
            group.bench_function(peer, |b| b.iter(|| counter.increment(1)))
        }
        Pipeline::Prometheus { recorder, .. } => group.bench_function(peer, |b| {
            with_recorder(recorder, || {
                b.iter(|| {
                    metrics::counter!("requests", "route" => "/api/users", "status" => "200")
                        .increment(1);
                });
            });
        }),
        Pipeline::Cadence(client) => group.bench_function(peer, |b| {
            use cadence::prelude::*;
            b.iter(|| {
                client
                    .incr_with_tags("requests")
                    .with_tag("route", "/api/users")
                    .with_tag("status", "200")
                    .send();
            });
        }),
    };
}

fn bench_w2(group: &mut BenchmarkGroup<'_, WallTime>, peer: &str, installed: &Installed) {
    match &installed.pipeline {
        Pipeline::Tracing(dispatch) => group.bench_function(peer, |b| {
            tracing::dispatcher::with_default(dispatch, || b.iter(|| handler(7)));
        }),
        Pipeline::Atomic => group.bench_function(peer, |b| {
            b.iter(|| {
                let nanos = timed().as_nanos() as u64;
                ATOMIC.fetch_add(1, Ordering::Relaxed);
                ATOMIC_SUM.fetch_add(nanos, Ordering::Relaxed);
            });
        }),
        Pipeline::Prometheus { recorder, pre_registered: true, .. } => {
            let histogram =
                with_recorder(recorder, || metrics::histogram!("handler", "span" => "handler"));
            group.bench_function(peer, |b| b.iter(|| histogram.record(timed().as_secs_f64())))
        }
        Pipeline::Prometheus { recorder, .. } => group.bench_function(peer, |b| {
            with_recorder(recorder, || {
                b.iter(|| {
                    let seconds = timed().as_secs_f64();
                    metrics::histogram!("handler", "span" => "handler").record(seconds);
                });
            });
        }),
        Pipeline::Cadence(client) => group.bench_function(peer, |b| {
            use cadence::prelude::*;
            b.iter(|| client.time_with_tags("handler", timed()).with_tag("span", "handler").send());
        }),
    };
}

fn bench_w3(group: &mut BenchmarkGroup<'_, WallTime>, peer: &str, installed: &Installed) {
    let Pipeline::Tracing(dispatch) = &installed.pipeline else { return };
    let e = std::io::Error::other("connection reset");
    group.bench_function(peer, |b| {
        tracing::dispatcher::with_default(dispatch, || {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(ERRORS_PER_SPAN);
                    let span = info_span!("request", route = "/api/users");
                    let entered = span.enter();
                    let start = Instant::now();
                    for _ in 0..n {
                        error!(error = %e, "failed");
                    }
                    measured += start.elapsed();
                    drop(entered);
                    drop(span);
                    left -= n;
                }
                measured
            });
        });
    });
}

fn bench_w6(group: &mut BenchmarkGroup<'_, WallTime>, peer: &str, installed: &Installed) {
    let Pipeline::Tracing(dispatch) = &installed.pipeline else { return };
    group.bench_function(peer, |b| {
        tracing::dispatcher::with_default(dispatch, || b.iter(w6_event));
    });
}

type Bench = fn(&mut BenchmarkGroup<'_, WallTime>, &str, &Installed);

fn run_group(c: &mut Criterion, name: &str, peers: &[&str], bench: Bench) {
    let mut group = c.benchmark_group(name);
    for &peer in peers {
        // One peer at a time: the previous one was dropped at the end of the last iteration.
        let installed = Installed::new(peer).expect("a known peer");
        bench(&mut group, peer, &installed);
        drop(installed);
    }
    group.finish();
}

fn peers(c: &mut Criterion) {
    run_group(c, "w1", W1, bench_w1);
    run_group(c, "w2", W2, bench_w2);
    run_group(c, "w3", W3, bench_w3);
    run_group(c, "w6", W6, bench_w6);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = peers
}
criterion_main!(benches);
