//! Entry points for the fuzz targets (`fuzz/`) and the bad-input property tests
//! (`tests/bad_input.rs`); compiled only with the `fuzzing` feature, not part of the API.
//!
//! Each function takes plain inputs, builds what the pipeline would hand to the code under test
//! (field names, records and errors, a [`Batch`](crate::sink::Batch)), runs the real parser or
//! encoder, and checks the invariants itself, panicking on a violation:
//!
//! * [`fields`] (`field_names.rs`): field names parse into names, units and tag keys that follow
//!   the documented rules and limits; tag values are cut at character boundaries; sink names
//!   follow each sink's rules.
//! * [`statsd`] (`statsd_encode.rs`): every datagram is within the packet size, every line
//!   follows the StatsD / DogStatsD grammar, events are within 8 KiB, and every message and
//!   distribution value is either sent or counted.
//! * [`sentry`] (`sentry_envelope.rs`): every envelope parses (header line, item headers with
//!   exact lengths, JSON payloads), items are within Sentry's limits, and every metric value is
//!   sent or counted.
//! * [`datadog`] (`datadog_json.rs`): every payload is within the intake's limits (the real ones
//!   or smaller ones, to exercise splitting), is valid JSON, and every point is sent or counted
//!   as a loss.
//!
//! Input values follow what the layer lets through: non-finite numbers are dropped before
//! aggregation (as the layer does), but sums may still overflow to infinity; metric names and
//! tag keys are sanitized like field names unless [`MetricInput::raw_name`] asks otherwise; tag
//! values may be any text of any length (span names are not cut).
//!
//! `inputs.rs` turns the plain inputs into a [`Batch`](crate::sink::Batch) the way the pipeline
//! would, with one shared callsite for the captured errors; each checker has its own file, named
//! after its fuzz target.

// Panicking is how a fuzzer learns of a violated invariant; this module exists only for fuzzers
// and the tests that share their checks.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[cfg(feature = "datadog")]
mod datadog_json;
mod field_names;
mod inputs;
#[cfg(feature = "sentry")]
mod sentry_envelope;
#[cfg(feature = "statsd")]
mod statsd_encode;

#[cfg(feature = "datadog")]
pub use self::datadog_json::{datadog, DatadogInput, DatadogOutcome};
pub use self::field_names::fields;
pub use self::inputs::{batch, BatchInput, ErrorInput, MetricInput};
#[cfg(feature = "sentry")]
pub use self::sentry_envelope::{sentry, SentryInput, SentryOutcome};
#[cfg(feature = "statsd")]
pub use self::statsd_encode::{statsd, StatsdInput, StatsdOutcome};
