//! Faults injected at the receiver: what is retried, split or dropped, and how it is counted.

use serde_json::json;
use tracing::{error, info};
use tracing_tally::DropReason;

use crate::shared::Receiver;
use crate::{check, options, pipeline, series, WAIT};

fn hits(n: u64) {
    for shard in 0..n {
        info!(monotonic_counter.hits = 1, shard);
    }
}

#[test]
fn a_server_error_or_a_closed_connection_is_retried() {
    for fault in [json!({ "status": 503, "times": 1 }), json!({ "close": true, "times": 1 })] {
        let receiver = Receiver::start();
        receiver.behave(fault.clone());
        let (dispatch, guard) = pipeline(options(&receiver));
        tracing::dispatcher::with_default(&dispatch, || hits(10));
        assert!(guard.flush(WAIT), "{fault}");
        check(&receiver, &["v2-series"], true);
        let received = receiver.received();
        assert!(!received[0].answered_ok(), "{fault}");
        assert_eq!(series(&received).len(), 10, "{fault}: delivered once, after the retry");
        assert_eq!(guard.stats().dropped(DropReason::SinkError), 0);
    }
}

#[test]
fn a_rate_limit_is_waited_out() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 429, "headers": { "Retry-After": "1" }, "times": 1 }));
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || hits(5));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received[0].0["answered"], 429);
    assert_eq!(series(&received).len(), 5);
}

#[test]
fn a_too_large_payload_is_split_and_delivered() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 413, "times": 1 }));
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || hits(300));
    assert!(guard.flush(WAIT));
    check(&receiver, &["v2-series"], true);
    let received = receiver.received();
    assert_eq!(received[0].0["answered"], 413);
    let accepted =
        received.iter().filter(|r| r.path() == "/api/v2/series" && r.answered_ok()).count();
    assert_eq!(accepted, 2, "two halves");
    assert_eq!(series(&received).len(), 300);
}

#[test]
fn a_refused_payload_is_dropped_and_counted_not_retried() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 400, "times": 1 }));
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || hits(4));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received.len(), 1, "no retry of a 400: {received:?}");
    assert_eq!(guard.stats().dropped(DropReason::SinkError), 4, "one per series");
    // The next interval goes through.
    tracing::dispatcher::with_default(&dispatch, || hits(2));
    assert!(guard.flush(WAIT));
    assert_eq!(series(&receiver.received()).len(), 2);
}

#[test]
fn a_slow_intake_never_makes_an_event_arrive_twice() {
    let receiver = Receiver::start();
    // Longer than the request timeout: the intake may have processed the event.
    receiver.behave(json!({ "delay": 4.0, "times": 1 }));
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || error!("only once"));
    assert!(guard.flush(WAIT));
    let events = receiver.received().iter().filter(|r| r.path() == "/api/v1/events").count();
    assert_eq!(events, 1, "not retried after a timeout");
    assert_eq!(guard.stats().dropped(DropReason::SinkError), 1, "counted as lost");
}
