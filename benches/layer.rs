//! The hot paths of tracing-tally alone, beside the tracing floor they run on.
//!
//! Workloads (DESIGN.md §4): W1 a counter event with two tags; W2 a span with one field (timing
//! recorded); W3 an error captured; W4 W1 on one and two threads; W6 an event the layer does not
//! record (alone, and with a `fmt` layer beside); plus a histogram event and a gauge event.
//! Every pipeline is installed as the scoped default of the benchmark thread (as the peers'
//! numbers in `specs/peer-bench.md` were measured), and exports to a sink that discards.
//!
//! `cargo bench --bench layer`; results are summarized in BENCHMARKS.md.

// Benchmark set-up: a failure to build is a failed run.
#![allow(clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::{debug, error, info, info_span, Dispatch};
use tracing_subscriber::prelude::*;

use support::Discard;
use tracing_tally::{FlushGuard, Tally};

fn tally_builder() -> tracing_tally::Builder {
    Tally::builder()
        .host(None)
        .sink(Discard)
        .rollup_interval(Duration::from_secs(1))
        .flush_interval(Duration::from_secs(1))
        .error_rate_limit(u32::MAX, u32::MAX)
        .error_queue(1 << 16)
}

fn tally() -> (Dispatch, FlushGuard) {
    let (layer, guard) = tally_builder().build().expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

fn registry() -> (Dispatch, ()) {
    (Dispatch::new(tracing_subscriber::registry()), ())
}

/// Another layer that wants every event but does almost nothing with it: what tally's filter
/// adds beside it is then measurable (a `fmt` layer's ~1 µs of formatting would hide it).
struct Beside;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Beside {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        black_box(event.metadata());
    }
}

fn beside() -> (Dispatch, ()) {
    (Dispatch::new(tracing_subscriber::registry().with(Beside)), ())
}

/// The floor of per-layer filtering: a do-nothing layer behind a `LevelFilter` that rejects the
/// event, beside `Beside`. Whatever a per-layer-filtered layer costs on an event it rejects
/// starts here.
fn beside_and_level_filtered() -> (Dispatch, ()) {
    let filtered = Beside.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    (Dispatch::new(tracing_subscriber::registry().with(Beside).with(filtered)), ())
}

fn beside_and_tally() -> (Dispatch, FlushGuard) {
    let (layer, guard) = tally_builder().build().expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(Beside).with(layer)), guard)
}

/// Benchmarks `f` under a dispatcher made by `make`. Only one dispatcher lives at a time, so
/// callsite interest is computed for it alone (as in an application).
fn run<G>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    make: impl FnOnce() -> (Dispatch, G),
    mut f: impl FnMut(),
) {
    let (dispatch, guard) = make();
    group.bench_function(name, |b| tracing::dispatcher::with_default(&dispatch, || b.iter(&mut f)));
    drop(dispatch);
    drop(guard);
}

fn w1_counter() {
    info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64);
}

fn histogram() {
    info!(histogram.latency = 1.5f64, route = "/api/users");
}

fn gauge() {
    info!(gauge.queue_depth = 7i64, worker = 3u64);
}

#[tracing::instrument]
fn w2_handler(id: u64) {
    black_box(id);
}

fn not_recorded() {
    debug!(key = "v", "msg");
}

fn bench_events(c: &mut Criterion) {
    for (name, f) in [
        ("w1_counter_2_tags", w1_counter as fn()),
        ("histogram_1_tag", histogram),
        ("gauge_1_tag", gauge),
    ] {
        let mut group = c.benchmark_group(name);
        run(&mut group, "registry", registry, f);
        run(&mut group, "tally", tally, f);
        group.finish();
    }
}

fn bench_spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("w2_instrument_span");
    run(&mut group, "registry", registry, || w2_handler(7));
    run(&mut group, "tally", tally, || w2_handler(7));
    group.finish();
}

fn bench_errors(c: &mut Criterion) {
    let mut group = c.benchmark_group("w3_error_captured");
    let e = std::io::Error::other("connection reset");
    let (dispatch, guard) = tally();
    group.bench_function("tally_in_span", |b| {
        tracing::dispatcher::with_default(&dispatch, || {
            let span = info_span!("request", route = "/api/users");
            let _entered = span.enter();
            b.iter(|| error!(error = %e, "failed"));
        })
    });
    group.finish();
    drop(dispatch);
    drop(guard);
}

fn bench_ignored_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("w6_event_not_recorded");
    run(&mut group, "registry", registry, not_recorded);
    run(&mut group, "tally", tally, not_recorded);
    run(&mut group, "other_layer", beside, not_recorded);
    run(&mut group, "other_layer_and_filtered_layer", beside_and_level_filtered, not_recorded);
    run(&mut group, "other_layer_and_tally", beside_and_tally, not_recorded);
    group.finish();
}

/// W4: the same counter event on one and on two threads; time per event per thread.
fn bench_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("w4_counter_threads");
    let (dispatch, guard) = tally();
    for threads in [1usize, 2] {
        group.bench_function(format!("tally_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let start = std::sync::Barrier::new(threads);
                std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let dispatch = dispatch.clone();
                            let start = &start;
                            scope.spawn(move || {
                                tracing::dispatcher::with_default(&dispatch, || {
                                    w1_counter(); // first sight of the series, off the clock
                                    start.wait();
                                    let began = Instant::now();
                                    for _ in 0..iters {
                                        w1_counter();
                                    }
                                    began.elapsed()
                                })
                            })
                        })
                        .collect();
                    // Wall time of the slowest thread: every thread did `iters` events.
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_default())
                        .max()
                        .unwrap_or_default()
                })
            })
        });
    }
    group.finish();
    drop(guard);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = bench_events, bench_spans, bench_errors, bench_ignored_events, bench_threads
}
criterion_main!(benches);
