//! Cardinality: per-metric and global series limits, overflow series, idle eviction.

use std::time::Duration;

use tracing::info;
use tracing_tally::Tally;

use crate::support::Harness;

#[test]
fn series_beyond_the_per_metric_limit_go_to_the_overflow_series() {
    let h = Harness::new(Tally::builder().manual().max_series_per_metric(3));
    h.run(|| {
        for round in 0..2 {
            for user in 0..10u64 {
                info!(monotonic_counter.logins = 1, user, round);
            }
        }
        info!(monotonic_counter.other = 1, user = 99); // another metric has its own budget
    });
    h.flush();
    let records = h.capture.named("logins");
    let overflow: Vec<_> = records.iter().filter(|r| r.is_overflow()).collect();
    assert_eq!(overflow.len(), 1);
    assert_eq!(overflow[0].tags().len(), 1);
    assert_eq!((overflow[0].tags()[0].key(), overflow[0].tags()[0].value()), ("overflow", "true"));
    assert_eq!(records.len(), 4, "3 admitted series + overflow");
    assert_eq!(h.capture.counter("logins", &[]), 20.0, "nothing lost: totals include overflow");
    assert_eq!(h.capture.counter("logins", &[("overflow", "true")]), 17.0);
    let stats = h.guard.stats();
    assert_eq!(stats.overflowed, 17);
    assert_eq!(h.capture.counter("other", &[]), 1.0);
}

#[test]
fn the_global_limit_applies_across_metrics() {
    let h = Harness::new(Tally::builder().manual().max_series(4));
    h.run(|| {
        for i in 0..3u64 {
            info!(monotonic_counter.a = 1, i);
            info!(monotonic_counter.b = 1, i);
        }
    });
    h.flush();
    let admitted = h.capture.metrics().iter().filter(|r| !r.is_overflow()).count();
    assert_eq!(admitted, 4);
    assert_eq!(h.capture.counter("a", &[]) + h.capture.counter("b", &[]), 6.0);
    assert_eq!(h.guard.stats().live_series, 4);
}

#[test]
fn idle_series_are_evicted_and_free_their_place() {
    let h = Harness::new(Tally::builder().manual().max_series_per_metric(2).idle_intervals(1));
    // Manual flushes close one interval each.
    h.run(|| {
        info!(monotonic_counter.c = 1, k = "a");
        info!(monotonic_counter.c = 1, k = "b");
    });
    h.flush();
    h.flush(); // a, b idle for one interval
    h.flush(); // evicted now
    assert!(h.guard.stats().evicted >= 2, "{:?}", h.guard.stats());
    h.run(|| {
        info!(monotonic_counter.c = 1, k = "c");
        info!(monotonic_counter.c = 1, k = "a"); // comes back as a new series
    });
    h.flush();
    assert_eq!(h.capture.counter("c", &[("k", "c")]), 1.0);
    assert_eq!(h.capture.counter("c", &[("k", "a")]), 2.0);
    assert_eq!(h.capture.counter("c", &[("overflow", "true")]), 0.0);
}

#[test]
fn live_series_count_is_exported() {
    let h = Harness::new(Tally::builder().flush_interval(Duration::from_secs(3600)));
    h.run(|| {
        for i in 0..5u64 {
            info!(gauge.g = 1, i);
        }
    });
    h.flush();
    let live =
        h.capture.self_metrics().into_iter().find(|r| r.name() == "tally.series.live").unwrap();
    match live.value() {
        tracing_tally::sink::MetricValue::Gauge(g) => assert_eq!(g.last, 5.0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_summary_keeps_a_bounded_number_of_series_and_says_how_many_it_left_out() {
    let h = Harness::new(Tally::builder().manual().max_series_per_metric(5_000));
    h.run(|| {
        for user in 0..1_500u64 {
            info!(monotonic_counter.a_logins = 1, user);
        }
        for shard in 0..20u64 {
            for kind in 0..60u64 {
                info!(monotonic_counter.queries = 1, shard, kind);
            }
        }
        info!(monotonic_counter.requests = 1, route = "/users");
    });
    h.flush();
    assert_eq!(h.capture.named("a_logins").len(), 1_500, "every series reaches the sinks");
    let summary = h.guard.summary();
    let rows = |name: &str| summary.counters.iter().filter(|r| r.name == name).count();
    // One high-cardinality metric does not crowd out the others.
    assert_eq!(rows("a_logins"), 100);
    assert_eq!(rows("queries"), 100);
    assert_eq!(rows("requests"), 1);
    assert_eq!(summary.series_not_shown, 1_000, "counted up to 1,000 (2,500 left out)");
    assert!(summary.to_string().contains("at least 1000 more series were exported"));
}
