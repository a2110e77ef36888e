//! The books balance under faults: for every metric, what the pipeline produced equals what
//! Sentry accepted plus what the pipeline reported lost, exactly, while the server fails in
//! every way it can (5xx, 429 with `Retry-After` or `X-Sentry-Rate-Limits`, 413, 400, a closed
//! connection, a reset mid-answer, a request never answered, and the server gone for a while).
//! (A bare 429 holds everything back for 60 s; `faults.rs` covers it.)

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use tracing_tally::sink::{sentry::SentryOptions, SpoolOptions};
use tracing_tally::DropReason;

use crate::books::{assert_produced_as_emitted, balance, workload, Books, Compare, Ledger};
use crate::peers::{Received, Receiver};
use crate::pipeline;
use crate::shared::fault_rounds;

const WAIT: Duration = Duration::from_secs(15);

/// The faults, one per round; `None` takes the server down for the round.
fn faults() -> Vec<Option<Value>> {
    vec![
        Some(json!({})),
        Some(json!({ "status": 503, "times": 2 })),
        Some(json!({ "status": 429, "headers": { "Retry-After": "1" }, "times": 1 })),
        Some(
            json!({ "status": 429, "headers": { "X-Sentry-Rate-Limits": "1::organization" }, "times": 1 }),
        ),
        Some(json!({ "status": 413, "times": 1 })),
        Some(json!({ "status": 400, "times": 1 })),
        Some(json!({ "status": 500 })),
        Some(json!({ "close": true, "times": 2 })),
        Some(json!({ "truncate": true, "times": 1 })),
        Some(json!({ "hang": true, "times": 1 })),
        None,
        Some(json!({ "status": 502, "times": 1 })),
    ]
}

/// The metric items Sentry accepted (2xx answers only); no item may arrive twice.
fn delivered(received: &[Received]) -> Books {
    let mut books = Books::default();
    let mut seen = HashSet::new();
    for envelope in received.iter().filter(|r| r.answered_ok()).map(Received::envelope) {
        for (header, payload) in &envelope.items {
            if header["type"] != "trace_metric" {
                continue;
            }
            let payload: Value = serde_json::from_slice(payload).unwrap();
            for item in payload["items"].as_array().unwrap() {
                let key = item.to_string();
                assert!(seen.insert(key.clone()), "delivered twice: {key}");
                let name = item["name"].as_str().unwrap();
                let value = item["value"].as_f64().unwrap();
                // A distribution sends each value as an item: it carries one value.
                let carried = if item["type"] == "distribution" { 1.0 } else { value };
                books.add(name, 1, carried);
            }
        }
    }
    books
}

#[test]
fn every_metric_item_is_delivered_once_or_counted_lost_under_every_fault() {
    books_balance(None);
}

/// With a spool, what cannot go waits on disk: the books still balance, and nothing arrives
/// twice.
#[test]
fn every_metric_item_is_delivered_once_or_counted_lost_with_a_spool() {
    let dir = crate::shared::scratch("sentry-acct-spool");
    books_balance(Some(SpoolOptions::new(&dir)));
    let left = std::fs::read_dir(dir.join("sentry")).unwrap().count();
    assert_eq!(left, 0, "the spool was emptied");
}

fn books_balance(spool: Option<SpoolOptions>) {
    let receiver = Receiver::start();
    let ledger = Ledger::default();
    let mut options = SentryOptions::new(&receiver.dsn())
        .unwrap()
        .timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .max_distribution_values(usize::MAX);
    let spool_dir = spool.as_ref().map(|s| s.dir().to_path_buf());
    if let Some(spool) = spool {
        options = options.spool(spool);
    }
    let builder = tracing_tally::Tally::builder()
        .manual()
        .sessions(false)
        .sink(ledger.clone())
        .sentry_options(options);
    let (dispatch, guard) = pipeline(builder);

    let rounds = faults();
    let receiver = fault_rounds(receiver, &rounds, |round, fault| {
        tracing::dispatcher::with_default(&dispatch, || workload(round as u64));
        let _ = guard.flush(Duration::from_secs(2));
        if fault.is_some_and(|f| f["status"] == 429) {
            // What the next rounds send should meet the server, not the rate limit.
            std::thread::sleep(Duration::from_millis(1100));
        }
        if let (None, Some(dir)) = (fault, &spool_dir) {
            let files = std::fs::read_dir(dir.join("sentry")).map_or(0, Iterator::count);
            assert!(files > 0, "with the server gone, payloads were spooled");
        }
    });
    assert!(guard.flush(WAIT), "the final flush settled everything");
    let received = receiver.received();

    let stats = guard.stats();
    let produced = ledger.books();
    let lost = Books::lost(stats.metric_losses(), "sentry");
    let all = Compare { points: true, values: true };
    let table = balance(
        &produced,
        &delivered(&received),
        &lost,
        &[
            ("acct.requests", all),
            ("acct.inflight", all),
            ("acct.latency", Compare { points: false, values: true }),
            ("acct.depth", Compare { points: true, values: false }),
        ],
    );
    assert_produced_as_emitted(&produced, rounds.len() as u64);
    assert!(lost.get("acct.requests").points > 0, "{table}");
    assert!(lost.get("acct.latency").points > 0, "{table}");
    assert_eq!(stats.dropped(DropReason::SinkQueueFull), 0);
}
