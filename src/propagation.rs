//! Trace propagation: continuing a trace from incoming headers, and headers for outgoing requests.
//!
//! **Incoming.** Put the headers' values in fields of the request's root span; the layer
//! continues that trace (its id, the upstream span as parent, the upstream sampling decision and
//! `sample_rand`, and the upstream `sentry-*` baggage, passed on unchanged):
//!
//! ```
//! # let (sentry_trace, baggage, traceparent) = ("", "", "");
//! let span = tracing::info_span!(
//!     "request",
//!     sentry.trace = sentry_trace, // the `sentry-trace` header, if any
//!     baggage = baggage,           // the `baggage` header, if any
//!     traceparent = traceparent,   // the W3C `traceparent` header, if any
//! );
//! ```
//!
//! `sentry-trace` wins over `traceparent` when both are present. Malformed values are ignored
//! (the span starts a new trace).
//!
//! **Outgoing.** [`trace_headers`] gives the headers to send with a request made inside a span:
//! `sentry-trace`, `traceparent` and (when traces are recorded) `baggage` with the dynamic
//! sampling context.
//!
//! ```
//! # use tracing_subscriber::prelude::*;
//! # let (tally, _guard) = tracing_tally::Tally::builder().manual().traces_sample_rate(1.0).build()?;
//! # tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
//! let span = tracing::info_span!("call upstream");
//! if let Some(headers) = tracing_tally::propagation::trace_headers(&span) {
//!     for (name, value) in headers.iter() {
//!         // request.header(name, value)
//! #       assert!(!value.is_empty(), "{name}");
//!     }
//! }
//! # });
//! # Ok::<(), tracing_tally::BuildError>(())
//! ```

pub use crate::trace_headers::TraceHeaders;

/// The headers to propagate the trace of `span` to an outgoing request; `None` if the span is
/// disabled, not recorded by tracing-tally, or the subscriber is not a `tracing-subscriber`
/// registry.
pub fn trace_headers(span: &tracing::Span) -> Option<TraceHeaders> {
    crate::layer::trace::headers_for(span)
}
