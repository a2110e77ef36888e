//! User code that misbehaves: a `Display` that panics, a sink that never returns, flushes from
//! inside tracing callbacks and sinks. (A panicking `Debug`, a panicking sink, a flush from a
//! layer's `on_event` and a sink stalled until released are in `composition` and `flushing`.)

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};
use tracing_tally::{DropReason, Tally};

use crate::support::{Capture, OwnFlush};

/// How late a call may return past its deadline on a loaded machine: tight enough that falling
/// back to the default 2 s shutdown timeout fails the test.
const SLACK: Duration = Duration::from_millis(500);
/// How long to wait for work that has no deadline of its own (recording, a sink's thread).
const WAIT: Duration = Duration::from_secs(10);

/// A `Display` implementation that panics.
struct ExplodingDisplay;

impl fmt::Display for ExplodingDisplay {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display exploded");
    }
}

/// A `Debug` implementation that flushes its pipeline while the layer formats it.
struct Flushing(OwnFlush);

impl fmt::Debug for Flushing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = self.0.flush(Duration::from_millis(300));
        f.write_str("flushing")
    }
}

/// A sink whose export never returns.
#[derive(Clone, Default)]
struct Stuck {
    entered: Arc<AtomicU64>,
}

impl Sink for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        loop {
            std::thread::park();
        }
    }
}

/// A sink that flushes its pipeline from inside its own export.
#[derive(Clone, Default)]
struct FlushingSink {
    exports: Arc<AtomicU64>,
    own: OwnFlush,
}

impl Sink for FlushingSink {
    fn name(&self) -> &str {
        "flushing"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        let _ = self.own.flush(Duration::from_millis(200));
        self.exports.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_panicking_display_implementation_is_counted_and_survived() {
    let capture = Capture::default();
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(capture.clone()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
        info!(monotonic_counter.x = 1, value = %ExplodingDisplay);
        tracing::error!(value = %ExplodingDisplay, "error with an exploding field");
        info!(monotonic_counter.after = 1);
    });
    assert!(guard.flush(Duration::from_secs(1)));
    assert_eq!(capture.counter("after", &[]), 1.0, "the layer keeps working");
    assert_eq!(capture.counter("x", &[]), 0.0);
    assert_eq!(guard.stats().dropped(DropReason::Panic), 2);
}

#[test]
fn flushing_from_a_fields_debug_implementation_returns() {
    for manual in [false, true] {
        let capture = Capture::default();
        let mut builder = Tally::builder().host(None).sink(capture.clone());
        if manual {
            builder = builder.manual();
        }
        let (tally, guard) = builder.build().unwrap();
        let own = OwnFlush::default();
        let guard = own.attach(guard);
        let started = Instant::now();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
            info!(monotonic_counter.x = 1, value = ?Flushing(own.clone()));
            tracing::error!(value = ?Flushing(own.clone()), "an error whose field flushes");
            tracing::info_span!("span", value = ?Flushing(own.clone())).in_scope(|| {});
        });
        // Three flushes of 300 ms at most, from inside the layer.
        let bound = Duration::from_millis(900) + SLACK;
        assert!(started.elapsed() < bound, "manual={manual}: took {:?}", started.elapsed());
        assert!(own.calls() >= 3, "manual={manual}: the fields flushed their pipeline");
        assert!(guard.flush(Duration::from_secs(2)));
        assert_eq!(capture.counter("x", &[("value", "flushing")]), 1.0, "manual={manual}");
        drop(own.detach(guard));
    }
}

#[test]
fn flushing_from_inside_a_sink_returns() {
    for manual in [false, true] {
        let sink = FlushingSink::default();
        let mut builder = Tally::builder()
            .host(None)
            .sink(sink.clone())
            .shutdown_timeout(Duration::from_millis(500));
        if manual {
            builder = builder.manual();
        }
        let (tally, guard) = builder.build().unwrap();
        let guard = sink.own.attach(guard);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(tally));
        tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.x = 1));
        let started = Instant::now();
        let _ = guard.flush(Duration::from_secs(1));
        assert!(
            started.elapsed() < Duration::from_secs(1) + SLACK,
            "manual={manual}: flush took {:?}",
            started.elapsed()
        );
        assert!(sink.exports.load(Ordering::SeqCst) >= 1, "manual={manual}");
        assert!(sink.own.calls() >= 1, "manual={manual}: the sink flushed its pipeline");
        let guard = sink.own.detach(guard);
        let started = Instant::now();
        drop(guard);
        assert!(
            started.elapsed() < Duration::from_millis(500) + SLACK,
            "manual={manual}: drop took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_sink_that_never_returns_holds_back_neither_threads_nor_deadlines() {
    let stuck = Stuck::default();
    let capture = Capture::default();
    let (tally, guard) = Tally::builder()
        .host(None)
        .sink(stuck.clone())
        .sink(capture.clone())
        .sink_queue(2)
        .flush_interval(Duration::from_millis(10))
        .rollup_interval(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(tally));
    // Application threads keep recording, errors included, while the sink is stuck.
    let started = Instant::now();
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..2_000u64 {
                        info!(monotonic_counter.requests = 1, thread = t);
                        if i % 100 == 0 {
                            tracing::error!(i, "an error while the sink is stuck");
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(started.elapsed() < WAIT, "recording took {:?}", started.elapsed());
    let deadline = Instant::now() + WAIT;
    while stuck.entered.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stuck.entered.load(Ordering::SeqCst), 1, "the sink got stuck in its first export");
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    assert!(!guard.flush(timeout), "a stuck sink cannot complete a flush");
    assert!(started.elapsed() < timeout + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_millis(200) + SLACK,
        "drop took {:?}",
        started.elapsed()
    );
    // The healthy sink gets everything recorded (its own thread may still be exporting).
    let deadline = Instant::now() + WAIT;
    while capture.counter("requests", &[("thread", "0")]) < 2_000.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(capture.counter("requests", &[("thread", "0")]), 2_000.0);
}
