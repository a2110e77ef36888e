//! Builder validation: settings that cannot work fail at `build()` with an error naming them.

use std::time::Duration;

use tracing_subscriber::Registry;
use tracing_tally::{BuildError, Builder, Tally};

use crate::support::Capture;

fn error_of(builder: Builder) -> BuildError {
    match builder.sink(Capture::default()).build::<Registry>() {
        Ok(_) => panic!("expected a build error"),
        Err(error) => error,
    }
}

#[test]
fn invalid_settings_are_refused_with_their_name() {
    let cases: Vec<(Builder, &str)> = vec![
        (Tally::builder().rollup_interval(Duration::ZERO), "rollup_interval"),
        (Tally::builder().flush_interval(Duration::ZERO), "flush_interval"),
        (Tally::builder().max_series_per_metric(0), "max_series_per_metric"),
        (Tally::builder().max_series(0), "max_series"),
        (Tally::builder().error_queue(0), "error_queue"),
        (Tally::builder().sink_queue(0), "sink_queue"),
        (Tally::builder().idle_intervals(0), "idle_intervals"),
        (Tally::builder().span_tags([""]), "span_tags"),
        (Tally::builder().span_tags((0..65).map(|i| format!("t{i}"))), "span_tags"),
        (Tally::builder().span_metric(""), "span_metric"),
        (Tally::builder().tag("", "v"), "tag"),
    ];
    for (builder, setting) in cases {
        let error = error_of(builder);
        assert!(
            matches!(&error, BuildError::InvalidConfig { setting: s, .. } if *s == setting),
            "{setting}: {error}"
        );
        assert!(error.to_string().contains(setting));
    }
}

#[test]
fn an_unwritable_jsonl_path_is_a_sink_error() {
    let error = error_of(Tally::builder().jsonl_path("/nonexistent-directory/telemetry.jsonl"));
    assert!(matches!(error, BuildError::Sink { .. }), "{error}");
    assert!(error.to_string().contains("/nonexistent-directory/telemetry.jsonl"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
}
