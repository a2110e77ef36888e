//! Certificates are verified: an intake whose certificate comes from an unknown authority is
//! refused (and what could not be sent is counted), and one whose authority was added with
//! `add_root_certificates` is trusted.

use std::time::Duration;

use tracing::info;
use tracing_tally::sink::datadog::DatadogOptions;
use tracing_tally::DropReason;

use crate::shared::{Receiver, TestCertificates};
use crate::{pipeline, series, KEY, WAIT};

fn options(receiver: &Receiver) -> DatadogOptions {
    DatadogOptions::new(KEY)
        .unwrap()
        .url(&format!("https://127.0.0.1:{}", receiver.port))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(0)
}

#[test]
fn an_unknown_authority_is_refused_and_an_added_one_trusted() {
    let certificates = TestCertificates::make("datadog-tls");
    let receiver = Receiver::start_tls(&certificates);

    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.hits = 1));
    assert!(!guard.flush(Duration::from_secs(2)), "the handshake fails: nothing is delivered");
    drop(guard);

    let pem = std::fs::read(&certificates.ca).unwrap();
    let trusted = options(&receiver).add_root_certificates(&pem).unwrap();
    let (dispatch, guard) = pipeline(trusted);
    tracing::dispatcher::with_default(&dispatch, || info!(monotonic_counter.hits = 2));
    assert!(guard.flush(WAIT));
    assert_eq!(guard.stats().dropped(DropReason::SinkError), 0);

    // Only the second pipeline's point arrived: the first never got past the handshake.
    let received = receiver.received_tls(&certificates);
    let points: Vec<f64> = series(&received)
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().clone())
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(points, [2.0]);
}
