//! tracing-tally turns the `tracing` spans and events a service already has into telemetry:
//! span timings, counters, gauges, distributions and sets from field-tagged events, and captured
//! errors with their error chain, span context and breadcrumbs. Values are aggregated on the
//! application's threads without locks and shipped by a background flusher to pluggable sinks.
//!
//! # Usage
//!
//! One call configures everything from the environment and installs the global subscriber
//! (`init`, with the default feature `init`):
//!
//! ```no_run
//! use tracing::{error, info, instrument};
//!
//! #[instrument]
//! fn handle(route: &str) {
//!     info!(monotonic_counter.requests = 1, route, status = 200);
//!     info!(gauge.queue_depth = 7);
//!     info!("distribution.payload@byte" = 512);
//! }
//!
//! # #[cfg(feature = "init")]
//! fn main() {
//!     let _guard = tracing_tally::init(); // keep it: dropping it flushes
//!     handle("/users");
//!     let err = std::io::Error::other("connection reset");
//!     error!(error = &err as &dyn std::error::Error, "query failed");
//! }
//! # #[cfg(not(feature = "init"))]
//! # fn main() {}
//! ```
//!
//! For explicit configuration, or to compose with other layers, use the [`Builder`]:
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! let (tally, guard) = tracing_tally::Tally::builder()
//!     .service("checkout")
//!     .environment("prod")
//!     .span_tags(["route"])
//!     .jsonl_path(std::env::temp_dir().join("tally-doc.jsonl"))
//!     .build()?;
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
//!     tracing::info!(monotonic_counter.requests = 1, route = "/users");
//! });
//! assert!(guard.flush(std::time::Duration::from_secs(2)));
//! # Ok::<(), tracing_tally::BuildError>(())
//! ```
//!
//! # Field conventions
//!
//! A field named `monotonic_counter.NAME`, `counter.NAME`, `gauge.NAME`, `histogram.NAME`,
//! `distribution.NAME`, `timing.NAME` or `set.NAME` (optionally `NAME@unit`) records a metric;
//! the event's other fields are its tags. See [`fields`] for the full rules: accepted types,
//! invalid values (dropped and counted, never wrapped), name and tag limits.
//!
//! Every span that passes the span filter (`INFO` and above by default) records its duration
//! in milliseconds into the distribution `span.duration`, tagged `span:<name>` and with the
//! configured span fields ([`Builder::span_tags`]).
//!
//! Events at `ERROR` (configurable) are captured: message, fields, the error chain of an
//! `error = &e as &dyn Error` field, the enclosing spans' fields and ids, and the thread's last
//! lower-level events as breadcrumbs.
//!
//! # Aggregation
//!
//! Per series and roll-up interval (10 s by default): counters keep their sum; gauges their
//! last, min, max, sum and count; distributions their exact count, sum, min and max and a sketch
//! whose quantiles are within 1% of the true values; sets their unique count (exact up to
//! 1,000, then a HyperLogLog estimate). Each metric has at most 2,000 live series (and the
//! pipeline 50,000); values of further series go to the metric's `overflow:true` series, and
//! idle series are evicted. Only completed intervals are exported on schedule; a final or
//! explicit flush also exports the interval in progress.
//!
//! # Sinks
//!
//! With no sink configured, records go to standard output as JSON lines ([`sink::JsonlSink`];
//! `TALLY_JSONL` picks a file). [`sink::Sink`] is the trait to implement for others. Every sink
//! runs on its own lane: one thread behind one bounded queue with a room for each kind of data
//! (sessions, errors, metrics, transactions), so that one kind never costs another.
//!
//! With the `sentry` feature, `SENTRY_DSN` (or `Builder::sentry`) adds the Sentry sink:
//! captured errors, recorded traces ([`Builder::traces_sample_rate`]), release-health sessions
//! ([`Builder::sessions`]) and metrics, sent as envelopes on the sink's lane, honouring
//! Sentry's rate limits and reporting what it drops. See the `sink::sentry` module for the mapping.
//!
//! # Traces
//!
//! With a sample rate, each root span decides once whether its trace is recorded; a recorded
//! trace reaches the sinks as a transaction with its child spans. Root spans continue upstream
//! traces from header values in their fields, and [`propagation::trace_headers`] gives the
//! headers for outgoing requests.
//!
//! # Shutdown and flushing
//!
//! The [`FlushGuard`] flushes when dropped, waiting at most its shutdown timeout (2 s by
//! default). [`flush`] (or [`FlushGuard::flush`]) exports everything recorded so far and reports
//! whether the sinks got it within a timeout. [`Builder::manual`] runs no background thread, for
//! serverless functions that flush at the end of each invocation.
//!
//! Nothing is lost that was recorded before a flush that returned `true`. What the pipeline
//! drops (invalid values, rate-limited errors, full queues) is counted by reason: see
//! [`FlushGuard::stats`] and the `tally.dropped` self-metric.
//!
//! # Feature flags
//!
//! * `init` (default): `init()` and `try_init()`, which install the global subscriber with a
//!   `fmt` layer filtered by `RUST_LOG`; it turns on tracing-subscriber's `fmt`, `ansi` and
//!   `env-filter`. Without it (`default-features = false`) the crate needs only the registry:
//!   build the layer with [`Tally::builder`] and compose it yourself.
//! * `sentry`: the Sentry sink (`sink::sentry`), with `ureq` and `flate2`.
//! * `statsd`: the DogStatsD / plain StatsD sink (`sink::statsd`), no extra dependency.
//! * `datadog`: the Datadog HTTP API sink (`sink::datadog`), with `ureq` and `flate2`.
//! * `test-util`: `sink::MemorySink`, an in-memory sink for tests.
//!
//! # Public API
//!
//! The root holds the entry points (`init`, `try_init`, [`flush`], [`Tally`], [`Builder`])
//! and what they return ([`TallyLayer`], [`FlushGuard`], [`BuildError`], [`Stats`] with
//! [`DropReason`] and [`MetricLoss`], the sampler's [`SamplingContext`]). Modules hold the rest:
//! [`sink`] (the `Sink` trait, the batch types sinks read, the sinks), [`summary`] (the summary
//! tables), [`defaults`] (default values), [`fields`] (the field-name contract),
//! [`propagation`] (trace headers), [`serverless`] and [`implementation`] (design notes).
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.87.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, deny(rustdoc::broken_intra_doc_links))]

mod aggregate;
mod backpressure;
mod batch;
mod builder;
mod config;
mod debug;
pub mod defaults;
mod env;
mod error;
pub mod fields;
mod flush;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod implementation;
mod init;
mod layer;
mod panic_hook;
mod pipeline;
pub mod propagation;
mod reentry;
mod scrub;
pub mod serverless;
pub mod sink;
mod stats;
pub mod summary;
mod trace_headers;

pub use builder::{Builder, Tally};
pub use config::SamplingContext;
pub use error::BuildError;
pub use flush::FlushGuard;
pub use init::flush;
#[cfg(feature = "init")]
#[cfg_attr(docsrs, doc(cfg(feature = "init")))]
pub use init::{init, try_init};
pub use layer::TallyLayer;
pub use stats::{DropReason, MetricLoss, Stats};
