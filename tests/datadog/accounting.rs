//! The books balance under faults: for every metric, what the pipeline produced equals what the
//! intake accepted plus what the pipeline reported lost, exactly, while the intake fails in
//! every way it can (5xx, 429 with and without `Retry-After`, 413, 400, 403, a closed
//! connection, a reset mid-answer, a request never answered, and the intake gone for a while).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::SpoolOptions;
use tracing_tally::Tally;

use crate::books::{assert_produced_as_emitted, balance, workload, Books, Compare, Ledger};
use crate::shared::{fault_rounds, scratch, Received, Receiver};
use crate::{options, WAIT};

/// The faults, one per round; `None` takes the intake down for the round.
fn faults() -> Vec<Option<Value>> {
    vec![
        Some(json!({})),
        Some(json!({ "status": 503, "times": 2 })),
        Some(json!({ "status": 503, "headers": { "Retry-After": "1" }, "times": 1 })),
        Some(json!({ "status": 429, "times": 1 })),
        Some(json!({ "status": 429, "headers": { "Retry-After": "1" }, "times": 1 })),
        Some(json!({ "status": 413, "times": 1 })),
        Some(json!({ "status": 400, "times": 2 })),
        Some(json!({ "status": 500 })),
        Some(json!({ "close": true, "times": 2 })),
        Some(json!({ "truncate": true, "times": 1 })),
        Some(json!({ "hang": true, "times": 2 })),
        Some(json!({ "status": 403, "times": 2 })),
        None,
        Some(json!({ "status": 502, "times": 1 })),
    ]
}

/// What the intake accepted (2xx answers only), and the check that no point arrived twice.
fn delivered(received: &[Received]) -> Books {
    let mut books = Books::default();
    let mut seen = HashSet::new();
    for request in received.iter().filter(|r| r.answered_ok()) {
        let path = request.path();
        if path != "/api/v2/series" && path != "/api/v1/distribution_points" {
            continue;
        }
        for series in request.json()["series"].as_array().unwrap() {
            let metric = series["metric"].as_str().unwrap();
            let mut tags: Vec<&str> =
                series["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            tags.sort_unstable();
            for point in series["points"].as_array().unwrap() {
                let (timestamp, values) = if path == "/api/v2/series" {
                    (point["timestamp"].as_i64().unwrap(), point["value"].as_f64().unwrap())
                } else {
                    (point[0].as_i64().unwrap(), point[1].as_array().unwrap().len() as f64)
                };
                let key = format!("{metric} {tags:?} {timestamp}");
                assert!(seen.insert(key.clone()), "delivered twice: {key}");
                books.add(metric, 1, values);
            }
        }
    }
    books
}

#[test]
fn every_point_is_delivered_once_or_counted_lost_under_every_fault() {
    books_balance(None);
}

/// With a spool and no retry buffer to speak of, what cannot go waits on disk: the books still
/// balance, and nothing arrives twice.
#[test]
fn every_point_is_delivered_once_or_counted_lost_with_a_spool() {
    let dir = scratch("dd-acct-spool");
    books_balance(Some(SpoolOptions::new(&dir)));
    let left = std::fs::read_dir(dir.join("datadog")).unwrap().count();
    assert_eq!(left, 0, "the spool was emptied");
}

fn books_balance(spool: Option<SpoolOptions>) {
    let receiver = Receiver::start();
    let ledger = Ledger::default();
    let mut options = options(&receiver)
        .timeout(Duration::from_secs(1))
        .max_distribution_values(usize::MAX)
        .send_errors(false);
    let spool_dir = spool.as_ref().map(|s| s.dir().to_path_buf());
    if let Some(spool) = spool {
        options = options.retry_buffer_bytes(1).spool(spool);
    }
    let (layer, guard) = Tally::builder()
        .manual()
        .host(Some("test-host".into()))
        .self_metrics(false)
        .sessions(false)
        .sink(ledger.clone())
        .datadog_options(options)
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    let rounds = faults();
    let receiver = fault_rounds(receiver, &rounds, |round, fault| {
        tracing::dispatcher::with_default(&dispatch, || workload(round as u64));
        // Short deadlines: what cannot be sent in time waits in the retry buffer.
        let _ = guard.flush(Duration::from_secs(2));
        if let (None, Some(dir)) = (fault, &spool_dir) {
            let files = std::fs::read_dir(dir.join("datadog")).map_or(0, Iterator::count);
            assert!(files > 0, "with the server gone, payloads were spooled");
        }
    });
    let mut settled = false;
    for _ in 0..3 {
        if guard.flush(WAIT) {
            settled = true;
            break;
        }
    }
    assert!(settled, "the final flush delivered everything still held");
    let received = receiver.received();

    let stats = guard.stats();
    let produced = ledger.books();
    let lost = Books::lost(stats.metric_losses(), "datadog");
    let all = Compare { points: true, values: true };
    let points = Compare { points: true, values: false };
    let table = balance(
        &produced,
        &delivered(&received),
        &lost,
        &[
            ("acct.requests", all),
            ("acct.inflight", all),
            ("acct.latency", all),
            ("acct.depth", points),
        ],
    );
    assert_produced_as_emitted(&produced, rounds.len() as u64);
    // The faults did cost something, and it was counted with reasons.
    assert!(lost.get("acct.requests").points > 0, "{table}");
    assert!(lost.get("acct.latency").points > 0, "{table}");
    assert_eq!(stats.dropped(tracing_tally::DropReason::SinkQueueFull), 0);
}
