//! Flushing: guard drop, explicit flushes, deadlines, misbehaving sinks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};
use tracing_tally::{DropReason, Tally};

use crate::support::{Capture, Harness};

/// How late a call may return past its deadline on a loaded machine: tight enough that falling
/// back to the default 2 s shutdown timeout fails the test.
const SLACK: Duration = Duration::from_millis(500);

/// A sink whose export blocks until released.
#[derive(Clone, Default)]
struct Stalled {
    release: Arc<(Mutex<bool>, std::sync::Condvar)>,
    exports: Arc<AtomicU64>,
}

impl Stalled {
    fn release(&self) {
        *self.release.0.lock().unwrap() = true;
        self.release.1.notify_all();
    }
}

impl Sink for Stalled {
    fn name(&self) -> &str {
        "stalled"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        self.exports.fetch_add(1, Ordering::SeqCst);
        let (lock, cvar) = &*self.release;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cvar.wait(released).unwrap();
        }
        Ok(())
    }
}

struct Panicking;

impl Sink for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        panic!("this sink always panics");
    }
}

struct Failing;

impl Sink for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        Err(ExportError::new(tracing_tally::sink::ExportErrorKind::Rejected, "backend said no"))
    }
}

#[test]
fn dropping_the_guard_flushes_everything_recorded_before() {
    let h = Harness::new(Tally::builder().flush_interval(Duration::from_secs(3600)));
    h.run(|| {
        info!(monotonic_counter.before_drop = 3);
        tracing::error!("captured before drop");
    });
    let capture = h.capture.clone();
    drop(h.guard);
    assert_eq!(capture.counter("before_drop", &[]), 3.0);
    assert_eq!(capture.errors().len(), 1);
}

#[test]
fn manual_mode_exports_only_on_flush_and_on_drop() {
    let h = Harness::manual();
    h.run(|| info!(monotonic_counter.m = 1));
    std::thread::sleep(Duration::from_millis(50));
    assert!(h.capture.batches().is_empty(), "manual mode runs no background thread");
    h.flush();
    assert_eq!(h.capture.counter("m", &[]), 1.0);
    h.run(|| info!(monotonic_counter.m = 1));
    let capture = h.capture.clone();
    drop(h.guard);
    assert_eq!(capture.counter("m", &[]), 2.0);
}

#[test]
fn flush_returns_by_its_deadline_with_a_stalled_sink() {
    let stalled = Stalled::default();
    let capture = Capture::default();
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(stalled.clone())
        .sink(capture.clone())
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.x = 1));
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert!(!guard.flush(timeout), "a stalled sink cannot complete a flush");
    assert!(started.elapsed() < timeout + SLACK, "flush took {:?}", started.elapsed());
    // The healthy sink got the data anyway.
    assert_eq!(capture.counter("x", &[]), 1.0);
    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_millis(200) + SLACK,
        "drop took {:?}",
        started.elapsed()
    );
    stalled.release();
}

#[test]
fn a_stalled_sink_drops_and_counts_what_its_queue_cannot_hold() {
    let stalled = Stalled::default();
    let capture = Capture::default();
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(stalled.clone())
        .sink(capture.clone())
        .sink_queue(2)
        .self_metrics(false)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    for i in 0..5u64 {
        tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.x = 1, i));
        assert!(!guard.flush(Duration::from_millis(50)));
        // The healthy sink gets every batch. (A flush that times out can return before the
        // flusher is done, so wait for it: the healthy sink's queue holds two messages.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while capture.counter("x", &[]) < (i + 1) as f64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(capture.counter("x", &[]), (i + 1) as f64, "other sinks are not held back");
    }
    // The stalled sink holds the first batch in export and two in its room for metrics (flush
    // requests take no room): the last two of the five were dropped and counted.
    let stats = guard.stats();
    assert_eq!(stats.dropped(DropReason::SinkQueueFull), 2, "{stats:?}");
    drop(guard);
    stalled.release();
}

#[test]
fn a_panicking_sink_is_survived_and_counted() {
    let capture = Capture::default();
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(Panicking)
        .sink(capture.clone())
        .self_metrics(false)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    for _ in 0..3 {
        tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.x = 1));
        assert!(guard.flush(Duration::from_secs(5)));
    }
    assert_eq!(capture.counter("x", &[]), 3.0);
    assert_eq!(guard.stats().dropped(DropReason::SinkPanic), 3);
}

#[test]
fn sink_errors_are_counted_per_record() {
    let (layer, guard) =
        Tally::builder().manual().host(None).sink(Failing).self_metrics(false).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        info!(monotonic_counter.a = 1);
        info!(monotonic_counter.b = 1);
    });
    guard.flush(Duration::from_secs(1));
    let stats = guard.stats();
    assert_eq!(stats.dropped(DropReason::SinkError), 2);
    assert_eq!(stats.export_failures, 1);
}

#[test]
fn events_after_shutdown_are_not_recorded() {
    let h = Harness::manual();
    let dispatch = h.dispatch.clone();
    let capture = h.capture.clone();
    assert!(h.guard.shutdown(Duration::from_secs(1)));
    tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.late = 1));
    assert!(capture.named("late").is_empty());
}

#[test]
fn huge_intervals_and_timeouts_are_not_a_crash() {
    let refused = Tally::builder().rollup_interval(Duration::MAX).sink(Capture::default()).build();
    let Err(error) = refused
        .map(|(layer, _): (tracing_tally::TallyLayer<tracing_subscriber::Registry>, _)| layer)
    else {
        panic!("a roll-up interval over a day is refused");
    };
    assert!(error.to_string().contains("rollup_interval"), "{error}");
    let h = Harness::new(
        Tally::builder()
            .rollup_interval(tracing_tally::defaults::MAX_ROLLUP_INTERVAL)
            .flush_interval(Duration::MAX)
            .shutdown_timeout(Duration::MAX),
    );
    h.run(|| info!(monotonic_counter.x = 1));
    assert!(h.guard.flush(Duration::MAX));
    assert_eq!(h.capture.counter("x", &[]), 1.0);
}
