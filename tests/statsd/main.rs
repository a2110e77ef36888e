//! The StatsD sink: DogStatsD and plain StatsD over UDP and Unix sockets, read back by a local
//! socket (exact messages), by a strict DogStatsD grammar checker, and by a real Etsy statsd.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod accounting;
#[path = "../support/books.rs"]
mod books;
#[path = "../support/deadline.rs"]
mod deadline;
mod dogstatsd;
mod etsy;
mod golden;
mod peers;
#[path = "../support/peers.rs"]
mod shared;
mod shutdown;

use std::time::Duration;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::statsd::StatsdOptions;
use tracing_tally::{FlushGuard, Tally};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A manual pipeline sending to these StatsD options, on a dispatcher the test scopes.
pub(crate) fn pipeline(options: StatsdOptions) -> (Dispatch, FlushGuard) {
    let (layer, guard) = Tally::builder()
        .manual()
        .host(Some("test-host".into()))
        .service("shop")
        .environment("test")
        .self_metrics(false)
        .sessions(false)
        .statsd(options)
        .build()
        .expect("build");
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}
