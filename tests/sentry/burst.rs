//! Bursts: one kind of data never costs another. An async service takes 2,000 requests at once,
//! every one traced; the session, every error and every metric still arrive whole, and so do
//! the traces. A backend that rate-limits traces lowers the sample rate at the root.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tracing::instrument::WithSubscriber;
use tracing::{error, info, info_span, Instrument};
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::{DropReason, Tally};

use crate::peers::{discarded, Envelope, Receiver};
use crate::pipeline;

const REQUESTS: u64 = 2000;
/// Every 50th request fails: 40 errors, under the default error burst (50).
const FAILING_EVERY: u64 = 50;

fn options(receiver: &Receiver) -> SentryOptions {
    SentryOptions::new(&receiver.dsn())
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
}

fn accepted(receiver: &Receiver) -> Vec<Envelope> {
    receiver.received().iter().filter(|r| r.answered_ok()).map(|r| r.envelope()).collect()
}

/// Every item of `item_type`, parsed.
fn items(envelopes: &[Envelope], item_type: &str) -> Vec<Value> {
    envelopes
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|(header, _)| header["type"] == item_type)
        .map(|(_, payload)| serde_json::from_slice(payload).unwrap())
        .collect()
}

/// One request of the simulated service: a root span with a child span, a counter, and an
/// error for every 50th.
async fn request(i: u64) {
    let root = info_span!("request", route = "/users");
    async move {
        info!(monotonic_counter.requests = 1, route = "/users");
        async {
            tokio::task::yield_now().await;
        }
        .instrument(info_span!("db.query"))
        .await;
        if i.is_multiple_of(FAILING_EVERY) {
            error!(request = i, "request failed");
        }
    }
    .instrument(root)
    .await;
}

#[test]
fn a_burst_of_2000_traced_requests_loses_no_session_error_metric_or_trace() {
    let receiver = Receiver::start();
    let builder = Tally::builder()
        .release("burst@1.0.0")
        .traces_sample_rate(1.0)
        .sentry_options(options(&receiver));
    let (dispatch, guard) = pipeline(builder);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| tokio::spawn(request(i).with_subscriber(dispatch.clone())))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(guard.flush(Duration::from_secs(60)), "everything sent within the flush");
    assert!(guard.shutdown(Duration::from_secs(10)));
    let envelopes = accepted(&receiver);

    // The process session: its first update and its last.
    let sessions = items(&envelopes, "session");
    let statuses: Vec<(bool, &str)> = sessions
        .iter()
        .map(|s| (s["init"].as_bool().unwrap_or(false), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [(true, "ok"), (false, "exited")], "{sessions:?}");
    assert_eq!(sessions[1]["errors"], REQUESTS / FAILING_EVERY);

    // Every error, once.
    let errors: BTreeSet<u64> = items(&envelopes, "event")
        .iter()
        .map(|e| e["contexts"]["fields"]["request"].as_u64().unwrap())
        .collect();
    let expected: BTreeSet<u64> = (0..REQUESTS).step_by(FAILING_EVERY as usize).collect();
    assert_eq!(errors, expected);

    // Every request counted.
    let requests: f64 = items(&envelopes, "trace_metric")
        .iter()
        .flat_map(|container| container["items"].as_array().cloned().unwrap_or_default())
        .filter(|item| item["name"] == "requests")
        .map(|item| item["value"].as_f64().unwrap())
        .sum();
    assert_eq!(requests, REQUESTS as f64);

    // Every trace, whole: the root and its child span.
    let transactions = items(&envelopes, "transaction");
    assert_eq!(transactions.len() as u64, REQUESTS);
    for transaction in &transactions {
        let spans = transaction["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 1, "{transaction}");
        assert_eq!(spans[0]["description"], "db.query");
    }
    for reason in ["queue_overflow", "backpressure", "sample_rate"] {
        assert_eq!(discarded(&envelopes, reason, "transaction"), 0, "{reason}");
    }
}

#[test]
fn a_backend_that_rate_limits_traces_halves_the_sample_rate_until_it_recovers() {
    let receiver = Receiver::start();
    let builder =
        Tally::builder().manual().traces_sample_rate(1.0).sentry_options(options(&receiver));
    let (dispatch, guard) = pipeline(builder);
    let roots = |n: u64| {
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..n {
                info_span!("job", i).in_scope(|| {});
            }
        })
    };
    // The backend refuses transactions once, for a second: the transport is unhealthy.
    receiver.behave(json!({
        "status": 429,
        "headers": { "X-Sentry-Rate-Limits": "1:transaction:organization" },
        "times": 1,
    }));
    roots(1);
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(guard.stats().downsampled_traces, 0, "the check comes after the flush");
    // Past the rate limit (a second), sampled at half the rate.
    std::thread::sleep(Duration::from_millis(1100));
    roots(400);
    assert!(guard.flush(Duration::from_secs(10)));
    let downsampled = guard.stats().downsampled_traces;
    assert!((120..=280).contains(&downsampled), "about half of 400: {downsampled}");
    // The second check found the pipeline healthy (the transactions sent got through):
    // the configured rate again.
    roots(100);
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(guard.stats().downsampled_traces, downsampled, "recovered");
    let envelopes = accepted(&receiver);
    assert_eq!(discarded(&envelopes, "backpressure", "transaction"), downsampled);
    let kept = items(&envelopes, "transaction").len() as u64;
    assert_eq!(kept + downsampled, 500, "every root after the 429 kept or reported");
    assert_eq!(guard.stats().dropped(DropReason::TransactionQueueFull), 0);
}
