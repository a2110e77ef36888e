//! The opt-in panic hook (process-wide, hence its own test binary).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use tracing_subscriber::prelude::*;
use tracing_tally::sink::SessionStatus;
use tracing_tally::Tally;

use support::Capture;

#[test]
fn a_panic_becomes_an_unhandled_error_and_crashes_the_session() {
    let capture = Capture::default();
    let (tally, guard) = Tally::builder()
        .host(None)
        .release("app@1.0")
        .panic_hook(true)
        .flush_interval(Duration::from_secs(3600))
        .sink(capture.clone())
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(tally));
    let worker = std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(move || tracing::dispatcher::with_default(&dispatch, || panic!("kaboom {}", 42)))
        .unwrap();
    assert!(worker.join().is_err());
    // The hook flushed before letting the panic continue: the error is already delivered.
    let errors = capture.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(!e.handled);
    assert_eq!(e.message.as_deref(), Some("kaboom 42"));
    assert_eq!(e.error_types, vec!["panic"]);
    assert_eq!(e.thread.as_deref(), Some("worker-7"));
    assert!(e.stacktrace.is_some());
    let location = e.fields.iter().find(|(k, _)| *k == "location").unwrap();
    assert!(location.1.to_string().contains("tests/panic.rs"), "{location:?}");
    drop(guard);
    let sessions: Vec<_> = capture.batches().iter().flat_map(|b| b.sessions().to_vec()).collect();
    assert_eq!(sessions.last().map(|s| s.status), Some(SessionStatus::Crashed));
}
