//! Shutdown with a dead server: dropping the guard returns by the shutdown deadline whether the
//! server refuses connections or accepts them and never answers; the application never waits.

use std::time::Duration;

use serde_json::json;
use tracing::{error, info};
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::Tally;

use crate::deadline::{
    flush_and_drop_return_by_the_deadline, manual_flush_and_drop_return_by_the_deadline,
};
use crate::peers::Receiver;

fn check(dsn: &str) {
    let options = SentryOptions::new(dsn)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    // `flush` is `true` when the retries ran out in time (what was given up is counted).
    let _ = flush_and_drop_return_by_the_deadline(Tally::builder().sentry_options(options), || {
        for i in 0..100 {
            info!(monotonic_counter.requests = 1, shard = i % 10);
        }
        error!("the database is gone");
    });
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_server_refuses_connections() {
    // Holds the port, never listening: connections are refused, and no one else can take it.
    let receiver = Receiver::start_down();
    check(&receiver.dsn());
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_server_never_answers() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    check(&receiver.dsn());
}

#[test]
fn a_manual_flush_returns_by_its_deadline_when_the_server_never_answers() {
    // Manual mode sends on the flushing thread: a request may not outlast the flush's deadline.
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    let options = SentryOptions::new(&receiver.dsn())
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let _ = manual_flush_and_drop_return_by_the_deadline(
        Tally::builder().sentry_options(options),
        || error!("the database is gone"),
    );
}
