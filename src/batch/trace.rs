use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::error_event::Fields;
use super::ids::{SpanId, TraceId};

/// The status of a finished span, in Sentry's and OpenTelemetry's shared vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanStatus {
    /// Completed without error.
    Ok,
    /// An error event happened inside the span, or its `otel.status_code` was `ERROR`.
    InternalError,
    /// Cancelled by the caller.
    Cancelled,
    /// Unknown error.
    UnknownError,
    /// The caller's input was invalid.
    InvalidArgument,
    /// A deadline passed.
    DeadlineExceeded,
    /// Something was not found.
    NotFound,
    /// Something already existed.
    AlreadyExists,
    /// The caller may not do this.
    PermissionDenied,
    /// A resource ran out.
    ResourceExhausted,
    /// The system was not in the state the operation needs.
    FailedPrecondition,
    /// Aborted, often on a concurrency conflict.
    Aborted,
    /// Out of range.
    OutOfRange,
    /// Not implemented.
    Unimplemented,
    /// Service unavailable.
    Unavailable,
    /// Data loss.
    DataLoss,
    /// Not authenticated.
    Unauthenticated,
}

impl SpanStatus {
    /// The status's wire name (`ok`, `internal_error`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::InternalError => "internal_error",
            SpanStatus::Cancelled => "cancelled",
            SpanStatus::UnknownError => "unknown_error",
            SpanStatus::InvalidArgument => "invalid_argument",
            SpanStatus::DeadlineExceeded => "deadline_exceeded",
            SpanStatus::NotFound => "not_found",
            SpanStatus::AlreadyExists => "already_exists",
            SpanStatus::PermissionDenied => "permission_denied",
            SpanStatus::ResourceExhausted => "resource_exhausted",
            SpanStatus::FailedPrecondition => "failed_precondition",
            SpanStatus::Aborted => "aborted",
            SpanStatus::OutOfRange => "out_of_range",
            SpanStatus::Unimplemented => "unimplemented",
            SpanStatus::Unavailable => "unavailable",
            SpanStatus::DataLoss => "data_loss",
            SpanStatus::Unauthenticated => "unauthenticated",
        }
    }

    /// The status for a field value: a Sentry status name, or an OpenTelemetry status code
    /// (`OK`, `ERROR`, `UNSET`). Unknown text is `None`.
    pub fn parse(text: &str) -> Option<SpanStatus> {
        let status = match text.to_ascii_lowercase().as_str() {
            "ok" | "unset" => SpanStatus::Ok,
            "error" | "internal_error" => SpanStatus::InternalError,
            "cancelled" => SpanStatus::Cancelled,
            "unknown_error" | "unknown" => SpanStatus::UnknownError,
            "invalid_argument" => SpanStatus::InvalidArgument,
            "deadline_exceeded" => SpanStatus::DeadlineExceeded,
            "not_found" => SpanStatus::NotFound,
            "already_exists" => SpanStatus::AlreadyExists,
            "permission_denied" => SpanStatus::PermissionDenied,
            "resource_exhausted" => SpanStatus::ResourceExhausted,
            "failed_precondition" => SpanStatus::FailedPrecondition,
            "aborted" => SpanStatus::Aborted,
            "out_of_range" => SpanStatus::OutOfRange,
            "unimplemented" => SpanStatus::Unimplemented,
            "unavailable" => SpanStatus::Unavailable,
            "data_loss" => SpanStatus::DataLoss,
            "unauthenticated" => SpanStatus::Unauthenticated,
            _ => return None,
        };
        Some(status)
    }
}

impl fmt::Display for SpanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finished span of a recorded trace.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TraceSpan {
    /// The span's id.
    pub span_id: SpanId,
    /// Its parent's id; for a root span, the upstream parent when the trace was continued.
    pub parent_span_id: Option<SpanId>,
    /// The span's name (from `sentry.name` or `otel.name` when given, else the callsite name).
    pub name: String,
    /// Its operation (`sentry.op` when given, else the callsite name).
    pub op: String,
    /// Its description (`sentry.description`, `otel.name` or the message when given).
    pub description: Option<String>,
    /// The callsite's target.
    pub target: &'static str,
    /// When the span opened.
    pub start: SystemTime,
    /// When the span closed.
    pub end: SystemTime,
    /// How it ended.
    pub status: SpanStatus,
    /// Its fields (the span data).
    pub fields: Fields,
}

/// What a trace was sampled with.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Sampling {
    /// The probability the trace had of being kept.
    pub sample_rate: f64,
    /// The trace's random number in `[0, 1)`: kept when below the rate.
    pub sample_rand: f64,
    /// Whether the trace is kept.
    pub sampled: bool,
}

/// A recorded trace: a root span with the child spans that closed before it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Transaction {
    /// The trace's id.
    pub trace_id: TraceId,
    /// The root span (Sentry's transaction).
    pub root: TraceSpan,
    /// The child spans, in the order they closed.
    pub spans: Vec<TraceSpan>,
    /// Child spans left out: over the span limit, or closed after the root.
    pub dropped_spans: u32,
    /// The sampling decision.
    pub sampling: Sampling,
    /// The upstream service's frozen baggage (its `sentry-*` entries), when the trace was
    /// continued from incoming headers; sinks pass it on unchanged.
    pub upstream_baggage: Option<Arc<[(String, String)]>>,
}
