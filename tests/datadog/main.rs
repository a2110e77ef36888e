//! The Datadog API sink against a local receiver, every payload checked with the models of
//! Datadog's own API client (PyPI `datadog-api-client`) plus the strict checks they lack.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod accounting;
#[path = "../support/books.rs"]
mod books;
#[path = "../support/deadline.rs"]
mod deadline;
mod end_to_end;
mod faults;
#[path = "../support/peers.rs"]
mod shared;
mod shutdown;
mod spool;
mod tls;

use std::time::Duration;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::datadog::DatadogOptions;
use tracing_tally::{FlushGuard, Tally};

use shared::{tool, Received, Receiver};

pub(crate) const WAIT: Duration = Duration::from_secs(15);
pub(crate) const KEY: &str = "0123456789abcdef0123456789abcdef";

/// Options for the receiver, with short timeouts for tests.
pub(crate) fn options(receiver: &Receiver) -> DatadogOptions {
    DatadogOptions::new(KEY)
        .unwrap()
        .url(&receiver.url(""))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(1))
}

/// A manual pipeline sending to Datadog with `options`.
pub(crate) fn pipeline(options: DatadogOptions) -> (Dispatch, FlushGuard) {
    let (layer, guard) = Tally::builder()
        .manual()
        .host(Some("test-host".into()))
        .service("shop")
        .environment("test")
        .release("1.2.3")
        .self_metrics(false)
        .sessions(false)
        .datadog_options(options)
        .build()
        .expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

/// Runs `dd_check_received.py` on everything the receiver got; panics with its report.
pub(crate) fn check(receiver: &Receiver, kinds: &[&str], any_status: bool) {
    let port = receiver.port.to_string();
    let mut args = vec![port.as_str(), "--check-time"];
    args.extend_from_slice(kinds);
    if any_status {
        args.push("--any-status");
    }
    let (ok, report) = tool("dd_check_received.py", &args);
    assert!(ok, "dd_check_received.py:\n{report}");
}

/// The series of every accepted `/api/v2/series` request.
pub(crate) fn series(received: &[Received]) -> Vec<serde_json::Value> {
    received
        .iter()
        .filter(|r| r.path() == "/api/v2/series" && r.answered_ok())
        .flat_map(|r| r.json()["series"].as_array().unwrap().clone())
        .collect()
}
