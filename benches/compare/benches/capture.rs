//! Span and error capture, tally beside sentry-tracing in the same run.
//!
//! Workloads: a root span alone, sampled and unsampled (tally: its timing metric, plus a
//! transaction when sampled); a root span with two children, sampled; an error event inside a
//! span. Costs are on the emitting thread, which is what the application pays: tally hands
//! finished transactions and errors to its flusher (exporting to a discarding sink here),
//! sentry-tracing builds its envelopes on the spot and gives them to a transport that discards.
//!
//! The Sentry set-up is the one its 0.49 docs recommend: `SpanLayer` (INFO) and `ErrorLayer`
//! (ERROR) on the registry, `sentry::init` with a DSN, once with the default integrations (what
//! users get) and once without them (`sentry_lean`).
//!
//! `cargo bench --manifest-path benches/compare/Cargo.toml --bench capture`; results are
//! summarized in BENCHMARKS.md.

// Benchmark set-up: a failure to build is a failed run.
#![allow(clippy::expect_used)]

#[path = "../../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::{error, info_span, Dispatch};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use support::Discard;
use tracing_tally::Tally;

/// Anything kept alive while a pipeline is measured.
type Keep = Box<dyn std::any::Any>;

fn registry() -> (Dispatch, Keep) {
    (Dispatch::new(tracing_subscriber::registry()), Box::new(()))
}

fn tally(sample_rate: f64) -> (Dispatch, Keep) {
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(Discard)
        .traces_sample_rate(sample_rate)
        .transaction_queue(1 << 16)
        .error_rate_limit(u32::MAX, u32::MAX)
        .error_queue(1 << 16)
        .rollup_interval(Duration::from_secs(1))
        .flush_interval(Duration::from_secs(1))
        .build()
        .expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(layer)), Box::new(guard))
}

/// A transport that drops every envelope (after touching it).
struct DiscardEnvelopes;

impl sentry::Transport for DiscardEnvelopes {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        black_box(&envelope);
    }
}

fn sentry(sample_rate: f32, default_integrations: bool) -> (Dispatch, Keep) {
    let options = sentry::ClientOptions::new()
        .dsn("https://public@o1.ingest.sentry.io/42")
        .traces_sample_rate(sample_rate)
        .default_integrations(default_integrations)
        .transport(Arc::new(DiscardEnvelopes));
    let guard = sentry::init(options);
    let subscriber = tracing_subscriber::registry()
        .with(sentry_tracing::SpanLayer::new().with_filter(LevelFilter::INFO))
        .with(sentry_tracing::ErrorLayer::new().with_filter(LevelFilter::ERROR));
    (Dispatch::new(subscriber), Box::new(guard))
}

fn root_span() {
    info_span!("request", route = "/api/users").in_scope(|| {});
}

fn trace_of_three() {
    info_span!("request", route = "/api/users").in_scope(|| {
        info_span!("db", table = "users").in_scope(|| {});
        info_span!("render").in_scope(|| {});
    });
}

type Setup = (&'static str, fn() -> (Dispatch, Keep));

fn group(c: &mut Criterion, name: &str, setups: &[Setup], f: fn()) {
    let mut group = c.benchmark_group(name);
    for (label, make) in setups {
        // One pipeline (and one Sentry client) at a time.
        let (dispatch, keep) = make();
        group.bench_function(*label, |b| {
            tracing::dispatcher::with_default(&dispatch, || b.iter(f));
        });
        drop(dispatch);
        drop(keep);
    }
    group.finish();
}

fn bench_spans(c: &mut Criterion) {
    let unsampled: &[Setup] =
        &[("registry", registry), ("tally", || tally(0.0)), ("sentry", || sentry(0.0, true))];
    group(c, "root_span_unsampled", unsampled, root_span);
    let sampled: &[Setup] = &[
        ("registry", registry),
        ("tally", || tally(1.0)),
        ("sentry", || sentry(1.0, true)),
        ("sentry_lean", || sentry(1.0, false)),
    ];
    group(c, "root_span_sampled", sampled, root_span);
    group(c, "trace_of_3_spans_sampled", sampled, trace_of_three);
}

fn bench_errors(c: &mut Criterion) {
    let setups: &[Setup] = &[
        ("tally", || tally(0.0)),
        ("sentry", || sentry(0.0, true)),
        ("sentry_lean", || sentry(0.0, false)),
    ];
    let mut group = c.benchmark_group("error_in_span");
    let e = std::io::Error::other("connection reset");
    for (label, make) in setups {
        let (dispatch, keep) = make();
        group.bench_function(*label, |b| {
            tracing::dispatcher::with_default(&dispatch, || {
                let span = info_span!("request", route = "/api/users");
                let _entered = span.enter();
                b.iter(|| error!(error = %e, "failed"));
            });
        });
        drop(dispatch);
        drop(keep);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = bench_spans, bench_errors
}
criterion_main!(benches);
