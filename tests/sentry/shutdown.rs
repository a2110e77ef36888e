//! Shutdown with a dead server: dropping the guard returns by the shutdown deadline whether the
//! server refuses connections or accepts them and never answers; the application never waits.

use std::time::Duration;

use serde_json::json;
use tracing::{error, info};
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::Tally;

use crate::deadline::flush_and_drop_return_by_the_deadline;
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    check(&format!("http://public@127.0.0.1:{port}/42"));
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_server_never_answers() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    check(&receiver.dsn());
}
