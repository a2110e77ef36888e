//! W4 (scaling over threads) and W5 (cardinality) of the peer comparison: one process per
//! (workload, peer), the peer installed globally as an application would
//! (`tracing::dispatcher::set_global_default`, `metrics::set_global_recorder`), set up as
//! `setup/mod.rs` describes. Not criterion: each run prints one line of `key=value` results.
//!
//! Usage: `scale w4 PEER [SECONDS]` (default 2) and `scale w5 PEER`.
//!
//! - **W4**: W1 (`info!(monotonic_counter.requests = 1u64, route = "/api/users", status =
//!   200u64)`, or the peer's own counter call as in `peers.rs`) on 1 thread for `SECONDS`, then
//!   on 2 threads at once for `SECONDS`, after a short warm-up. Prints the time per operation of
//!   each thread (`t1_ns`, `t2_ns`: mean over threads of its time over its operations), the
//!   throughputs (`t1_mops`, `t2_mops`: all operations over wall time) and `scaling`, the 2-thread
//!   throughput over the 1-thread one (2.0 is perfect scaling on 2 cores).
//! - **W5**: 100,000 distinct `route` values, built before measuring, each incremented once
//!   (`info!(monotonic_counter.requests = 1u64, route = route.as_str())`; `metrics-prom`:
//!   `counter!("requests", "route" => route.clone())`; cadence: one tag). Prints `ns_op` (first
//!   sight of a series), the growth of VmRSS and VmHWM (`rss_kib`, `hwm_kib`, from
//!   `/proc/self/status`), the series the peer kept (`series`: OpenTelemetry's collected data
//!   points, Prometheus's rendered lines, tally's `Stats::live_series`; 0 for the stateless
//!   peers) and `bytes_per_series` (growth of VmRSS over series kept). Tally is flushed before
//!   the memory is read, so what it keeps across a flush is counted; it also prints its
//!   `overflowed` values (its default limits are 2,000 series per metric and 50,000 in all, so
//!   `tally-discard` keeps 2,000 routes and folds the rest into the overflow series, as
//!   `otel-metrics` does at its default limit of 2,000; `tally-200k` and `otel-metrics-200k`
//!   raise the limits to 200,000 and keep every route).

// A benchmark program: it prints its results and usage; a failed set-up is a failed run.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::expect_used)]

#[path = "setup/mod.rs"]
mod setup;
#[path = "../../support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cadence::prelude::*;
use tracing::info;

use setup::{Installed, Pipeline, ATOMIC};

/// Distinct routes of W5.
const ROUTES: usize = 100_000;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`: options are not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (Some(workload), Some(peer)) = (args.first(), args.get(1)) else {
        eprintln!("usage: scale w4 PEER [SECONDS] | scale w5 PEER");
        return ExitCode::FAILURE;
    };
    let Some(installed) = Installed::new(peer) else {
        eprintln!("unknown peer {peer}");
        return ExitCode::FAILURE;
    };
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let Some(installed) = install_globally(installed) else {
        eprintln!("cannot install {peer} globally");
        return ExitCode::FAILURE;
    };
    let results = match workload.as_str() {
        "w4" => w4(&installed, seconds),
        "w5" => w5(&installed),
        _ => {
            eprintln!("unknown workload {workload}");
            return ExitCode::FAILURE;
        }
    };
    println!("workload={workload} peer={peer} {results}");
    ExitCode::SUCCESS
}

/// A peer installed process-wide.
struct Global {
    pipeline: GlobalPipeline,
    installed: Installed,
}

enum GlobalPipeline {
    Tracing,
    Atomic,
    Prometheus { handle: metrics_exporter_prometheus::PrometheusHandle, pre_registered: bool },
    Cadence(cadence::StatsdClient),
}

fn install_globally(mut installed: Installed) -> Option<Global> {
    let pipeline = std::mem::replace(&mut installed.pipeline, Pipeline::Atomic);
    let pipeline = match pipeline {
        Pipeline::Tracing(dispatch) => {
            tracing::dispatcher::set_global_default(dispatch).ok()?;
            GlobalPipeline::Tracing
        }
        Pipeline::Atomic => GlobalPipeline::Atomic,
        Pipeline::Prometheus { recorder, handle, pre_registered } => {
            metrics::set_global_recorder(recorder).ok()?;
            GlobalPipeline::Prometheus { handle, pre_registered }
        }
        Pipeline::Cadence(client) => GlobalPipeline::Cadence(client),
    };
    Some(Global { pipeline, installed })
}

fn w1_event() {
    info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64);
}

fn w4(global: &Global, seconds: f64) -> String {
    match &global.pipeline {
        GlobalPipeline::Tracing => scaling(seconds, &w1_event),
        GlobalPipeline::Atomic => scaling(seconds, &|| {
            ATOMIC.fetch_add(1, Ordering::Relaxed);
        }),
        GlobalPipeline::Prometheus { pre_registered: true, .. } => {
            let counter = metrics::counter!("requests", "route" => "/api/users", "status" => "200");
            scaling(seconds, &|| counter.increment(1))
        }
        GlobalPipeline::Prometheus { .. } => scaling(seconds, &|| {
            metrics::counter!("requests", "route" => "/api/users", "status" => "200").increment(1);
        }),
        GlobalPipeline::Cadence(client) => scaling(seconds, &|| {
            client
                .incr_with_tags("requests")
                .with_tag("route", "/api/users")
                .with_tag("status", "200")
                .send();
        }),
    }
}

/// One point of W4: `threads` threads run `op` until told to stop after `seconds`.
struct Point {
    /// Mean over the threads of each thread's time per operation.
    ns_per_op: f64,
    /// Operations of all threads per second of wall time, in millions.
    mops: f64,
}

fn run_threads<F: Fn() + Sync>(threads: usize, seconds: f64, op: &F) -> Point {
    let stop = AtomicBool::new(false);
    let start_line = Barrier::new(threads + 1);
    let (per_thread, wall) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start_line.wait();
                    let start = Instant::now();
                    let mut ops = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..1_000 {
                            op();
                        }
                        ops += 1_000;
                    }
                    (ops, start.elapsed())
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        let per_thread: Vec<(u64, Duration)> =
            workers.into_iter().filter_map(|worker| worker.join().ok()).collect();
        (per_thread, start.elapsed())
    });
    let ops: u64 = per_thread.iter().map(|(ops, _)| ops).sum();
    let ns_per_op = per_thread
        .iter()
        .map(|(ops, time)| time.as_nanos() as f64 / (*ops).max(1) as f64)
        .sum::<f64>()
        / per_thread.len().max(1) as f64;
    Point { ns_per_op, mops: ops as f64 / wall.as_secs_f64() / 1e6 }
}

fn scaling<F: Fn() + Sync>(seconds: f64, op: &F) -> String {
    // Warm-up: callsite registration, first series, the peers' thread-local state.
    run_threads(1, (seconds / 4.0).min(0.5), op);
    let one = run_threads(1, seconds, op);
    let two = run_threads(2, seconds, op);
    format!(
        "seconds={seconds} t1_ns={:.2} t1_mops={:.3} t2_ns={:.2} t2_mops={:.3} scaling={:.3}",
        one.ns_per_op,
        one.mops,
        two.ns_per_op,
        two.mops,
        two.mops / one.mops
    )
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn w5(global: &Global) -> String {
    let routes: Vec<String> = (0..ROUTES).map(|i| format!("/api/users/{i}")).collect();
    let route = |r: &str| info!(monotonic_counter.requests = 1u64, route = r);
    // One series before the baseline: callsite registration and thread-local state are not
    // per-series costs.
    let warm = "/warm-up".to_owned();
    let (time, before) = match &global.pipeline {
        GlobalPipeline::Tracing => cardinality(&routes, &warm, |r| route(r)),
        GlobalPipeline::Atomic => cardinality(&routes, &warm, |_| {
            ATOMIC.fetch_add(1, Ordering::Relaxed);
        }),
        GlobalPipeline::Prometheus { .. } => cardinality(&routes, &warm, |r| {
            metrics::counter!("requests", "route" => r.clone()).increment(1);
        }),
        GlobalPipeline::Cadence(client) => cardinality(&routes, &warm, |r| {
            client.incr_with_tags("requests").with_tag("route", r).send();
        }),
    };
    let ns_op = time.as_nanos() as f64 / ROUTES as f64;
    let after = after_flush(global);
    let rss = after.0.saturating_sub(before.0);
    let hwm = after.1.saturating_sub(before.1);
    // Counted after the memory is read: collecting or rendering allocates.
    let series = series_kept(global);
    let bytes_per_series = if series > 0 {
        format!("{:.0}", rss as f64 * 1024.0 / series as f64)
    } else {
        "na".to_owned()
    };
    let overflowed = global
        .installed
        .tally
        .as_ref()
        .map_or(String::new(), |guard| format!(" overflowed={}", guard.stats().overflowed));
    format!(
        "routes={ROUTES} ns_op={ns_op:.1} rss_kib={rss} hwm_kib={hwm} series={series} \
         bytes_per_series={bytes_per_series}{overflowed}"
    )
}

/// Increments every route once; returns the time taken and the memory before.
fn cardinality(routes: &[String], warm: &String, op: impl Fn(&String)) -> (Duration, (u64, u64)) {
    op(warm);
    let before = memory();
    let start = Instant::now();
    for route in routes {
        op(route);
    }
    (start.elapsed(), before)
}

/// Memory after the workload, once tally has flushed what it recorded.
fn after_flush(global: &Global) -> (u64, u64) {
    if let Some(guard) = &global.installed.tally {
        guard.flush(Duration::from_secs(30));
    }
    memory()
}

fn series_kept(global: &Global) -> usize {
    if let Some(guard) = &global.installed.tally {
        return guard.stats().live_series;
    }
    if let Some(reader) = &global.installed.otel_reader {
        return reader.series();
    }
    if let GlobalPipeline::Prometheus { handle, .. } = &global.pipeline {
        return handle.render().lines().filter(|line| line.starts_with("requests{")).count();
    }
    0
}
