//! Traces: sampling at the root, transactions with their spans, propagation, sessions.

use std::time::Duration;

use tracing::{error, info, info_span};
use tracing_tally::sink::{SessionStatus, SpanStatus, Transaction};
use tracing_tally::{DropReason, Tally};

use crate::support::Harness;

fn transactions(h: &Harness) -> Vec<Transaction> {
    h.capture.batches().iter().flat_map(|b| b.transactions().to_vec()).collect()
}

#[test]
fn a_sampled_root_becomes_a_transaction_with_its_children() {
    let h = Harness::new(Tally::builder().manual().traces_sample_rate(1.0));
    h.run(|| {
        let root = info_span!("request", route = "/users");
        let _r = root.enter();
        let db = info_span!("db", table = "users");
        {
            let _d = db.enter();
            info_span!("row").in_scope(|| {});
            error!("query failed");
        }
        drop(db);
        info_span!("render").in_scope(|| {});
    });
    h.flush();
    let txs = transactions(&h);
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.root.name, "request");
    assert_eq!(tx.root.parent_span_id, None);
    assert_eq!(tx.root.status, SpanStatus::Ok);
    assert!(tx.sampling.sampled && tx.sampling.sample_rate == 1.0);
    let names: Vec<_> = tx.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["row", "db", "render"], "children in the order they closed");
    let by_name = |n: &str| tx.spans.iter().find(|s| s.name == n).unwrap();
    assert_eq!(by_name("db").parent_span_id, Some(tx.root.span_id));
    assert_eq!(by_name("row").parent_span_id, Some(by_name("db").span_id));
    assert_eq!(by_name("db").status, SpanStatus::InternalError, "an error inside the span");
    assert_eq!(by_name("render").status, SpanStatus::Ok);
    assert_eq!(
        by_name("db").fields,
        vec![("table", tracing_tally::sink::FieldValue::Str("users".into()))]
    );
    for span in &tx.spans {
        assert!(span.start >= tx.root.start && span.end <= tx.root.end && span.start <= span.end);
    }
    // The error carries the same trace id.
    let e = &h.capture.errors()[0];
    assert_eq!(e.trace_id, Some(tx.trace_id));
    assert_eq!(e.span_id, Some(by_name("db").span_id));
}

#[test]
fn unsampled_traces_send_nothing_but_keep_their_trace_id() {
    let h = Harness::new(Tally::builder().manual().traces_sample_rate(0.0));
    h.run(|| {
        info_span!("request").in_scope(|| {
            info_span!("child").in_scope(|| error!("boom"));
        })
    });
    h.flush();
    assert!(transactions(&h).is_empty());
    let e = &h.capture.errors()[0];
    assert!(e.trace_id.is_some());
    // Timings are still recorded for unsampled spans.
    assert_eq!(h.capture.named("span.duration").len(), 2);
}

#[test]
fn traces_are_off_without_a_sample_rate() {
    let h = Harness::manual();
    h.run(|| info_span!("request").in_scope(|| {}));
    h.flush();
    assert!(transactions(&h).is_empty());
}

#[test]
fn span_limits_and_durations_bound_a_transaction() {
    let h = Harness::new(
        Tally::builder()
            .manual()
            .traces_sample_rate(1.0)
            .max_spans(3)
            // Far above what an empty span takes, even on a loaded machine.
            .min_span_duration(Duration::from_millis(20)),
    );
    h.run(|| {
        info_span!("root").in_scope(|| {
            for _ in 0..3 {
                info_span!("fast").in_scope(|| {});
            }
            for _ in 0..5 {
                info_span!("slow").in_scope(|| std::thread::sleep(Duration::from_millis(25)));
            }
        })
    });
    h.flush();
    let tx = &transactions(&h)[0];
    assert_eq!(tx.spans.len(), 3);
    assert!(tx.spans.iter().all(|s| s.name == "slow"), "short spans are left out");
    assert_eq!(tx.dropped_spans, 2);
}

#[test]
fn special_fields_name_describe_and_set_status() {
    let h = Harness::new(Tally::builder().manual().traces_sample_rate(1.0));
    h.run(|| {
        let root = info_span!("handler", sentry.name = "GET /users/:id", sentry.op = "http.server");
        root.in_scope(|| {
            info_span!(
                "q",
                sentry.op = "db.query",
                sentry.description = "SELECT 1",
                otel.status_code = "ERROR"
            )
            .in_scope(|| {});
            let late = info_span!(
                "lookup",
                otel.name = tracing::field::Empty,
                sentry.status = tracing::field::Empty
            );
            late.record("otel.name", "cache lookup");
            late.record("sentry.status", "not_found");
            late.in_scope(|| {});
        })
    });
    h.flush();
    let tx = &transactions(&h)[0];
    assert_eq!((tx.root.name.as_str(), tx.root.op.as_str()), ("GET /users/:id", "http.server"));
    let q = &tx.spans[0];
    assert_eq!(
        (q.op.as_str(), q.description.as_deref(), q.status),
        ("db.query", Some("SELECT 1"), SpanStatus::InternalError)
    );
    assert!(q.fields.is_empty(), "special fields are not span data");
    let lookup = &tx.spans[1];
    assert_eq!((lookup.name.as_str(), lookup.status), ("cache lookup", SpanStatus::NotFound));
}

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const PARENT: &str = "b0e6f15b45c36b12";

#[test]
fn incoming_headers_continue_the_trace_and_its_decision() {
    let h = Harness::new(Tally::builder().manual().traces_sample_rate(0.0));
    let header = format!("{TRACE}-{PARENT}-1");
    let baggage = format!("sentry-trace_id={TRACE},sentry-sample_rand=0.123456,sentry-sample_rate=0.5,sentry-release=up");
    h.run(|| {
        info_span!("request", sentry.trace = header.as_str(), baggage = baggage.as_str())
            .in_scope(|| {})
    });
    h.flush();
    let tx = &transactions(&h)[0];
    assert_eq!(tx.trace_id.to_string(), TRACE);
    assert_eq!(tx.root.parent_span_id.map(|s| s.to_string()).as_deref(), Some(PARENT));
    assert!(tx.sampling.sampled, "the upstream decision wins over the local rate");
    assert_eq!((tx.sampling.sample_rand, tx.sampling.sample_rate), (0.123456, 0.5));
    let baggage = tx.upstream_baggage.as_ref().unwrap();
    assert!(baggage.iter().any(|(k, v)| k == "release" && v == "up"));
    assert!(tx.root.fields.is_empty(), "propagation fields are not span data");

    let h = Harness::new(Tally::builder().manual().traces_sample_rate(1.0));
    let declined = format!("00-{TRACE}-{PARENT}-00");
    h.run(|| info_span!("request", traceparent = declined.as_str()).in_scope(|| error!("e")));
    h.flush();
    assert!(transactions(&h).is_empty(), "an upstream 'not sampled' is kept");
    assert_eq!(h.capture.errors()[0].trace_id.map(|t| t.to_string()).as_deref(), Some(TRACE));
}

#[test]
fn a_sampler_decides_per_root() {
    let h = Harness::new(Tally::builder().manual().traces_sampler(|cx| {
        if cx.metadata.name() == "keep" {
            1.0
        } else {
            0.0
        }
    }));
    h.run(|| {
        info_span!("keep").in_scope(|| {});
        info_span!("drop").in_scope(|| {});
    });
    h.flush();
    let txs = transactions(&h);
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].root.name, "keep");
}

#[test]
fn outgoing_headers_carry_the_trace() {
    let h = Harness::new(
        Tally::builder().manual().traces_sample_rate(1.0).release("api@1.0").environment("prod"),
    );
    let headers = h.run(|| {
        let root = info_span!("request");
        let _r = root.enter();
        let call = info_span!("call");
        let headers = tracing_tally::propagation::trace_headers(&call).unwrap();
        (headers, root.id())
    });
    let (headers, _) = headers;
    let parts: Vec<_> = headers.sentry_trace().split('-').collect();
    assert_eq!((parts[0].len(), parts[1].len(), parts[2]), (32, 16, "1"));
    assert_eq!(headers.traceparent(), format!("00-{}-{}-01", parts[0], parts[1]));
    let baggage = headers.baggage().unwrap();
    for expected in [
        format!("sentry-trace_id={}", parts[0]),
        "sentry-sampled=true".to_owned(),
        "sentry-sample_rate=1".to_owned(),
        "sentry-release=api%401.0".to_owned(),
        "sentry-environment=prod".to_owned(),
        "sentry-transaction=request".to_owned(),
    ] {
        assert!(baggage.contains(&expected), "{expected} not in {baggage}");
    }
    let rand = baggage.split(',').find_map(|e| e.strip_prefix("sentry-sample_rand=")).unwrap();
    assert_eq!(rand.split('.').nth(1).map(str::len), Some(6), "six decimals: {rand}");
    // Without trace recording, headers still carry the (root's) trace id, without a decision.
    let plain = Harness::manual();
    let headers = plain.run(|| {
        let root = info_span!("root");
        let _r = root.enter();
        tracing_tally::propagation::trace_headers(&info_span!("child")).unwrap()
    });
    assert_eq!(headers.sentry_trace().split('-').count(), 2);
    assert!(headers.baggage().is_none());
}

#[test]
fn spans_closing_after_their_root_are_counted_late() {
    let h = Harness::new(Tally::builder().manual().traces_sample_rate(1.0));
    let child = h.run(|| {
        let root = info_span!("root");
        let child = root.in_scope(|| info_span!("outlives its root"));
        drop(root);
        child
    });
    // The root is still referenced by its child: closing happens when the child drops.
    h.run(move || drop(child));
    h.flush();
    let txs = transactions(&h);
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].spans.len(), 1, "a parent stays open while a child refers to it");
    assert_eq!(h.guard.stats().dropped(DropReason::LateSpan), 0);
}

#[test]
fn the_process_session_starts_and_ends_with_the_pipeline() {
    let h = Harness::new(Tally::builder().manual().release("app@2.0").environment("test"));
    h.run(|| error!("one error"));
    h.flush();
    let capture = h.capture.clone();
    drop(h.guard);
    let updates: Vec<_> = capture.batches().iter().flat_map(|b| b.sessions().to_vec()).collect();
    assert_eq!(updates.len(), 2);
    assert!(updates[0].init && updates[0].status == SessionStatus::Ok);
    assert!(!updates[1].init && updates[1].status == SessionStatus::Exited);
    assert_eq!(updates[1].errors, 1);
    assert_eq!(updates[0].sid, updates[1].sid);
    assert_eq!(
        (updates[1].release.as_str(), updates[1].environment.as_deref()),
        ("app@2.0", Some("test"))
    );
    assert_eq!(capture.counter("sessions", &[("mode", "application"), ("status", "errored")]), 1.0);

    let no_release = Harness::manual();
    no_release.run(|| info!(monotonic_counter.x = 1));
    no_release.flush();
    let capture = no_release.capture.clone();
    drop(no_release.guard);
    let batches = capture.batches();
    assert!(!batches.is_empty(), "the flush and the final flush exported");
    assert_eq!(capture.counter("x", &[]), 1.0);
    assert!(batches.iter().all(|b| b.sessions().is_empty()), "no release, no session");
}

#[test]
fn request_sessions_are_counted_by_outcome() {
    let h = Harness::new(Tally::builder().manual().request_sessions(["request"]));
    h.run(|| {
        for i in 0..5 {
            info_span!("request").in_scope(|| {
                if i % 2 == 0 {
                    error!("failed");
                }
            });
        }
        info_span!("other").in_scope(|| {});
    });
    h.flush();
    assert_eq!(h.capture.counter("sessions", &[("mode", "request"), ("status", "errored")]), 3.0);
    assert_eq!(h.capture.counter("sessions", &[("mode", "request"), ("status", "exited")]), 2.0);
}
