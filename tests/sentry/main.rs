//! The Sentry sink against a local receiver, checked with Sentry's own code (the `sentry-sdk`
//! envelope parser and Relay's normalizer) and a strict framing check.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod accounting;
#[path = "../support/books.rs"]
mod books;
mod burst;
mod config;
#[path = "../support/deadline.rs"]
mod deadline;
mod end_to_end;
mod faults;
mod panic;
mod peers;
#[path = "../support/peers.rs"]
mod shared;
mod shutdown;
mod spool;
mod tls;
mod transport;

use std::time::Duration;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_tally::{Builder, FlushGuard, Tally};

/// A pipeline sending to `dsn`, on a dispatcher the test scopes.
pub(crate) fn pipeline(builder: Builder) -> (Dispatch, FlushGuard) {
    let (layer, guard) =
        builder.host(Some("test-host".into())).self_metrics(false).build().expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

/// A builder for the receiver's DSN, with short timeouts for tests.
pub(crate) fn sentry(receiver: &peers::Receiver) -> Builder {
    let options = tracing_tally::sink::sentry::SentryOptions::new(&receiver.dsn())
        .expect("dsn")
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1));
    Tally::builder().manual().sentry_options(options)
}
