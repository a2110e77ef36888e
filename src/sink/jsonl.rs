//! The local default sink: one JSON object per line, to standard output or a file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::json::{value, Object};
use super::{Batch, Sink};
use crate::batch::{
    merge_tags, ErrorEvent, FieldValue, MetricRecord, MetricValue, SessionUpdate, Tag, TraceSpan,
    Transaction,
};
use crate::error::ExportError;

/// Quantiles written for distributions.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)];

/// Writes every record as one JSON object per line.
///
/// The schema is documented in the README (`## JSON lines`). Metric records:
///
/// ```text
/// {"type":"metric","name":"requests","kind":"counter","monotonic":true,"tags":{"route":"/users","service":"api"},"timestamp":1700000000,"interval":10,"value":42}
/// {"type":"metric","name":"temperature","kind":"gauge","tags":{},"timestamp":1700000000,"interval":10,"last":21.5,"min":20.0,"max":22.0,"sum":64.5,"count":3}
/// {"type":"metric","name":"span.duration","kind":"distribution","unit":"millisecond","tags":{"span":"handle"},"timestamp":1700000000,"interval":10,"count":3,"sum":12.5,"min":2.0,"max":6.5,"quantiles":{"p50":4.0,"p90":6.5,"p95":6.5,"p99":6.5}}
/// {"type":"metric","name":"users","kind":"set","tags":{},"timestamp":1700000000,"interval":10,"unique":17}
/// ```
///
/// Error records carry `"type":"error"` with the captured fields (see [`ErrorEvent`]).
pub struct JsonlSink {
    writer: Box<dyn Write + Send>,
    target: String,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink").field("target", &self.target).finish_non_exhaustive()
    }
}

impl JsonlSink {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        JsonlSink::new(io::stdout(), "stdout")
    }

    /// Appends to a file, creating it if needed.
    ///
    /// # Errors
    ///
    /// Returns the error from opening the file.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlSink::new(file, path.display().to_string()))
    }

    /// Writes to any writer; `target` names it in diagnostics.
    pub fn new(writer: impl Write + Send + 'static, target: impl Into<String>) -> Self {
        JsonlSink { writer: Box::new(writer), target: target.into(), buffer: Vec::new() }
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.buffer.clear();
        encode_batch(batch, &mut self.buffer);
        self.writer.write_all(&self.buffer)?;
        Ok(())
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        self.writer.flush()?;
        Ok(())
    }
}

/// Encodes a batch as JSON lines (one object per record, each ending in `\n`) into `out`.
pub fn encode_batch(batch: &Batch, out: &mut Vec<u8>) {
    for record in batch.metrics() {
        encode_metric(batch, record, out);
        out.push(b'\n');
    }
    for error in batch.errors() {
        encode_error(batch.global_tags(), error, out);
        out.push(b'\n');
    }
    for transaction in batch.transactions() {
        encode_transaction(batch.global_tags(), transaction, out);
        out.push(b'\n');
    }
    for session in batch.sessions() {
        encode_session(session, out);
        out.push(b'\n');
    }
}

fn span_fields(o: &mut Object<'_>, span: &TraceSpan) {
    o.field("span_id", &span.span_id.to_string());
    if let Some(parent) = span.parent_span_id {
        o.field("parent_span_id", &parent.to_string());
    }
    o.field("name", &span.name);
    o.field("op", &span.op);
    if let Some(description) = &span.description {
        o.field("description", description);
    }
    o.field("target", span.target);
    o.with("start", |out| unix_seconds(out, span.start));
    o.with("end", |out| unix_seconds(out, span.end));
    let duration = span.end.duration_since(span.start).unwrap_or_default();
    o.field("duration_ms", &(duration.as_secs_f64() * 1e3));
    o.field("status", span.status.as_str());
    o.with("fields", |out| fields(out, &span.fields));
}

fn encode_transaction(global_tags: &[Tag], transaction: &Transaction, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.field("type", "transaction");
    o.field("trace_id", &transaction.trace_id.to_string());
    span_fields(&mut o, &transaction.root);
    let sampling = transaction.sampling;
    o.with("sampling", |out| {
        let mut s = Object::new(out);
        s.field("sample_rate", &sampling.sample_rate);
        s.field("sample_rand", &sampling.sample_rand);
        s.field("sampled", &sampling.sampled);
        s.end();
    });
    o.field("dropped_spans", &transaction.dropped_spans);
    o.with("tags", |out| tags(out, global_tags.iter().map(|t| (t.key(), t.value()))));
    o.with("spans", |out| {
        out.push(b'[');
        for (i, span) in transaction.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut s = Object::new(out);
            span_fields(&mut s, span);
            s.end();
        }
        out.push(b']');
    });
    o.end();
}

fn encode_session(session: &SessionUpdate, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.field("type", "session");
    o.field("sid", &session.sid_string());
    o.field("init", &session.init);
    o.with("started", |out| unix_seconds(out, session.started));
    o.with("timestamp", |out| unix_seconds(out, session.timestamp));
    o.field("status", session.status.as_str());
    o.field("errors", &session.errors);
    o.field("release", &session.release);
    if let Some(environment) = &session.environment {
        o.field("environment", environment);
    }
    o.end();
}

/// Unix seconds: an integer when whole, else a float.
fn unix_seconds(out: &mut Vec<u8>, time: SystemTime) {
    seconds(out, time.duration_since(UNIX_EPOCH).unwrap_or_default());
}

fn seconds(out: &mut Vec<u8>, duration: Duration) {
    if duration.subsec_nanos() == 0 {
        value(out, &duration.as_secs());
    } else {
        value(out, &duration.as_secs_f64());
    }
}

fn tags<'a>(out: &mut Vec<u8>, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut object = Object::new(out);
    for (key, v) in tags {
        object.field(key, v);
    }
    object.end();
}

fn encode_metric(batch: &Batch, record: &MetricRecord, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.field("type", "metric");
    o.field("name", record.name());
    o.field("kind", record.kind().as_str());
    if record.is_monotonic() {
        o.field("monotonic", &true);
    }
    if let Some(unit) = record.unit() {
        o.field("unit", unit);
    }
    o.with("tags", |out| tags(out, batch.merged_tags(record)));
    o.with("timestamp", |out| unix_seconds(out, record.timestamp()));
    o.with("interval", |out| seconds(out, record.interval()));
    match record.value() {
        MetricValue::Counter(c) => match c.exact_integer().and_then(|i| i64::try_from(i).ok()) {
            Some(i) => o.field("value", &i),
            None => o.field("value", &c.sum()),
        },
        MetricValue::Gauge(g) => {
            o.field("last", &g.last);
            o.field("min", &g.min);
            o.field("max", &g.max);
            o.field("sum", &g.sum);
            o.field("count", &g.count);
        }
        MetricValue::Distribution(d) => {
            o.field("count", &d.count);
            o.field("sum", &d.sum);
            o.field("min", &d.min);
            o.field("max", &d.max);
            o.with("quantiles", |out| {
                let mut q = Object::new(out);
                for (name, quantile) in QUANTILES {
                    q.field(name, &d.quantile(quantile));
                }
                q.end();
            });
        }
        MetricValue::Set(s) => o.field("unique", &s.unique),
    }
    o.end();
}

fn field_value(out: &mut Vec<u8>, v: &FieldValue) {
    match v {
        FieldValue::Str(s) | FieldValue::Text(s) => value(out, s),
        FieldValue::I64(v) => value(out, v),
        FieldValue::U64(v) => value(out, v),
        // Outside the 64-bit range, as text: JSON readers lose precision on such numbers.
        FieldValue::I128(v) => match i64::try_from(*v) {
            Ok(v) => value(out, &v),
            Err(_) => value(out, &v.to_string()),
        },
        FieldValue::U128(v) => match u64::try_from(*v) {
            Ok(v) => value(out, &v),
            Err(_) => value(out, &v.to_string()),
        },
        FieldValue::F64(v) if v.is_finite() => value(out, v),
        FieldValue::F64(v) => value(out, &v.to_string()),
        FieldValue::Bool(v) => value(out, v),
    }
}

fn fields(out: &mut Vec<u8>, fields: &[(&'static str, FieldValue)]) {
    let mut o = Object::new(out);
    for (key, v) in fields {
        o.with(key, |out| field_value(out, v));
    }
    o.end();
}

fn encode_error(global_tags: &[Tag], error: &ErrorEvent, out: &mut Vec<u8>) {
    let meta = error.metadata;
    let mut o = Object::new(out);
    o.field("type", "error");
    o.with("timestamp", |out| unix_seconds(out, error.timestamp));
    o.field("level", &meta.level().as_str().to_ascii_lowercase());
    o.field("target", meta.target());
    if let Some(module) = meta.module_path() {
        o.field("module", module);
    }
    if let Some(file) = meta.file() {
        o.field("file", file);
    }
    if let Some(line) = meta.line() {
        o.field("line", &line);
    }
    if let Some(message) = &error.message {
        o.field("message", message);
    }
    o.with("fields", |out| fields(out, &error.fields));
    o.field("error_chain", &error.error_chain);
    if let Some(trace_id) = error.trace_id {
        o.field("trace_id", &trace_id.to_string());
    }
    if let Some(span_id) = error.span_id {
        o.field("span_id", &span_id.to_string());
    }
    o.with("spans", |out| {
        out.push(b'[');
        for (i, span) in error.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut s = Object::new(out);
            s.field("name", span.name);
            s.field("target", span.target);
            s.field("span_id", &span.span_id.to_string());
            s.with("fields", |out| fields(out, &span.fields));
            s.end();
        }
        out.push(b']');
    });
    o.with("breadcrumbs", |out| {
        out.push(b'[');
        for (i, crumb) in error.breadcrumbs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut b = Object::new(out);
            b.with("timestamp", |out| unix_seconds(out, crumb.timestamp));
            b.field("level", &crumb.level.as_str().to_ascii_lowercase());
            b.field("target", crumb.target);
            b.field("message", &crumb.message);
            b.with("fields", |out| fields(out, &crumb.fields));
            b.end();
        }
        out.push(b']');
    });
    o.with("tags", |out| tags(out, merge_tags(global_tags, &error.tags)));
    if let Some(fingerprint) = &error.fingerprint {
        o.field("fingerprint", fingerprint);
    }
    o.end();
}
