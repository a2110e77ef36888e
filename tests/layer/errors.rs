//! Error capture: message, fields, chain, spans, breadcrumbs, limits.

use std::error::Error;
use std::fmt;

use tracing::{debug, error, info, info_span, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_tally::sink::FieldValue;
use tracing_tally::{DropReason, Tally};

use crate::support::Harness;

#[derive(Debug)]
struct Outer(std::io::Error);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading the profile failed")
    }
}

impl Error for Outer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_events_are_captured_with_chain_fields_spans_and_breadcrumbs() {
    let h = Harness::new(Tally::builder().manual().span_tags(["route"]));
    let err = Outer(std::io::Error::other("disk on fire"));
    h.run(|| {
        info!("starting up");
        debug!("too verbose for a breadcrumb");
        warn!(attempt = 2, "retrying");
        info!(monotonic_counter.requests = 1); // metric events are not breadcrumbs
        let request = info_span!("request", route = "/profile", user = 42);
        let _r = request.enter();
        let load = info_span!("load", table = "profiles");
        let _l = load.enter();
        error!(error = &err as &dyn Error, user_id = 42, tags.severity = "high", "request failed");
    });
    h.flush();
    let errors = h.capture.errors();
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(e.message.as_deref(), Some("request failed"));
    assert_eq!(e.error_chain, vec!["loading the profile failed", "disk on fire"]);
    assert_eq!(e.fields, vec![("user_id", FieldValue::I64(42))]);
    assert_eq!(e.level(), tracing::Level::ERROR);
    assert!(e.target().ends_with("errors"), "{}", e.target());
    let spans: Vec<_> = e.spans.iter().map(|s| s.name).collect();
    assert_eq!(spans, vec!["load", "request"], "innermost first");
    assert_eq!(e.spans[0].fields, vec![("table", FieldValue::Str("profiles".into()))]);
    assert_eq!(
        e.spans[1].fields,
        vec![("route", FieldValue::Str("/profile".into())), ("user", FieldValue::I64(42))]
    );
    assert_eq!(e.span_id, Some(e.spans[0].span_id));
    assert!(e.trace_id.is_some());
    let tags: Vec<_> = e.tags.iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, vec![("route", "/profile"), ("severity", "high")]);
    let crumbs: Vec<_> = e.breadcrumbs.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(crumbs, vec!["starting up", "retrying"]);
    assert_eq!(e.breadcrumbs[1].fields, vec![("attempt", FieldValue::I64(2))]);
}

#[test]
fn events_in_one_trace_share_its_trace_id() {
    let h = Harness::manual();
    h.run(|| {
        let root = info_span!("root");
        let _r = root.enter();
        error!("first");
        info_span!("child").in_scope(|| error!("second"));
        drop(_r);
        info_span!("other root").in_scope(|| error!("third"));
    });
    h.flush();
    let errors = h.capture.errors();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].trace_id, errors[1].trace_id);
    assert_ne!(errors[0].trace_id, errors[2].trace_id);
    assert_ne!(errors[0].span_id, errors[1].span_id);
}

#[test]
fn displayed_errors_and_fingerprints_are_kept() {
    let h = Harness::manual();
    h.run(|| error!(error = %"plain text error", fingerprint = "db-timeout", "failed"));
    h.flush();
    let e = &h.capture.errors()[0];
    assert_eq!(e.error_chain, vec!["plain text error"]);
    assert_eq!(e.fingerprint.as_deref(), Some("db-timeout"));
    assert!(e.fields.is_empty());
}

#[test]
fn error_level_is_configurable() {
    let h = Harness::new(Tally::builder().manual().error_level(LevelFilter::WARN));
    h.run(|| {
        warn!("a warning");
        info!("not an error");
    });
    h.flush();
    assert_eq!(h.capture.errors().len(), 1);

    let off = Harness::new(Tally::builder().manual().error_level(LevelFilter::OFF));
    off.run(|| error!("ignored"));
    off.flush();
    assert!(off.capture.errors().is_empty());
}

#[test]
fn an_error_storm_is_rate_limited_per_callsite() {
    let h = Harness::new(Tally::builder().manual().error_rate_limit(1, 5));
    h.run(|| {
        for i in 0..100 {
            error!(i, "storm");
        }
        error!("another callsite");
    });
    h.flush();
    let errors = h.capture.errors();
    assert_eq!(errors.iter().filter(|e| e.message.as_deref() == Some("storm")).count(), 5);
    assert_eq!(
        errors.iter().filter(|e| e.message.as_deref() == Some("another callsite")).count(),
        1
    );
    assert_eq!(h.guard.stats().dropped(DropReason::RateLimited), 95);
}

#[test]
fn a_full_capture_queue_drops_and_counts() {
    let h = Harness::new(Tally::builder().manual().error_queue(3).error_rate_limit(1000, 1000));
    h.run(|| {
        for _ in 0..10 {
            error!("queued");
        }
    });
    h.flush();
    assert_eq!(h.capture.errors().len(), 3);
    let stats = h.guard.stats();
    assert_eq!(stats.dropped(DropReason::QueueFull), 7);
    assert_eq!(stats.errors_captured, 3);
}

#[test]
fn breadcrumbs_keep_the_last_n_of_each_thread() {
    let h = Harness::new(Tally::builder().manual().breadcrumbs(3, LevelFilter::INFO));
    h.run(|| {
        for i in 0..10 {
            info!(i, "step");
        }
        error!("boom");
    });
    h.flush();
    let e = &h.capture.errors()[0];
    let steps: Vec<_> = e.breadcrumbs.iter().map(|b| b.fields[0].1.clone()).collect();
    assert_eq!(steps, vec![FieldValue::I64(7), FieldValue::I64(8), FieldValue::I64(9)]);
}
