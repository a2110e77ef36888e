//! Shutdown with a dead server: dropping the guard returns by the shutdown deadline whether the
//! server refuses connections or accepts them and never answers; the application never waits.

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{error, info};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::SentryOptions;
use tracing_tally::Tally;

use crate::peers::Receiver;

const DEADLINE: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine; the point is "returns", not "fast".
const SLACK: Duration = Duration::from_secs(3);

fn drop_by_the_deadline(dsn: &str) {
    let options = SentryOptions::new(dsn)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let (layer, guard) = Tally::builder()
        .host(None)
        .flush_interval(Duration::from_millis(50))
        .shutdown_timeout(DEADLINE)
        .sentry_options(options)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            info!(monotonic_counter.requests = 1, shard = i % 10);
        }
        error!("the database is gone");
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    // `true` when the retries ran out in time (what was given up is counted), else `false`.
    let _ = guard.flush(DEADLINE);
    assert!(started.elapsed() < DEADLINE + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < DEADLINE + SLACK, "drop took {:?}", started.elapsed());
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_server_refuses_connections() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    drop_by_the_deadline(&format!("http://public@127.0.0.1:{port}/42"));
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_server_never_answers() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    drop_by_the_deadline(&receiver.dsn());
}
