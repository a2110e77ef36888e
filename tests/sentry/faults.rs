//! Faults injected at the receiver: rate limits, server errors, slow and dropped connections,
//! a full queue. Every loss shows up in a client report with the reason Sentry expects.

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{error, info};
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::{DropReason, Tally};

use crate::peers::{check, discarded, Envelope, Received, Receiver};
use crate::pipeline;

const WAIT: Duration = Duration::from_secs(15);
/// How late a flush may return past its deadline on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);

fn options(receiver: &Receiver) -> SentryOptions {
    SentryOptions::new(&receiver.dsn())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1))
}

/// Envelopes the receiver accepted.
fn accepted(received: &[Received]) -> Vec<Envelope> {
    received.iter().filter(|r| r.answered_ok()).map(Received::envelope).collect()
}

fn quantity(received: &[Received], reason: &str, category: &str) -> u64 {
    discarded(&accepted(received), reason, category)
}

fn messages(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| r.answered_ok())
        .filter_map(|r| r.envelope().json("event"))
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_rate_limit_holds_back_its_category_and_reports_what_it_dropped() {
    let receiver = Receiver::start();
    receiver.behave(json!({
        "status": 429,
        "headers": { "X-Sentry-Rate-Limits": "60:error:key", "Retry-After": "60" },
        "times": 1,
    }));
    let builder = Tally::builder().manual().sentry_options(options(&receiver));
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || error!("first"));
    assert!(guard.flush(WAIT));
    tracing::dispatcher::with_default(&dispatch, || {
        error!("second");
        error!("third");
        info!(counter.jobs = 1);
    });
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received[0].0["answered"], 429);
    assert_eq!(
        received.iter().filter(|r| r.envelope().json("event").is_some()).count(),
        1,
        "only the first error went out: {received:?}"
    );
    // Metrics are another category: still sent.
    assert!(received.iter().any(|r| r.envelope().types().contains(&"trace_metric".to_owned())));
    // The 429 itself is counted by Relay; the two held back are ours to report.
    assert_eq!(quantity(&received, "ratelimit_backoff", "error"), 2, "{received:?}");
    for r in received.iter().filter(|r| r.answered_ok()) {
        check(&r.body());
    }
    drop(guard);
}

#[test]
fn a_server_error_is_retried_and_delivered_once() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 503, "times": 1 }));
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options(&receiver)));
    tracing::dispatcher::with_default(&dispatch, || error!("retry me"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].0["answered"], 503);
    assert!(received[1].answered_ok());
    let id = |r: &Received| r.envelope().header["event_id"].clone();
    assert_eq!(id(&received[0]), id(&received[1]), "the same envelope again");
    assert_eq!(messages(&received), ["retry me"]);
    drop(guard);
}

#[test]
fn a_dropped_connection_is_retried() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "close": true, "times": 1 }));
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options(&receiver)));
    tracing::dispatcher::with_default(&dispatch, || error!("after reconnect"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received[0].0["answered"], "closed");
    assert_eq!(messages(&received), ["after reconnect"]);
    drop(guard);
}

#[test]
fn persistent_server_errors_give_up_after_the_retries_and_report_send_error() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 500, "times": 3 }));
    let options = options(&receiver).max_retries(2);
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options));
    tracing::dispatcher::with_default(&dispatch, || error!("lost"));
    assert!(guard.flush(WAIT));
    tracing::dispatcher::with_default(&dispatch, || error!("later"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received.iter().filter(|r| r.0["answered"] == 500).count(), 3, "1 try + 2 retries");
    assert_eq!(messages(&received), ["later"]);
    assert_eq!(quantity(&received, "send_error", "error"), 1, "{received:?}");
    drop(guard);
}

#[test]
fn a_too_large_envelope_is_dropped_not_retried() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "status": 413, "times": 1 }));
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options(&receiver)));
    tracing::dispatcher::with_default(&dispatch, || error!("too big"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received.len(), 2, "the 413, then the client report alone: {received:?}");
    assert_eq!(quantity(&received, "send_error", "error"), 1);
    check(&received[1].body());
    drop(guard);
}

#[test]
fn a_slow_server_is_not_retried_and_flush_keeps_its_deadline() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "delay": 3.0, "times": 1 }));
    let request_timeout = Duration::from_millis(500);
    let options = options(&receiver).timeout(request_timeout);
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options));
    tracing::dispatcher::with_default(&dispatch, || error!("slow"));
    // The reply takes 3 s; the request gives up after 500 ms and is not retried, so the flush
    // is done well before the reply (and before the default 2 s shutdown timeout).
    let started = Instant::now();
    assert!(guard.flush(Duration::from_secs(3)));
    let took = started.elapsed();
    assert!(took < request_timeout + SLACK, "the flush took {took:?}");
    // A flush with a deadline shorter than the request returns by that deadline.
    receiver.behave(json!({ "delay": 3.0, "times": 1 }));
    tracing::dispatcher::with_default(&dispatch, || error!("slow again"));
    let deadline = Duration::from_millis(200);
    let started = Instant::now();
    assert!(!guard.flush(deadline), "the request cannot finish within 200 ms");
    let took = started.elapsed();
    assert!(took < deadline + SLACK, "the flush took {took:?}");
    // Let the second slow request give up before the next one is sent.
    assert!(guard.flush(WAIT));
    tracing::dispatcher::with_default(&dispatch, || error!("next"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    // The slow one may have been processed: a retry could duplicate it.
    assert_eq!(
        received.iter().filter(|r| r.envelope().json("event").is_some()).count(),
        3,
        "{received:?}"
    );
    assert_eq!(quantity(&received, "network_error", "error"), 2, "{received:?}");
    drop(guard);
}

#[test]
fn a_full_error_room_drops_the_newest_and_reports_queue_overflow() {
    let receiver = Receiver::start();
    // The first envelope takes 2 s to be answered: the sink's lane is busy with it meanwhile.
    receiver.behave(json!({ "delay": 2.0, "times": 1 }));
    let (dispatch, guard) =
        pipeline(Tally::builder().error_queue(4).sentry_options(options(&receiver)));
    tracing::dispatcher::with_default(&dispatch, || error!("first"));
    assert!(!guard.flush(Duration::from_millis(100)), "the lane is busy with the first");
    // Two rounds of four: the first fills the lane's room for errors (four), the second is
    // refused whole, newest dropped.
    for round in 0..2 {
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..4 {
                error!(round, i, "burst");
            }
        });
        assert!(!guard.flush(Duration::from_millis(100)));
    }
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    let burst = messages(&received).iter().filter(|m| *m == "burst").count() as u64;
    let overflow = quantity(&received, "queue_overflow", "error");
    assert_eq!((burst, overflow), (4, 4), "{received:?}");
    assert_eq!(guard.stats().dropped(DropReason::SinkQueueFull), 4);
    drop(guard);
}

#[test]
fn an_unreachable_server_loses_only_what_it_reports_once_back() {
    // A receiver that holds its port but refuses connections, until it comes up.
    let mut receiver = Receiver::start_down();
    let options = SentryOptions::new(&receiver.dsn())
        .unwrap()
        .connect_timeout(Duration::from_millis(200))
        .max_retries(1);
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options));
    tracing::dispatcher::with_default(&dispatch, || error!("nowhere"));
    // The envelope is given up (network_error) within the flush.
    assert!(guard.flush(WAIT));
    receiver.up();
    tracing::dispatcher::with_default(&dispatch, || error!("back"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(messages(&received), ["back"]);
    assert_eq!(quantity(&received, "network_error", "error"), 1, "{received:?}");
    drop(guard);
}
