use std::backtrace::Backtrace;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use smallvec::SmallVec;
use tracing_core::{Level, Metadata};

use super::ids::{SpanId, TraceId};
use super::metric::Tag;

/// Field values captured from an event or span, in field order.
pub type Fields = Vec<(&'static str, FieldValue)>;

/// A captured field value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// A string.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A 128-bit signed integer.
    I128(i128),
    /// A 128-bit unsigned integer.
    U128(u128),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A `%Display` or `?Debug` value, formatted.
    Text(String),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) | FieldValue::Text(s) => f.write_str(s),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::U64(v) => write!(f, "{v}"),
            FieldValue::I128(v) => write!(f, "{v}"),
            FieldValue::U128(v) => write!(f, "{v}"),
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl FieldValue {
    /// The value as text: strings move out as they are, other values are formatted.
    pub(crate) fn into_string(self) -> String {
        match self {
            FieldValue::Str(s) | FieldValue::Text(s) => s,
            other => other.to_string(),
        }
    }
}

/// An enclosing span of a captured error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpanRecord {
    /// The span's name.
    pub name: &'static str,
    /// The span's target.
    pub target: &'static str,
    /// The span's id.
    pub span_id: SpanId,
    /// The span's fields as recorded so far (empty when span field capture is off).
    pub fields: Fields,
}

/// A lower-level event that preceded an error on the same thread.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Breadcrumb {
    /// When the event happened.
    pub timestamp: SystemTime,
    /// The event's level.
    pub level: Level,
    /// The event's target.
    pub target: &'static str,
    /// The event's message, if it had one.
    pub message: String,
    /// The event's other fields.
    pub fields: Fields,
}

/// An error captured from an event at or above the error level.
#[derive(Clone)]
#[non_exhaustive]
pub struct ErrorEvent {
    /// When the event happened.
    pub timestamp: SystemTime,
    /// The event's callsite: level, target, module, file and line.
    pub metadata: &'static Metadata<'static>,
    /// The event's message, if it had one.
    pub message: Option<String>,
    /// The event's fields other than `message` and `error`.
    pub fields: Fields,
    /// The error chain from the `error` field: the error first, then each `source()`.
    pub error_chain: Vec<String>,
    /// The type of each error of the chain, as its `Debug` form names it (`Os`, `ParseIntError`),
    /// `Error` when only its text is known, `panic` for a panic.
    pub error_types: Vec<String>,
    /// The enclosing spans, innermost first.
    pub spans: Vec<SpanRecord>,
    /// The trace the event belongs to (the root span's trace), if it happened inside a span.
    pub trace_id: Option<TraceId>,
    /// The innermost enclosing span, if any.
    pub span_id: Option<SpanId>,
    /// Events that preceded this one on the same thread, oldest first.
    pub breadcrumbs: Vec<Breadcrumb>,
    /// Tags from `tags.*` fields and configured span fields, sorted by key.
    pub tags: SmallVec<[Tag; 2]>,
    /// An explicit grouping key from a `fingerprint` field, if any.
    pub fingerprint: Option<String>,
    /// `false` for a panic caught by the panic hook (a crash), `true` for an `error!` event.
    pub handled: bool,
    /// The stack where the error was captured, when stack traces are attached (symbols are
    /// resolved when it is first formatted, off the emitting thread).
    pub stacktrace: Option<Arc<Backtrace>>,
    /// The name of the thread that captured the error.
    pub thread: Option<String>,
}

impl ErrorEvent {
    /// An event of `metadata` at `timestamp` with nothing else known yet: no message, fields,
    /// chain, spans, trace, breadcrumbs, tags, fingerprint, stack or thread; handled.
    pub(crate) fn new(metadata: &'static Metadata<'static>, timestamp: SystemTime) -> ErrorEvent {
        ErrorEvent {
            timestamp,
            metadata,
            message: None,
            fields: Vec::new(),
            error_chain: Vec::new(),
            error_types: Vec::new(),
            spans: Vec::new(),
            trace_id: None,
            span_id: None,
            breadcrumbs: Vec::new(),
            tags: SmallVec::new(),
            fingerprint: None,
            handled: true,
            stacktrace: None,
            thread: None,
        }
    }

    /// The event's level.
    pub fn level(&self) -> Level {
        *self.metadata.level()
    }

    /// The event's target (Sentry's `logger`).
    pub fn target(&self) -> &'static str {
        self.metadata.target()
    }
}

impl fmt::Debug for ErrorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorEvent")
            .field("timestamp", &self.timestamp)
            .field("level", &self.level())
            .field("target", &self.target())
            .field("message", &self.message)
            .field("fields", &self.fields)
            .field("error_chain", &self.error_chain)
            .field("spans", &self.spans)
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("breadcrumbs", &self.breadcrumbs.len())
            .field("tags", &self.tags)
            .finish()
    }
}
