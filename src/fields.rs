//! The field-name contract: how event fields become metrics and tags.
//!
//! A field whose name starts with one of the prefixes below is a metric; the rest of the name
//! (up to an optional `@unit` suffix) is the metric's name. Every other field of the event is a tag,
//! except [`MESSAGE`] and [`ERROR`].
//!
//! | prefix | kind | accepts |
//! |---|---|---|
//! | [`MONOTONIC_COUNTER_PREFIX`] `monotonic_counter.` | counter that only goes up | any non-negative number |
//! | [`COUNTER_PREFIX`] `counter.` | up-down counter | any number |
//! | [`GAUGE_PREFIX`] `gauge.` | gauge (last, min, max, sum, count) | any number |
//! | [`HISTOGRAM_PREFIX`] `histogram.`, [`DISTRIBUTION_PREFIX`] `distribution.` | distribution | any number |
//! | [`TIMING_PREFIX`] `timing.` | distribution, unit `millisecond` | any number (milliseconds) |
//! | [`SET_PREFIX`] `set.` | set (unique count) | strings, integers, `%Display`/`?Debug` values |
//!
//! ```
//! use tracing::info;
//! # let bytes = 512u64; let user_id = 7u64;
//! info!(monotonic_counter.requests = 1, route = "/users", status = 200);
//! info!("distribution.payload@byte" = bytes, route = "/users");
//! info!(set.active_users = user_id, tags.region = "eu");
//! ```
//!
//! # Rules for names, units and tags
//!
//! * Metric names keep the characters `A-Z a-z 0-9 _ . -`; any other character becomes `_`. Names
//!   longer than [`MAX_NAME_LEN`] bytes are truncated. A prefix with an empty name (`counter.`) is
//!   not a metric and the field is ignored. Both cases are counted once per callsite
//!   (`invalid_name`).
//! * Units keep `A-Z a-z 0-9 _`, at most [`MAX_UNIT_LEN`] bytes.
//! * Tag keys follow the name rule; [`TAGS_PREFIX`] is stripped (`tags.region` is the tag `region`).
//! * Tag values longer than [`MAX_TAG_VALUE_LEN`] bytes are cut at the last character boundary
//!   before the limit; a series created with a cut value is counted (`tag_value_truncated`).
//!   Integers, booleans, `%Display` and `?Debug` values become their text.
//! * Tags are a set: the order of fields never creates a new series. When two fields name the same
//!   tag, the last one wins.

use std::borrow::Cow;
use std::fmt;

/// Prefix of a monotonic counter field: `monotonic_counter.NAME`.
pub const MONOTONIC_COUNTER_PREFIX: &str = "monotonic_counter.";
/// Prefix of an up-down counter field: `counter.NAME`.
pub const COUNTER_PREFIX: &str = "counter.";
/// Prefix of a gauge field: `gauge.NAME`.
pub const GAUGE_PREFIX: &str = "gauge.";
/// Prefix of a distribution field (tracing-opentelemetry's spelling): `histogram.NAME`.
pub const HISTOGRAM_PREFIX: &str = "histogram.";
/// Prefix of a distribution field: `distribution.NAME`.
pub const DISTRIBUTION_PREFIX: &str = "distribution.";
/// Prefix of a timing field, a distribution in milliseconds: `timing.NAME`.
pub const TIMING_PREFIX: &str = "timing.";
/// Prefix of a set field: `set.NAME`.
pub const SET_PREFIX: &str = "set.";
/// Prefix of an explicit tag field: `tags.KEY` is the tag `KEY`.
pub const TAGS_PREFIX: &str = "tags.";
/// Separates a metric name from its unit: `distribution.payload@byte`.
pub const UNIT_SEPARATOR: char = '@';
/// The event's message; never a tag.
pub const MESSAGE: &str = "message";
/// The event's error (`error = &e as &dyn Error`); never a tag, captured as the error chain.
pub const ERROR: &str = "error";
/// The tag key that names a span in span metrics (`span:NAME`): written by the layer, read back
/// by the summary that groups span timings.
pub(crate) const SPAN_TAG: &str = "span";

/// Span field naming the span's operation (`db.query`, `http.server`).
pub const SENTRY_OP: &str = "sentry.op";
/// Span field naming the span (and a root span's transaction) instead of the callsite name.
pub const SENTRY_NAME: &str = "sentry.name";
/// Span field describing the span.
pub const SENTRY_DESCRIPTION: &str = "sentry.description";
/// Span field giving the span's status (`ok`, `internal_error`, `not_found`, ...).
pub const SENTRY_STATUS: &str = "sentry.status";
/// Span field naming the span, OpenTelemetry's spelling.
pub const OTEL_NAME: &str = "otel.name";
/// Span field giving the span's status, OpenTelemetry's spelling (`OK`, `ERROR`).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// Root span field continuing an upstream trace from a `sentry-trace` header value.
pub const SENTRY_TRACE: &str = "sentry.trace";
/// Root span field carrying the upstream `baggage` header value (its `sentry-*` entries).
pub const BAGGAGE: &str = "baggage";
/// Root span field continuing an upstream trace from a W3C `traceparent` header value.
pub const TRACEPARENT: &str = "traceparent";

/// A span field with a meaning of its own: not span data, not a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanField {
    Op,
    Name,
    Description,
    Status,
    SentryTrace,
    Baggage,
    TraceParent,
}

/// The meaning of a span field name, if it has one.
pub(crate) fn span_field(name: &str) -> Option<SpanField> {
    Some(match name {
        SENTRY_OP => SpanField::Op,
        SENTRY_NAME | OTEL_NAME => SpanField::Name,
        SENTRY_DESCRIPTION => SpanField::Description,
        SENTRY_STATUS | OTEL_STATUS_CODE => SpanField::Status,
        SENTRY_TRACE => SpanField::SentryTrace,
        BAGGAGE => SpanField::Baggage,
        TRACEPARENT => SpanField::TraceParent,
        _ => return None,
    })
}

/// Longest metric name kept, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Longest unit kept, in bytes.
pub const MAX_UNIT_LEN: usize = 64;
/// Longest tag key kept, in bytes.
pub const MAX_TAG_KEY_LEN: usize = 200;
/// Longest tag value kept, in bytes.
pub const MAX_TAG_VALUE_LEN: usize = 200;

/// What one field name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldName {
    /// A metric field.
    Metric(MetricName),
    /// A prefix without a usable name: ignored and counted.
    InvalidMetric,
    /// A tag with this key.
    Tag(Cow<'static, str>),
    /// The message field.
    Message,
    /// The error field.
    Error,
}

/// The kind of a metric, from its field prefix (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MetricKind {
    /// A sum per interval (`monotonic_counter.`, `counter.`).
    Counter,
    /// Last, min, max, sum and count per interval (`gauge.`).
    Gauge,
    /// Count, sum, min, max and quantiles per interval (`histogram.`, `distribution.`, `timing.`).
    Distribution,
    /// Number of unique values per interval (`set.`).
    Set,
}

impl MetricKind {
    /// The lower-case name used in exported records: `counter`, `gauge`, `distribution`, `set`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Distribution => "distribution",
            MetricKind::Set => "set",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed metric field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricName {
    pub(crate) kind: MetricKind,
    pub(crate) monotonic: bool,
    pub(crate) name: String,
    pub(crate) unit: Option<String>,
    /// Whether the name or unit had to be changed to follow the rules.
    pub(crate) sanitized: bool,
}

const PREFIXES: [(&str, MetricKind, bool); 7] = [
    (MONOTONIC_COUNTER_PREFIX, MetricKind::Counter, true),
    (COUNTER_PREFIX, MetricKind::Counter, false),
    (GAUGE_PREFIX, MetricKind::Gauge, false),
    (HISTOGRAM_PREFIX, MetricKind::Distribution, false),
    (DISTRIBUTION_PREFIX, MetricKind::Distribution, false),
    (TIMING_PREFIX, MetricKind::Distribution, false),
    (SET_PREFIX, MetricKind::Set, false),
];

/// Classifies a field name (done once per callsite).
pub(crate) fn parse(field: &str) -> FieldName {
    match field {
        MESSAGE => return FieldName::Message,
        ERROR => return FieldName::Error,
        _ => {}
    }
    for (prefix, kind, monotonic) in PREFIXES {
        if let Some(rest) = field.strip_prefix(prefix) {
            return parse_metric(rest, kind, monotonic, prefix == TIMING_PREFIX);
        }
    }
    let key = field.strip_prefix(TAGS_PREFIX).unwrap_or(field);
    FieldName::Tag(sanitize_tag_key(key))
}

fn parse_metric(rest: &str, kind: MetricKind, monotonic: bool, timing: bool) -> FieldName {
    let (raw_name, raw_unit) = match rest.split_once(UNIT_SEPARATOR) {
        Some((name, unit)) => (name, Some(unit)),
        None => (rest, None),
    };
    if raw_name.is_empty() {
        return FieldName::InvalidMetric;
    }
    let (name, name_changed) = sanitize(raw_name, MAX_NAME_LEN, is_name_char);
    let (unit, unit_changed) = match raw_unit {
        Some(unit) if !unit.is_empty() => {
            let (unit, changed) = sanitize(unit, MAX_UNIT_LEN, is_unit_char);
            (Some(unit.into_owned()), changed)
        }
        Some(_) => (None, true),
        None if timing => (Some("millisecond".to_owned()), false),
        None => (None, false),
    };
    FieldName::Metric(MetricName {
        kind,
        monotonic,
        name: name.into_owned(),
        unit,
        sanitized: name_changed || unit_changed,
    })
}

/// Applies the tag-key rule to a key (configured keys and field names alike).
pub(crate) fn sanitize_tag_key(key: &str) -> Cow<'static, str> {
    Cow::Owned(sanitize(key, MAX_TAG_KEY_LEN, is_name_char).0.into_owned())
}

/// Applies the metric-name rule; returns the name and whether it changed.
pub(crate) fn sanitize_name(name: &str) -> (String, bool) {
    let (name, changed) = sanitize(name, MAX_NAME_LEN, is_name_char);
    (name.into_owned(), changed)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn sanitize(raw: &str, max: usize, keep: fn(char) -> bool) -> (Cow<'_, str>, bool) {
    if raw.len() <= max && raw.chars().all(keep) {
        return (Cow::Borrowed(raw), false);
    }
    let mut out: String = raw.chars().map(|c| if keep(c) { c } else { '_' }).collect();
    // Every kept character is ASCII, and the rest became `_`: byte truncation is safe.
    out.truncate(max);
    (Cow::Owned(out), true)
}

/// Cuts a tag value to [`MAX_TAG_VALUE_LEN`] bytes at a character boundary.
pub(crate) fn truncate_tag_value(value: &str) -> (&str, bool) {
    if value.len() <= MAX_TAG_VALUE_LEN {
        return (value, false);
    }
    let mut end = MAX_TAG_VALUE_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    (value.get(..end).unwrap_or_default(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(field: &'static str) -> MetricName {
        match parse(field) {
            FieldName::Metric(m) => m,
            other => panic!("{field} parsed as {other:?}"),
        }
    }

    #[test]
    fn prefixes_map_to_kinds() {
        let cases = [
            ("monotonic_counter.requests", MetricKind::Counter, true),
            ("counter.inflight", MetricKind::Counter, false),
            ("gauge.temperature", MetricKind::Gauge, false),
            ("histogram.latency", MetricKind::Distribution, false),
            ("distribution.latency", MetricKind::Distribution, false),
            ("timing.db", MetricKind::Distribution, false),
            ("set.users", MetricKind::Set, false),
        ];
        for (field, kind, monotonic) in cases {
            let m = metric(field);
            assert_eq!((m.kind, m.monotonic), (kind, monotonic), "{field}");
            assert!(!m.sanitized);
        }
        assert_eq!(metric("timing.db").unit.as_deref(), Some("millisecond"));
        assert_eq!(metric("timing.db@second").unit.as_deref(), Some("second"));
    }

    #[test]
    fn unit_suffix_is_split_off() {
        let m = metric("distribution.payload@byte");
        assert_eq!(m.name, "payload");
        assert_eq!(m.unit.as_deref(), Some("byte"));
    }

    #[test]
    fn special_and_tag_fields() {
        assert_eq!(parse("message"), FieldName::Message);
        assert_eq!(parse("error"), FieldName::Error);
        assert_eq!(parse("route"), FieldName::Tag("route".into()));
        assert_eq!(parse("tags.region"), FieldName::Tag("region".into()));
        assert_eq!(parse("counter."), FieldName::InvalidMetric);
        assert_eq!(parse("gauge.@byte"), FieldName::InvalidMetric);
    }

    #[test]
    fn names_are_sanitized_and_bounded() {
        let m = metric("counter.a b/c");
        assert_eq!(m.name, "a_b_c");
        assert!(m.sanitized);
        let long: &'static str = Box::leak(format!("counter.{}", "x".repeat(300)).into_boxed_str());
        assert_eq!(metric(long).name.len(), MAX_NAME_LEN);
        let m = metric("gauge.ünït");
        assert_eq!(m.name, "_n_t");
    }

    #[test]
    fn tag_values_are_cut_at_char_boundaries() {
        let value = "é".repeat(150); // 300 bytes
        let (cut, truncated) = truncate_tag_value(&value);
        assert!(truncated);
        assert_eq!(cut.len(), MAX_TAG_VALUE_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_tag_value("short"), ("short", false));
    }
}
