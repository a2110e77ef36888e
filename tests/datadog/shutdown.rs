//! Shutdown with a dead intake: dropping the guard returns by the shutdown deadline whether the
//! intake refuses connections or accepts them and never answers; the application never waits.

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::DatadogOptions;
use tracing_tally::Tally;

use crate::shared::Receiver;
use crate::KEY;

const DEADLINE: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine; the point is "returns", not "fast".
const SLACK: Duration = Duration::from_secs(3);

fn drop_by_the_deadline(url: &str) {
    let options = DatadogOptions::new(KEY)
        .unwrap()
        .url(url)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let (layer, guard) = Tally::builder()
        .host(None)
        .flush_interval(Duration::from_millis(50))
        .shutdown_timeout(DEADLINE)
        .datadog_options(options)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            info!(monotonic_counter.requests = 1, shard = i % 10);
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(!guard.flush(DEADLINE), "nothing can be delivered");
    assert!(started.elapsed() < DEADLINE + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < DEADLINE + SLACK, "drop took {:?}", started.elapsed());
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_intake_refuses_connections() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    drop_by_the_deadline(&format!("http://127.0.0.1:{port}"));
}

#[test]
fn guard_drop_returns_by_its_deadline_when_the_intake_never_answers() {
    let receiver = Receiver::start();
    receiver.behave(json!({ "hang": true }));
    drop_by_the_deadline(&receiver.url(""));
}
