//! Shutdown against a dead backend: what the sink tests share.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;
use tracing_tally::Builder;

/// The shutdown timeout the tests configure.
pub(crate) const DEADLINE: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine: tight enough that falling back to the default
/// 2 s shutdown timeout fails the tests.
pub(crate) const SLACK: Duration = Duration::from_millis(500);

/// Builds `builder` with a short flush interval and [`DEADLINE`], runs `record` under it, then
/// checks that `flush` and dropping the guard each return by the deadline (plus slack).
/// Returns what `flush` returned.
pub(crate) fn flush_and_drop_return_by_the_deadline(builder: Builder, record: impl Fn()) -> bool {
    let (layer, guard) = builder
        .host(None)
        .flush_interval(Duration::from_millis(50))
        .shutdown_timeout(DEADLINE)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, record);
    // Let scheduled flushes meet the dead backend first (polled: two flushes have run).
    let ready = Instant::now() + Duration::from_secs(10);
    while guard.stats().flushes < 2 && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(guard.stats().flushes >= 2, "no scheduled flush ran");
    let started = Instant::now();
    let flushed = guard.flush(DEADLINE);
    assert!(started.elapsed() < DEADLINE + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < DEADLINE + SLACK, "drop took {:?}", started.elapsed());
    flushed
}

/// As [`flush_and_drop_return_by_the_deadline`], in manual mode: the sinks run on the flushing
/// thread, so they must keep the flush's deadline while they export. Returns what `flush`
/// returned.
pub(crate) fn manual_flush_and_drop_return_by_the_deadline(
    builder: Builder,
    record: impl Fn(),
) -> bool {
    let (layer, guard) = builder.manual().host(None).shutdown_timeout(DEADLINE).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, record);
    let started = Instant::now();
    let flushed = guard.flush(DEADLINE);
    assert!(started.elapsed() < DEADLINE + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < DEADLINE + SLACK, "drop took {:?}", started.elapsed());
    flushed
}
