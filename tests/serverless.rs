//! Serverless invocations flush once, when the outermost one ends (process-wide state, hence
//! its own test binary).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::{serverless, Tally};

use support::Capture;

#[test]
fn nested_invocations_flush_once_at_the_outermost_end_even_on_panic() {
    let capture = Capture::default();
    let (tally, _guard) = Tally::builder()
        .manual()
        .host(None)
        .self_metrics(false)
        .sink(capture.clone())
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(tally));
    tracing::dispatcher::with_default(&dispatch, || {
        serverless::with_invocation(|| {
            info!(monotonic_counter.orders = 1);
            serverless::with_invocation(|| info!(monotonic_counter.orders = 1));
            assert!(capture.metrics().is_empty(), "the inner invocation does not flush");
        });
        assert_eq!(capture.counter_exact("orders", &[]), 2, "the outer one does");

        // A panicking handler still flushes what it recorded.
        let outcome = std::panic::catch_unwind(|| {
            let _invocation = serverless::invocation();
            info!(monotonic_counter.orders = 5);
            panic!("handler failed");
        });
        assert!(outcome.is_err());
        assert_eq!(capture.counter_exact("orders", &[]), 7);
    });
}
