//! Spans: durations, span tags, busy/idle time, span filter.

use std::time::Duration;

use tracing::{debug_span, info, info_span, instrument, trace_span};
use tracing_subscriber::filter::LevelFilter;
use tracing_tally::sink::MetricValue;
use tracing_tally::Tally;

use crate::support::Harness;

fn durations(h: &Harness, span: &str) -> (u64, f64, f64) {
    let mut count = 0;
    let (mut min, mut max) = (f64::INFINITY, 0f64);
    for r in h.capture.named("span.duration") {
        if r.tags().iter().any(|t| t.key() == "span" && t.value() == span) {
            let MetricValue::Distribution(d) = r.value() else { panic!("not a distribution") };
            count += d.count;
            min = min.min(d.min);
            max = max.max(d.max);
        }
    }
    (count, min, max)
}

#[instrument]
fn handler(id: u64) {
    std::thread::sleep(Duration::from_millis(2));
}

#[test]
fn closed_spans_record_their_duration_in_milliseconds() {
    let h = Harness::manual();
    let open = h.run(|| {
        for id in 0..5 {
            handler(id);
        }
        info_span!("open")
    });
    h.flush(); // `open` is still open: not recorded
    drop(open);
    let (count, min, _) = durations(&h, "handler");
    assert_eq!(count, 5);
    assert!(min >= 2.0, "slept 2 ms, recorded {min} ms");
    assert_eq!(durations(&h, "open").0, 0);
    let record = &h.capture.named("span.duration")[0];
    assert_eq!(record.unit(), Some("millisecond"));
}

#[test]
fn span_level_and_filter_choose_the_timed_spans() {
    let h = Harness::new(
        Tally::builder()
            .manual()
            .span_level(LevelFilter::DEBUG)
            .span_filter(|meta| meta.name() != "skipped"),
    );
    h.run(|| {
        debug_span!("debug").in_scope(|| {});
        trace_span!("trace").in_scope(|| {});
        info_span!("skipped").in_scope(|| {});
        info_span!("kept").in_scope(|| {});
    });
    h.flush();
    assert_eq!(durations(&h, "debug").0, 1);
    assert_eq!(durations(&h, "trace").0, 0);
    assert_eq!(durations(&h, "skipped").0, 0);
    assert_eq!(durations(&h, "kept").0, 1);
}

#[test]
fn configured_span_fields_tag_span_timings_and_events_inside() {
    let h = Harness::new(Tally::builder().manual().span_tags(["route", "tenant"]));
    h.run(|| {
        let outer =
            info_span!("request", route = "/users", tenant = tracing::field::Empty, other = 1);
        let _o = outer.enter();
        let inner = info_span!("db");
        let _i = inner.enter();
        outer.record("tenant", "acme");
        info!(monotonic_counter.queries = 1);
        info!(monotonic_counter.queries = 1, route = "/override");
    });
    h.flush();
    assert_eq!(h.capture.counter("queries", &[("route", "/users")]), 1.0);
    assert_eq!(h.capture.counter("queries", &[("route", "/override")]), 1.0);
    let mut series = h.capture.series_of("span.duration");
    series.sort();
    assert_eq!(
        series,
        vec![
            vec![("route".into(), "/users".into()), ("span".into(), "db".into())],
            vec![
                ("route".into(), "/users".into()),
                ("span".into(), "request".into()),
                ("tenant".into(), "acme".into())
            ],
        ],
        "the child inherits route (set at its creation); the parent also has tenant, recorded later"
    );
}

#[test]
fn busy_and_idle_time_are_optional() {
    let h = Harness::new(Tally::builder().manual().busy_idle(true));
    h.run(|| {
        let span = info_span!("work");
        for _ in 0..2 {
            let _e = span.enter();
            std::thread::sleep(Duration::from_millis(3));
        }
        std::thread::sleep(Duration::from_millis(3));
    });
    h.flush();
    let total = |name: &str| -> f64 {
        h.capture
            .named(name)
            .iter()
            .map(|r| match r.value() {
                MetricValue::Distribution(d) => d.sum,
                _ => 0.0,
            })
            .sum()
    };
    assert!(total("span.busy") >= 6.0, "busy {}", total("span.busy"));
    assert!(total("span.idle") >= 3.0, "idle {}", total("span.idle"));
    assert!(total("span.duration") >= total("span.busy") + 3.0);

    let plain = Harness::manual();
    plain.run(|| info_span!("work").in_scope(|| {}));
    plain.flush();
    assert!(plain.capture.named("span.busy").is_empty());
}

#[test]
fn spans_crossing_threads_are_timed_once() {
    let h = Harness::manual();
    let span = h.run(|| info_span!("moved"));
    let dispatch = h.dispatch.clone();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            let _e = span.enter();
            drop(_e);
            drop(span);
        })
    })
    .join()
    .unwrap();
    h.flush();
    assert_eq!(durations(&h, "moved").0, 1);
}
