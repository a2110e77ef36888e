//! Field conventions: prefixes, numeric types, units, tags, invalid values.

use tracing::info;
use tracing_tally::sink::{MetricKind, MetricValue};
use tracing_tally::DropReason;

use crate::support::Harness;

#[test]
fn every_numeric_type_works_on_every_numeric_prefix() {
    let h = Harness::manual();
    h.run(|| {
        macro_rules! all_types {
            ($field:literal) => {
                info!($field = 1u8, t = "u8");
                info!($field = 2u16, t = "u16");
                info!($field = 3u32, t = "u32");
                info!($field = 4u64, t = "u64");
                info!($field = 5u128, t = "u128");
                info!($field = 6usize, t = "usize");
                info!($field = 7i8, t = "i8");
                info!($field = 8i16, t = "i16");
                info!($field = 9i32, t = "i32");
                info!($field = 10i64, t = "i64");
                info!($field = 11i128, t = "i128");
                info!($field = 12isize, t = "isize");
                info!($field = 13.0f32, t = "f32");
                info!($field = 14.5f64, t = "f64");
                info!($field = 15, t = "literal");
            };
        }
        all_types!("monotonic_counter.m");
        all_types!("counter.c");
        all_types!("gauge.g");
        all_types!("histogram.h");
        all_types!("distribution.d");
        all_types!("timing.t");
    });
    h.flush();
    let expected = [
        ("u8", 1.0),
        ("u16", 2.0),
        ("u32", 3.0),
        ("u64", 4.0),
        ("u128", 5.0),
        ("usize", 6.0),
        ("i8", 7.0),
        ("i16", 8.0),
        ("i32", 9.0),
        ("i64", 10.0),
        ("i128", 11.0),
        ("isize", 12.0),
        ("f32", 13.0),
        ("f64", 14.5),
        ("literal", 15.0),
    ];
    for (ty, value) in expected {
        assert_eq!(h.capture.counter("m", &[("t", ty)]), value, "monotonic_counter {ty}");
        assert_eq!(h.capture.counter("c", &[("t", ty)]), value, "counter {ty}");
        for name in ["g", "h", "d", "t"] {
            let records: Vec<_> = h
                .capture
                .named(name)
                .into_iter()
                .filter(|r| crate::support::has_tags(r, &[("t", ty)]))
                .collect();
            assert_eq!(records.len(), 1, "{name} {ty}");
            match records[0].value() {
                MetricValue::Gauge(g) => assert_eq!((g.last, g.count), (value, 1)),
                MetricValue::Distribution(d) => assert_eq!((d.sum, d.count), (value, 1)),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert_eq!(
        h.guard.stats().total_dropped(),
        0,
        "{:?}",
        h.guard.stats().drops().collect::<Vec<_>>()
    );
}

#[test]
fn kinds_units_and_monotonicity_follow_the_prefix() {
    let h = Harness::manual();
    h.run(|| {
        info!(monotonic_counter.a = 1);
        info!(counter.b = -1);
        info!(gauge.c = 1);
        info!(histogram.d = 1);
        info!(distribution.e = 1);
        info!(timing.f = 1);
        info!(set.g = 1);
        info!("distribution.payload@byte" = 512);
        info!("timing.io@second" = 2);
    });
    h.flush();
    let kind = |name: &str| {
        let r = &h.capture.named(name)[0];
        (r.kind(), r.is_monotonic(), r.unit().map(str::to_owned))
    };
    assert_eq!(kind("a"), (MetricKind::Counter, true, None));
    assert_eq!(kind("b"), (MetricKind::Counter, false, None));
    assert_eq!(kind("c"), (MetricKind::Gauge, false, None));
    assert_eq!(kind("d"), (MetricKind::Distribution, false, None));
    assert_eq!(kind("e"), (MetricKind::Distribution, false, None));
    assert_eq!(kind("f"), (MetricKind::Distribution, false, Some("millisecond".into())));
    assert_eq!(kind("g"), (MetricKind::Set, false, None));
    assert_eq!(kind("payload"), (MetricKind::Distribution, false, Some("byte".into())));
    assert_eq!(kind("io"), (MetricKind::Distribution, false, Some("second".into())));
}

#[test]
fn other_fields_become_tags_except_message_and_error() {
    let h = Harness::manual();
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Region(&'static str);
    let region = Region("eu");
    let reason = std::io::Error::other("boom");
    h.run(|| {
        info!(
            monotonic_counter.requests = 1,
            route = "/users",
            status = 200u16,
            retried = false,
            ratio = 0.5,
            region = ?region,
            code = %404,
            tags.team = "core",
            error = &reason as &dyn std::error::Error,
            "handled {}",
            "request"
        );
    });
    h.flush();
    assert_eq!(
        h.capture.series_of("requests"),
        vec![vec![
            ("code".into(), "404".into()),
            ("ratio".into(), "0.5".into()),
            ("region".into(), "Region(\"eu\")".into()),
            ("retried".into(), "false".into()),
            ("route".into(), "/users".into()),
            ("status".into(), "200".into()),
            ("team".into(), "core".into()),
        ]]
    );
}

#[test]
fn tags_are_a_set_field_order_and_value_types_do_not_make_new_series() {
    let h = Harness::manual();
    h.run(|| {
        info!(monotonic_counter.hits = 1, route = "/a", status = 200);
        info!(monotonic_counter.hits = 1, status = 200, route = "/a");
        info!(status = "200", monotonic_counter.hits = 1, route = "/a");
        info!(route = "/a", monotonic_counter.hits = 1, status = 200u64);
    });
    h.flush();
    assert_eq!(h.capture.named("hits").len(), 1);
    assert_eq!(h.capture.counter_exact("hits", &[("route", "/a"), ("status", "200")]), 4);
}

#[test]
fn invalid_values_are_dropped_and_counted_by_reason() {
    let h = Harness::manual();
    h.run(|| {
        info!(gauge.g = f64::NAN);
        info!(gauge.g = f64::INFINITY);
        info!(distribution.d = f64::NEG_INFINITY);
        info!(counter.c = f64::NAN);
        info!(monotonic_counter.m = -1);
        info!(monotonic_counter.m = -0.5);
        info!(monotonic_counter.m = i128::MIN);
        info!(monotonic_counter.m = "7");
        info!(counter.c = true);
        info!(gauge.g = ?Some(1));
        info!(set.s = 1.5);
        info!(monotonic_counter.m = 2); // the one valid value
    });
    h.flush();
    let stats = h.guard.stats();
    assert_eq!(stats.dropped(DropReason::NonFinite), 4);
    assert_eq!(stats.dropped(DropReason::NegativeMonotonic), 3);
    assert_eq!(stats.dropped(DropReason::InvalidType), 4);
    assert_eq!(h.capture.counter("m", &[]), 2.0);
    assert!(h.capture.named("g").is_empty());
    assert!(h.capture.named("d").is_empty());
    // The drops are also exported as self-metrics.
    let dropped: f64 = h
        .capture
        .self_metrics()
        .iter()
        .filter(|r| r.name() == "tally.dropped")
        .map(|r| match r.value() {
            MetricValue::Counter(c) => c.sum(),
            _ => 0.0,
        })
        .sum();
    assert_eq!(dropped, 11.0);
}

#[test]
fn large_integers_take_the_float_path_and_stay_accurate() {
    let h = Harness::manual();
    h.run(|| {
        info!(monotonic_counter.big = u64::MAX);
        info!(monotonic_counter.big = u128::from(u64::MAX) + 1);
        info!(counter.small = i64::MIN);
        info!(counter.small = i64::MIN);
    });
    h.flush();
    assert_eq!(h.capture.counter("big", &[]), 2.0 * 18_446_744_073_709_551_616.0);
    assert_eq!(h.capture.counter("small", &[]), -2.0 * 9_223_372_036_854_775_808.0);
}

#[test]
fn invalid_metric_names_are_sanitized_or_ignored_and_counted() {
    let h = Harness::manual();
    h.run(|| {
        info!("counter.a b/c" = 1);
        info!("counter." = 1, route = "/x");
        info!(monotonic_counter.ok = 1, route = "/x");
    });
    h.flush();
    assert_eq!(h.capture.counter("a_b_c", &[]), 1.0);
    assert_eq!(h.guard.stats().dropped(DropReason::InvalidName), 2);
    assert_eq!(h.capture.counter("ok", &[("route", "/x")]), 1.0);
}

#[test]
fn long_tag_values_are_cut_and_counted() {
    let h = Harness::manual();
    let long = "x".repeat(500);
    let longer = format!("{long}-and-more");
    h.run(|| {
        info!(monotonic_counter.c = 1, v = long.as_str());
        // The same first 200 bytes: the same series.
        info!(monotonic_counter.c = 1, v = longer.as_str());
    });
    h.flush();
    let records = h.capture.named("c");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tags()[0].value().len(), tracing_tally::fields::MAX_TAG_VALUE_LEN);
    assert_eq!(h.capture.counter("c", &[]), 2.0);
    assert_eq!(h.guard.stats().truncated_tags, 1);
}

#[test]
fn sets_count_unique_strings_and_integers() {
    let h = Harness::manual();
    h.run(|| {
        for i in 0..50u64 {
            info!(set.users = i % 10);
            info!(set.users = format!("{}", i % 10).as_str()); // "3" and 3 are the same member
            info!(set.names = %format!("user-{}", i % 7));
        }
    });
    h.flush();
    let unique = |name: &str| match h.capture.named(name)[0].value() {
        MetricValue::Set(s) => s.unique,
        other => panic!("{other:?}"),
    };
    assert_eq!(unique("users"), 10);
    assert_eq!(unique("names"), 7);
}

#[test]
fn several_metrics_in_one_event_share_its_tags() {
    let h = Harness::manual();
    h.run(|| {
        info!(monotonic_counter.requests = 1, histogram.latency = 12.5, route = "/x");
    });
    h.flush();
    assert_eq!(h.capture.counter("requests", &[("route", "/x")]), 1.0);
    assert_eq!(h.capture.series_of("latency"), vec![vec![("route".into(), "/x".into())]]);
}

#[test]
fn global_tags_are_attached_at_export() {
    let h = Harness::new(
        tracing_tally::Tally::builder()
            .manual()
            .service("api")
            .environment("prod")
            .release("api@1.0")
            .tag("team", "core"),
    );
    h.run(|| info!(monotonic_counter.x = 1, service = "override"));
    h.flush();
    let batch = h.capture.batches().into_iter().find(|b| !b.metrics().is_empty()).unwrap();
    let globals: Vec<_> = batch.global_tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(
        globals,
        vec![("environment", "prod"), ("release", "api@1.0"), ("service", "api"), ("team", "core")]
    );
    let record = batch.metrics().iter().find(|r| r.name() == "x").unwrap();
    assert!(batch.merged_tags(record).contains(&("service", "override")));
}
