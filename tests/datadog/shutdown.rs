//! Shutdown with a dead intake: dropping the guard returns by the shutdown deadline whether the
//! intake refuses connections or accepts them and never answers; the application never waits.

use std::time::Duration;

use serde_json::json;
use tracing::info;
use tracing_tally::sink::datadog::DatadogOptions;
use tracing_tally::Tally;

use crate::deadline::{
    flush_and_drop_return_by_the_deadline, manual_flush_and_drop_return_by_the_deadline,
};
use crate::shared::Receiver;
use crate::KEY;

fn check(url: &str) {
    let options = DatadogOptions::new(KEY)
        .unwrap()
        .url(url)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let flushed =
        flush_and_drop_return_by_the_deadline(Tally::builder().datadog_options(options), || {
            for i in 0..100 {
                info!(monotonic_counter.requests = 1, shard = i % 10);
            }
        });
    assert!(!flushed, "nothing can be delivered");
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_intake_refuses_connections() {
    // Holds the port, never listening: connections are refused, and no one else can take it.
    let receiver = Receiver::start_down();
    check(&receiver.url(""));
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_intake_never_answers() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    check(&receiver.url(""));
}

#[test]
fn a_manual_flush_returns_by_its_deadline_when_the_intake_never_answers() {
    // Manual mode exports on the flushing thread: the sink must keep the flush's deadline
    // while it exports, not only once it is asked to flush.
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    let options = DatadogOptions::new(KEY)
        .unwrap()
        .url(&receiver.url(""))
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let flushed = manual_flush_and_drop_return_by_the_deadline(
        Tally::builder().datadog_options(options),
        || info!(monotonic_counter.requests = 1),
    );
    assert!(!flushed, "nothing can be delivered");
}
