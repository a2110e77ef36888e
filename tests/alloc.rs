//! Allocation budget: no heap allocation per metric event once the thread has seen the series.
//!
//! A counting global allocator counts only on the test thread, between `start` and `stop`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use tracing::{info, info_span};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};
use tracing_tally::Tally;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the thread-locals touched
// are const-initialized `Cell`s without destructors, so reading them never allocates or recurses.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

struct Discard;

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        Ok(())
    }
}

#[derive(Debug)]
struct Region;

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("eu-west")
    }
}

#[test]
fn metric_events_of_a_seen_series_do_not_allocate() {
    let (tally, guard) = Tally::builder()
        .host(None)
        .sink(Discard)
        .span_tags(["tenant"])
        .breadcrumbs(0, tracing::level_filters::LevelFilter::INFO)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(tally);
    let route = String::from("/api/users");
    let workload = || {
        for i in 0..1000u64 {
            info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64);
            info!(counter.inflight = -1, route = route.as_str());
            info!(gauge.queue = i % 7, region = %Region);
            info!(histogram.latency = (i % 100) as f64 * 1.5, route = "/api/users");
            info!(timing.db = 3, ok = true);
            info!(set.users = i % 10);
            info!(set.names = "ann");
        }
    };
    tracing::subscriber::with_default(subscriber, || {
        // Warm up: first sight of every series, sketch pages and set slots.
        workload();
        let span = info_span!("request", tenant = "acme");
        span.in_scope(workload);
        let n = allocations_during(workload);
        assert_eq!(n, 0, "{n} allocations for 7,000 metric events");
        let n = allocations_during(|| span.in_scope(workload));
        // Entering and exiting a span does not allocate either; events inside it use its tags.
        assert_eq!(n, 0, "{n} allocations for 7,000 metric events inside a span");
    });
    assert!(guard.flush(Duration::from_secs(5)));
}

#[test]
fn span_timing_allocates_only_its_extension() {
    let (tally, guard) =
        Tally::builder().host(None).sink(Discard).capture_span_fields(false).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(tally);
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..100 {
            info_span!("work", id = 1u64).in_scope(|| {});
        }
        let n = allocations_during(|| {
            for _ in 0..1000 {
                info_span!("work", id = 1u64).in_scope(|| {});
            }
        });
        // One box per span: tracing-subscriber's span extensions box what they store. A few more
        // when a duration falls in a power of two not seen before (a sketch page, once).
        assert!((1000..=1050).contains(&n), "{n} allocations for 1,000 spans");
    });
    assert!(guard.flush(Duration::from_secs(5)));
}
