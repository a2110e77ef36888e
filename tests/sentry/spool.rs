//! The durable spool: envelopes Sentry could not take wait on disk, and arrive once, after the
//! server is back or in the next process; rate-limited envelopes are not kept.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tracing::info;
use tracing_tally::sink::{sentry::SentryOptions, SpoolOptions};
use tracing_tally::{Builder, DropReason, Tally};

use crate::peers::{Received, Receiver};
use crate::pipeline;
use crate::shared::spool_files;

const WAIT: Duration = Duration::from_secs(15);

fn hits(round: u64, n: u64) {
    for shard in 0..n {
        info!(monotonic_counter.spooled.hits = 1, shard, round);
    }
}

/// A builder for the server on `port` (up or not), spooling to `dir`, giving up at once.
fn builder(port: u16, dir: &Path) -> Builder {
    let options = SentryOptions::new(&format!("http://public@127.0.0.1:{port}/42"))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(0)
        .spool(SpoolOptions::new(dir));
    Tally::builder().manual().sessions(false).sentry_options(options)
}

/// Spool files of the Sentry sink under `dir`.
fn spooled(dir: &Path) -> usize {
    spool_files(dir, "sentry")
}

/// The metric items Sentry accepted; panics on one delivered twice.
fn delivered_once(received: &[Received]) -> HashSet<String> {
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
            }
        }
    }
    seen
}

#[test]
fn an_outage_is_spooled_and_delivered_once_after_recovery() {
    let dir = crate::shared::scratch("sentry-spool-outage");
    let mut receiver = Receiver::start_down();
    let port = receiver.port;
    let (dispatch, guard) = pipeline(builder(port, &dir));
    for round in 0..3 {
        tracing::dispatcher::with_default(&dispatch, || hits(round, 4));
        let _ = guard.flush(Duration::from_secs(2));
    }
    assert_eq!(spooled(&dir), 3, "one envelope per round");
    let stats = guard.stats();
    assert_eq!(stats.total_dropped(), 0, "spooled, not dropped: {stats:?}");

    receiver.up();
    tracing::dispatcher::with_default(&dispatch, || hits(3, 4));
    assert!(guard.flush(WAIT));
    let items = delivered_once(&receiver.received());
    assert_eq!(items.len(), 16, "4 rounds of 4 series: {items:?}");
    assert_eq!(spooled(&dir), 0, "delivered files are deleted");
    assert_eq!(guard.stats().total_dropped(), 0);
    for request in receiver.received() {
        crate::peers::check(&request.body());
    }
}

#[test]
fn what_is_spooled_is_sent_by_the_next_process() {
    let dir = crate::shared::scratch("sentry-spool-restart");
    let mut receiver = Receiver::start_down();
    let port = receiver.port;
    let (dispatch, guard) = pipeline(builder(port, &dir));
    tracing::dispatcher::with_default(&dispatch, || hits(0, 5));
    let _ = guard.flush(Duration::from_secs(2));
    drop(guard);
    assert_eq!(spooled(&dir), 1);

    receiver.up();
    let (_dispatch, guard) = pipeline(builder(port, &dir));
    assert!(guard.flush(WAIT));
    assert_eq!(delivered_once(&receiver.received()).len(), 5);
    assert_eq!(spooled(&dir), 0);
    assert_eq!(guard.stats().dropped(DropReason::SpoolCorrupt), 0);
}

#[test]
fn rate_limited_and_refused_envelopes_are_not_spooled() {
    for fault in [
        json!({ "status": 429, "headers": { "Retry-After": "1" }, "times": 1 }),
        json!({ "status": 400, "times": 1 }),
    ] {
        let dir = crate::shared::scratch("sentry-spool-refused");
        let receiver = Receiver::start();
        receiver.behave(fault.clone());
        let (dispatch, guard) = pipeline(builder(receiver.port, &dir));
        tracing::dispatcher::with_default(&dispatch, || hits(0, 3));
        let _ = guard.flush(WAIT);
        assert_eq!(spooled(&dir), 0, "{fault}");
        assert_eq!(guard.stats().dropped(DropReason::SinkError), 3, "{fault}");
    }
}
