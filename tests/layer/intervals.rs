//! Roll-up intervals: conservation across boundaries and threads, alignment, what is flushed when.

use std::sync::Arc;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::info;
use tracing_tally::sink::MetricValue;
use tracing_tally::Tally;

use crate::support::Harness;

#[test]
fn totals_are_conserved_exactly_across_threads_and_interval_boundaries() {
    const THREADS: u64 = 4;
    const EVENTS: u64 = 20_000;
    let h = Harness::new(
        Tally::builder()
            .rollup_interval(Duration::from_millis(20))
            .flush_interval(Duration::from_millis(30)),
    );
    // The workers start together, and after half their events wait for the test to see an
    // interval exported: the second half then lands in later intervals, whatever the timing.
    let start = Arc::new(Barrier::new(THREADS as usize));
    let half_done = Arc::new(Barrier::new(THREADS as usize + 1));
    let resume = Arc::new(Barrier::new(THREADS as usize + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = h.dispatch.clone();
            let (start, half_done, resume) = (start.clone(), half_done.clone(), resume.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    for i in 0..EVENTS {
                        if i == EVENTS / 2 {
                            half_done.wait();
                            resume.wait();
                        }
                        let route = ["/a", "/b", "/c"][(i % 3) as usize];
                        info!(monotonic_counter.requests = 1, route, thread = t);
                        info!(counter.balance = if i % 2 == 0 { 3 } else { -1 }, route);
                        info!(histogram.latency = (i % 100) as f64 + 0.5, route);
                        info!(gauge.level = i, thread = t);
                        if i % 1000 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
        })
        .collect();
    half_done.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.capture.named("requests").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let first_intervals = h.capture.named("requests").len();
    assert!(first_intervals > 0, "an interval of the first half was exported on schedule");
    resume.wait();
    for w in workers {
        w.join().unwrap();
    }
    drop(h.guard); // the final flush includes the interval in progress
    let c = &h.capture;
    let total: i128 =
        ["/a", "/b", "/c"].iter().map(|r| c.counter_exact("requests", &[("route", r)])).sum();
    assert_eq!(total, i128::from(THREADS * EVENTS));
    for t in 0..THREADS {
        let per_thread = c.counter_exact("requests", &[("thread", &t.to_string())]);
        assert_eq!(per_thread, i128::from(EVENTS), "thread {t}");
    }
    // 10,000 × (+3) and 10,000 × (-1) per thread.
    assert_eq!(c.counter_exact("balance", &[]), i128::from(THREADS * (EVENTS / 2) * 2));
    let (mut count, mut sum) = (0u64, 0f64);
    for r in c.named("latency") {
        let MetricValue::Distribution(d) = r.value() else { panic!() };
        count += d.count;
        sum += d.sum;
        assert_eq!(d.sketch.count(), d.count);
    }
    assert_eq!(count, THREADS * EVENTS);
    let expected_sum =
        (THREADS * (EVENTS / 100)) as f64 * (0..100).map(|v| v as f64 + 0.5).sum::<f64>();
    assert_eq!(sum, expected_sum);
    let mut gauge_count = 0;
    for r in c.named("level") {
        let MetricValue::Gauge(g) = r.value() else { panic!() };
        gauge_count += g.count;
    }
    assert_eq!(gauge_count, THREADS * EVENTS);
    // The workload spanned several intervals, so the totals really crossed boundaries.
    let intervals: std::collections::BTreeSet<_> =
        c.named("requests").iter().map(|r| r.timestamp()).collect();
    assert!(intervals.len() > 1, "{} intervals", intervals.len());
}

#[test]
fn records_are_labelled_with_aligned_interval_starts() {
    let h = Harness::new(Tally::builder().rollup_interval(Duration::from_millis(250)));
    h.run(|| info!(monotonic_counter.x = 1));
    h.flush();
    let r = &h.capture.named("x")[0];
    let nanos = r.timestamp().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    assert_eq!(nanos % 250_000_000, 0);
    assert_eq!(r.interval(), Duration::from_millis(250));
    assert!(r.timestamp() <= SystemTime::now());
}

#[test]
fn only_completed_intervals_are_flushed_on_schedule_and_the_final_flush_takes_the_rest() {
    let h = Harness::new(
        Tally::builder()
            .rollup_interval(Duration::from_secs(3600))
            .flush_interval(Duration::from_millis(10)),
    );
    h.run(|| info!(monotonic_counter.x = 5));
    // Many scheduled flushes run, and none completes the hour-long interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.guard.stats().flushes < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(h.guard.stats().flushes >= 5, "scheduled flushes ran");
    assert!(
        h.capture.named("x").is_empty(),
        "the interval in progress must not be exported on schedule"
    );
    let capture = h.capture.clone();
    drop(h.guard);
    assert_eq!(capture.counter("x", &[]), 5.0);
}

#[test]
fn a_completed_interval_is_exported_without_an_explicit_flush() {
    let h = Harness::new(
        Tally::builder()
            .rollup_interval(Duration::from_millis(20))
            .flush_interval(Duration::from_millis(20)),
    );
    h.run(|| info!(monotonic_counter.x = 1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.capture.named("x").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.capture.counter("x", &[]), 1.0);
}

#[test]
fn gauges_keep_the_last_value_across_threads() {
    let h = Harness::manual();
    let dispatch = h.dispatch.clone();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || info!(gauge.temp = 10))
    })
    .join()
    .unwrap();
    h.run(|| info!(gauge.temp = 7));
    h.flush();
    let records = h.capture.named("temp");
    assert_eq!(records.len(), 1);
    let MetricValue::Gauge(g) = records[0].value() else { panic!() };
    assert_eq!((g.last, g.min, g.max, g.sum, g.count), (7.0, 7.0, 10.0, 17.0, 2));
}

#[test]
fn values_of_exited_threads_are_not_lost() {
    let h = Harness::manual();
    for _ in 0..8 {
        let dispatch = h.dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                for _ in 0..100 {
                    info!(monotonic_counter.done = 1);
                }
            })
        })
        .join()
        .unwrap();
    }
    h.flush();
    h.flush();
    assert_eq!(h.capture.counter("done", &[]), 800.0);
}
