//! Instruction counts of the hot paths: stable across runs and machines of one architecture,
//! unlike wall time on a shared VM.
//!
//! Not a criterion benchmark: a program that runs one workload `N` times inside the function
//! `measured`, for `valgrind --tool=callgrind --toggle-collect=instructions::measured` to count.
//! `scripts/instructions.sh` runs every workload with and without tally and prints the table.
//!
//! Usage: `instructions WORKLOAD MODE [N]`, WORKLOAD one of `w1`, `histogram`, `gauge`, `w2`,
//! `w3`, `w6`, `root_unsampled`, `root_sampled`, `trace3_sampled`; MODE `registry` (the tracing
//! floor), `tally`, `sentry` (sentry-tracing's span and error layers, default integrations,
//! a transport that discards: the peer), or, for `w1`, `otel-metrics` (tracing-opentelemetry's
//! `MetricsLayer`) and `metrics-prom` (`metrics`' `counter!` into the Prometheus recorder), and,
//! for `w2`, `span-timer` (the least a per-layer-filtered layer can do to time a span), set up as
//! in `setup/mod.rs`.

// A command-line program: it reports usage errors on stderr.
#![allow(clippy::print_stderr)]

#[path = "setup/mod.rs"]
mod setup;
#[path = "../../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::process::ExitCode;

use tracing::{debug, error, info, info_span};
use tracing_subscriber::prelude::*;

use support::Discard;
use tracing_subscriber::filter::LevelFilter;
use tracing_tally::Tally;

/// The peer's transport: drops every envelope (after touching it).
struct DiscardEnvelopes;

impl sentry::Transport for DiscardEnvelopes {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        black_box(&envelope);
    }
}

#[tracing::instrument]
fn handler(id: u64) {
    black_box(id);
}

fn once(workload: &str, error: &std::io::Error) {
    match workload {
        "w1" => info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64),
        "histogram" => info!(histogram.latency = 1.5f64, route = "/api/users"),
        "gauge" => info!(gauge.queue_depth = 7i64, worker = 3u64),
        "w2" => handler(7),
        "w3" => error!(error = %error, "failed"),
        "w6" => debug!(key = "v", "msg"),
        "root_unsampled" | "root_sampled" => {
            info_span!("request", route = "/api/users").in_scope(|| {});
        }
        "trace3_sampled" => info_span!("request", route = "/api/users").in_scope(|| {
            info_span!("db", table = "users").in_scope(|| {});
            info_span!("render").in_scope(|| {});
        }),
        _ => {}
    }
}

/// First sight of every series, sketch page and cache slot (not counted). Distinct from
/// `measured` so that the compiler does not fold the two into one function.
#[inline(never)]
fn warm(workload: &str, n: u64, error: &std::io::Error) {
    for i in 0..n {
        black_box(i);
        once(workload, error);
    }
}

/// [`warm`] for a peer that is not a tracing subscriber.
#[inline(never)]
fn warm_with(n: u64, op: impl Fn()) {
    for i in 0..n {
        black_box(i);
        op();
    }
}

/// [`measured`] for a peer that is not a tracing subscriber (same symbol prefix for callgrind).
#[inline(never)]
fn measured_with(n: u64, op: impl Fn()) {
    for _ in 0..n {
        op();
    }
}

#[inline(never)]
fn measured(workload: &str, n: u64, error: &std::io::Error) {
    for _ in 0..n {
        once(workload, error);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: instructions w1|histogram|gauge|w2|w3|w6|root_unsampled|root_sampled|\
             trace3_sampled registry|tally|sentry|otel-metrics|metrics-prom|span-timer [N]"
        );
        return ExitCode::FAILURE;
    };
    let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    // Traces are recorded only in the trace workloads (the others measure the core alone).
    let sample_rate = match workload.as_str() {
        "root_unsampled" => Some(0.0),
        "root_sampled" | "trace3_sampled" => Some(1.0),
        _ => None,
    };
    let mut builder = Tally::builder();
    if let Some(rate) = sample_rate {
        builder = builder.traces_sample_rate(rate);
    }
    // Manual mode: no flusher thread runs while the workload is counted.
    let built = builder
        .manual()
        .transaction_queue(1 << 20)
        .host(None)
        .sink(Discard)
        .error_rate_limit(u32::MAX, u32::MAX)
        .error_queue(1 << 20)
        .build();
    let Ok((layer, guard)) = built else {
        eprintln!("cannot build the pipeline");
        return ExitCode::FAILURE;
    };
    let error = std::io::Error::other("connection reset");
    let run = || {
        let _span =
            (workload == "w3").then(|| info_span!("request", route = "/api/users").entered());
        warm(workload, 1000, &error);
        measured(workload, n, &error);
    };
    match mode.as_str() {
        "span-timer" if workload == "w2" => {
            let Some(setup::Installed { pipeline: setup::Pipeline::Tracing(dispatch), .. }) =
                setup::Installed::new(mode)
            else {
                eprintln!("cannot set up {mode}");
                return ExitCode::FAILURE;
            };
            tracing::dispatcher::with_default(&dispatch, run);
        }
        "otel-metrics" | "metrics-prom" if workload == "w1" => {
            let Some(installed) = setup::Installed::new(mode) else {
                eprintln!("cannot set up {mode}");
                return ExitCode::FAILURE;
            };
            match &installed.pipeline {
                setup::Pipeline::Tracing(dispatch) => {
                    tracing::dispatcher::with_default(dispatch, run)
                }
                setup::Pipeline::Prometheus { recorder, .. } => {
                    metrics::with_local_recorder(recorder, || {
                        let counter = || {
                            metrics::counter!("requests", "route" => "/api/users", "status" => "200")
                                .increment(1);
                        };
                        warm_with(1000, counter);
                        measured_with(n, counter);
                    });
                }
                _ => {}
            }
        }
        "registry" => tracing::subscriber::with_default(tracing_subscriber::registry(), run),
        "sentry" => {
            let options = sentry::ClientOptions::new()
                .dsn("https://public@o1.ingest.sentry.io/42")
                .traces_sample_rate(sample_rate.unwrap_or(0.0) as f32)
                .transport(std::sync::Arc::new(DiscardEnvelopes));
            let _sentry = sentry::init(options);
            let subscriber = tracing_subscriber::registry()
                .with(sentry_tracing::SpanLayer::new().with_filter(LevelFilter::INFO))
                .with(sentry_tracing::ErrorLayer::new().with_filter(LevelFilter::ERROR));
            tracing::subscriber::with_default(subscriber, run);
        }
        _ => tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), run),
    }
    drop(guard);
    ExitCode::SUCCESS
}
