//! A panic with the hook on: a fatal event with its stack trace, delivered before the panic
//! goes on, and a crashed session. (The hook is process-wide; it is a no-op once the
//! pipeline is gone, so the other tests of this binary are unaffected.)

use std::time::Duration;

use serde_json::Value;

use crate::peers::{check, Receiver};
use crate::{pipeline, sentry};

#[test]
fn a_panic_arrives_as_a_fatal_event_with_a_stack_trace_and_crashes_the_session() {
    let receiver = Receiver::start();
    let builder = sentry(&receiver).release("shop@1.2.3").sessions(true).panic_hook(true);
    let (dispatch, guard) = pipeline(builder);
    let worker = std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(move || tracing::dispatcher::with_default(&dispatch, || panic!("kaboom {}", 42)))
        .unwrap();
    assert!(worker.join().is_err());
    // The hook flushed before the panic went on: the event is already there.
    let received = receiver.received();
    let event = received
        .iter()
        .find_map(|r| r.envelope().json("event"))
        .unwrap_or_else(|| panic!("no event: {received:?}"));
    for r in &received {
        check(&r.body());
    }
    assert_eq!(event["level"], "fatal");
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["value"], "kaboom 42");
    assert_eq!(exception["mechanism"]["type"], "panic");
    assert_eq!(exception["mechanism"]["handled"], false);
    let frames = exception["stacktrace"]["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["function"].as_str().unwrap_or_default().contains("a_panic_arrives")),
        "the test function is on the stack: {frames:?}"
    );
    assert_eq!(event["threads"]["values"][0]["name"], "worker-7");

    assert!(guard.shutdown(Duration::from_secs(10)));
    let sessions: Vec<Value> = receiver
        .received()
        .iter()
        .flat_map(|r| r.envelope().items)
        .filter(|(h, _)| h["type"] == "session")
        .map(|(_, p)| serde_json::from_slice(&p).unwrap())
        .collect();
    assert_eq!(sessions.last().unwrap()["status"], "crashed", "{sessions:?}");
}
