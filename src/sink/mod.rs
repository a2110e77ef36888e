//! Sinks: where batches go.
//!
//! A [`Sink`] receives what the flusher produces as [`Batch`]es. Each sink runs on its own lane
//! (or, in manual mode, on the thread that flushes): one thread behind one bounded queue with a
//! room for each kind of data. A slow sink never slows the application or the other sinks; what
//! its rooms cannot take is counted as dropped, kind by kind, and the sink learns of it through
//! its [`SinkContext`]. A batch handed to a sink holds one kind of data (sessions, errors,
//! metrics or transactions, with the global tags), the most urgent kinds first.
//!
//! The crate ships [`JsonlSink`] (the local default) and, with the `test-util` feature,
//! `MemorySink`. Each network backend has a module, behind its feature, holding its options and
//! documenting what it sends: `sentry` (`sentry::SentryOptions`), `statsd`
//! (`statsd::StatsdOptions`) and `datadog` (`datadog::DatadogOptions`); the
//! [`Builder`](crate::Builder) takes them. Implement [`Sink`] for anything else:
//!
//! ```
//! use tracing_tally::sink::{Batch, ExportError, Sink};
//!
//! struct CountingSink(u64);
//!
//! impl Sink for CountingSink {
//!     fn name(&self) -> &str {
//!         "counting"
//!     }
//!
//!     fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
//!         self.0 += batch.metrics().len() as u64;
//!         Ok(())
//!     }
//! }
//!
//! use tracing_subscriber::prelude::*;
//!
//! let (layer, guard) = tracing_tally::Tally::builder().sink(CountingSink(0)).build()?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//! # drop((subscriber, guard));
//! # Ok::<(), tracing_tally::BuildError>(())
//! ```

mod context;
#[cfg(feature = "datadog")]
#[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
pub mod datadog;
#[cfg(any(feature = "sentry", feature = "datadog"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sentry", feature = "datadog"))))]
pub mod http;
mod json;
mod jsonl;
#[cfg(feature = "test-util")]
mod memory;
#[cfg(feature = "sentry")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
pub mod sentry;
#[cfg(feature = "statsd")]
#[cfg_attr(docsrs, doc(cfg(feature = "statsd")))]
pub mod statsd;

use std::time::Instant;

pub use crate::batch::{
    Batch, Breadcrumb, CounterValue, DistributionValue, ErrorEvent, FieldValue, Fields, GaugeValue,
    MetricKind, MetricRecord, MetricValue, Sampling, SessionStatus, SessionUpdate, SetValue,
    Sketch, SketchBucket, SpanId, SpanRecord, SpanStatus, Tag, TraceId, TraceSpan, Transaction,
};
pub use crate::error::{ExportError, ExportErrorKind};
pub use context::{Refused, SinkContext};
#[cfg(any(feature = "sentry", feature = "datadog"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sentry", feature = "datadog"))))]
pub use http::spool::SpoolOptions;
#[cfg(any(feature = "sentry", feature = "datadog"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sentry", feature = "datadog"))))]
pub use http::tls::CertificateError;
pub use jsonl::{encode_batch, JsonlSink};
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use memory::MemorySink;

/// A destination for batches.
///
/// Sinks are owned by one thread (their worker, or the flushing thread in manual mode), so they
/// need `Send` but not `Sync`, and take `&mut self`. A sink must not block past the deadlines it
/// is given; a panic inside it is caught and counted.
pub trait Sink: Send + 'static {
    /// A short name for diagnostics and self-metrics (`jsonl`, `sentry`, ...).
    fn name(&self) -> &str;

    /// Called once, on the sink's own thread, before anything else: the sink's view of its
    /// pipeline (the loss ledger, diagnostics, the service's identity, a pending flush's
    /// deadline). Keep it if you need it; the default ignores it.
    fn start(&mut self, cx: SinkContext) {
        let _ = cx;
    }

    /// Exports one batch.
    ///
    /// # Errors
    ///
    /// Returns an error when the batch could not be exported; its records are counted as dropped
    /// (`sink_error`).
    fn export(&mut self, batch: &Batch) -> Result<(), ExportError>;

    /// Makes sure everything exported so far has reached its destination, by `deadline`.
    ///
    /// # Errors
    ///
    /// Returns an error when that could not be done; the flush that asked reports failure.
    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        let _ = deadline;
        Ok(())
    }

    /// Flushes and releases resources; the sink receives nothing afterwards.
    ///
    /// # Errors
    ///
    /// As [`Sink::flush`].
    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.flush(deadline)
    }
}

impl<T: Sink + ?Sized> Sink for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn start(&mut self, cx: SinkContext) {
        (**self).start(cx);
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        (**self).export(batch)
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        (**self).flush(deadline)
    }

    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        (**self).shutdown(deadline)
    }
}
