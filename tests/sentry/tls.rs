//! Certificates are verified: a server whose certificate comes from an unknown authority is
//! refused (the envelope is lost and counted), and one whose authority was added with
//! `add_root_certificates` is trusted.

use std::time::Duration;

use tracing::error;
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::{DropReason, Tally};

use crate::peers::Receiver;
use crate::pipeline;
use crate::shared::TestCertificates;

fn options(receiver: &Receiver) -> SentryOptions {
    SentryOptions::new(&format!("https://public@127.0.0.1:{}/42", receiver.port))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(0)
}

#[test]
fn an_unknown_authority_is_refused_and_an_added_one_trusted() {
    let certificates = TestCertificates::make("sentry-tls");
    let receiver = Receiver::start_tls(&certificates);

    let builder = Tally::builder().manual().sessions(false).sentry_options(options(&receiver));
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || error!("refused"));
    let _ = guard.flush(Duration::from_secs(3));
    assert_eq!(guard.stats().dropped(DropReason::SinkError), 1, "lost and counted");
    drop(guard);

    let pem = std::fs::read(&certificates.ca).unwrap();
    let trusted = options(&receiver).add_root_certificates(&pem).unwrap();
    let (dispatch, guard) =
        pipeline(Tally::builder().manual().sessions(false).sentry_options(trusted));
    tracing::dispatcher::with_default(&dispatch, || error!("trusted"));
    assert!(guard.flush(Duration::from_secs(15)));
    assert_eq!(guard.stats().dropped(DropReason::SinkError), 0);

    let received = receiver.received_tls(&certificates);
    let messages: Vec<String> = received
        .iter()
        .filter_map(|r| r.envelope().json("event"))
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(messages, ["trusted"]);
}
