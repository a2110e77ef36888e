//! The layer as the process-wide default (`set_global_default`), as applications install it.
//!
//! The global default can be set once per process: one test sets it. No scoped dispatcher is
//! used there, so tracing-core takes its global fast path, which has no recursion guard of its
//! own: the layer's guard is what is tested.
//!
//! The global `tracing_tally::flush` is tested here too, in a binary of its own, since it reaches
//! whichever pipeline was built last: the tests of this binary take turns (`SERIAL`), so no
//! other test's pipeline is built while one of them runs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};
use tracing_tally::{DropReason, Tally};

use support::{Capture, Harness};

/// Taken by every test of this binary: the global flush reaches the latest pipeline.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How late a call may return past its deadline on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);

/// A sink that logs through `tracing` on every export (as an HTTP client might).
struct Chatty {
    inner: Capture,
    exports: Arc<AtomicU64>,
}

impl Sink for Chatty {
    fn name(&self) -> &str {
        "chatty"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        info!(monotonic_counter.sink_logged = 1, records = batch.metrics().len(), "exporting");
        tracing::error!("an error logged by a sink");
        self.exports.fetch_add(1, Ordering::SeqCst);
        self.inner.export(batch)
    }
}

/// A `Debug` implementation that emits an event.
struct Nested;

impl fmt::Debug for Nested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        info!(monotonic_counter.nested = 1);
        f.write_str("nested")
    }
}

#[test]
fn the_layer_works_as_the_global_default() {
    let _serial = serial();
    let capture = Capture::default();
    let exports = Arc::new(AtomicU64::new(0));
    let (tally, guard) = Tally::builder()
        .host(None)
        .rollup_interval(Duration::from_millis(20))
        .flush_interval(Duration::from_millis(20))
        .sink(Chatty { inner: capture.clone(), exports: exports.clone() })
        .build()
        .unwrap();
    tracing_subscriber::registry().with(tally).init();

    // Threads record without any per-thread set-up; totals are conserved.
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    info!(monotonic_counter.requests = 1, thread = t);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    // An event emitted while the layer formats a field is ignored and counted, not recursed.
    info!(monotonic_counter.outer = 1, value = ?Nested);

    assert!(tracing_tally::flush(Duration::from_secs(5)), "global flush");
    assert_eq!(capture.counter_exact("requests", &[]), 40_000);
    assert_eq!(capture.counter("outer", &[("value", "nested")]), 1.0);
    assert_eq!(capture.counter("nested", &[]), 0.0);
    assert!(guard.stats().dropped(DropReason::Reentrant) >= 1);

    // The sink logged on every export, through the global subscriber, without deadlock and
    // without feeding the pipeline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while exports.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(exports.load(Ordering::SeqCst) >= 2);
    assert_eq!(capture.counter("sink_logged", &[]), 0.0);
    assert!(capture.errors().is_empty(), "errors logged by the sink are not captured");

    let capture_after = capture.clone();
    drop(guard);
    assert_eq!(capture_after.counter_exact("requests", &[]), 40_000, "exactly once");
    // The pipeline is gone; recording is now a no-op, not a crash.
    info!(monotonic_counter.after_shutdown = 1);
    assert!(!tracing_tally::flush(Duration::from_millis(100)));
}

/// A sink whose export never returns.
struct Stuck;

impl Sink for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        loop {
            std::thread::park();
        }
    }
}

#[test]
fn the_global_flush_reaches_the_latest_pipeline() {
    let _serial = serial();
    let older = Harness::manual();
    let newer = Harness::manual();
    older.run(|| info!(monotonic_counter.x = 1));
    newer.run(|| info!(monotonic_counter.x = 2));
    assert!(tracing_tally::flush(Duration::from_secs(5)));
    assert_eq!(newer.capture.counter("x", &[]), 2.0, "the latest pipeline was flushed");
    assert!(older.capture.batches().is_empty(), "the older one was not");

    // Once the latest is shut down, the one before it is the latest.
    let newer_capture = newer.capture.clone();
    drop(newer.guard);
    assert!(tracing_tally::flush(Duration::from_secs(5)));
    assert_eq!(older.capture.counter("x", &[]), 1.0);
    assert_eq!(newer_capture.counter("x", &[]), 2.0);

    drop(older.guard);
    let started = Instant::now();
    assert!(!tracing_tally::flush(Duration::from_secs(5)), "no pipeline is running");
    assert!(started.elapsed() < SLACK, "nothing to wait for: {:?}", started.elapsed());
}

#[test]
fn the_global_flush_returns_by_its_deadline_with_a_stuck_sink() {
    let _serial = serial();
    let capture = Capture::default();
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(Stuck)
        .sink(capture.clone())
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.x = 1));
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert!(!tracing_tally::flush(timeout), "a stuck sink cannot complete a flush");
    assert!(started.elapsed() < timeout + SLACK, "global flush took {:?}", started.elapsed());
    assert_eq!(capture.counter("x", &[]), 1.0, "the healthy sink got the data");
    let started = Instant::now();
    drop(guard);
    let bound = Duration::from_millis(200) + SLACK;
    assert!(started.elapsed() < bound, "drop took {:?}", started.elapsed());
}
