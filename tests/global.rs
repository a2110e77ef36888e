//! The layer as the process-wide default (`set_global_default`), as applications install it.
//!
//! One test function: the global default can be set once per process. No scoped dispatcher is
//! used here, so tracing-core takes its global fast path, which has no recursion guard of its
//! own: the layer's guard is what is tested.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};
use tracing_tally::{DropReason, Tally};

use support::Capture;

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
    std::thread::sleep(Duration::from_millis(100));
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
