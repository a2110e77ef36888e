//! The local default sink: one JSON object per line, to standard output or a file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Number, Value};

use super::{Batch, Sink};
use crate::batch::{merge_tags, ErrorEvent, FieldValue, MetricRecord, MetricValue, Tag};
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
        f.debug_struct("JsonlSink")
            .field("target", &self.target)
            .finish_non_exhaustive()
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
        JsonlSink {
            writer: Box::new(writer),
            target: target.into(),
            buffer: Vec::new(),
        }
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
        write_line(out, &metric_json(batch, record));
    }
    for error in batch.errors() {
        write_line(out, &error_json(batch.global_tags(), error));
    }
}

fn write_line(out: &mut Vec<u8>, value: &Value) {
    // Serializing a `Value` into a `Vec` cannot fail: every map key is a string.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

fn unix_seconds(time: SystemTime) -> Value {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    if since.subsec_nanos() == 0 {
        Value::from(since.as_secs())
    } else {
        float(since.as_secs_f64())
    }
}

fn seconds(duration: std::time::Duration) -> Value {
    if duration.subsec_nanos() == 0 {
        Value::from(duration.as_secs())
    } else {
        float(duration.as_secs_f64())
    }
}

fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn tags_json<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        tags.into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}

fn metric_json(batch: &Batch, record: &MetricRecord) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), "metric".into());
    object.insert("name".into(), record.name().into());
    object.insert("kind".into(), record.kind().as_str().into());
    if record.is_monotonic() {
        object.insert("monotonic".into(), true.into());
    }
    if let Some(unit) = record.unit() {
        object.insert("unit".into(), unit.into());
    }
    object.insert("tags".into(), tags_json(batch.merged_tags(record)));
    object.insert("timestamp".into(), unix_seconds(record.timestamp()));
    object.insert("interval".into(), seconds(record.interval()));
    match record.value() {
        MetricValue::Counter(c) => {
            let value = match c.exact_integer().and_then(|i| i64::try_from(i).ok()) {
                Some(i) => Value::from(i),
                None => float(c.sum()),
            };
            object.insert("value".into(), value);
        }
        MetricValue::Gauge(g) => {
            object.insert("last".into(), float(g.last));
            object.insert("min".into(), float(g.min));
            object.insert("max".into(), float(g.max));
            object.insert("sum".into(), float(g.sum));
            object.insert("count".into(), g.count.into());
        }
        MetricValue::Distribution(d) => {
            object.insert("count".into(), d.count.into());
            object.insert("sum".into(), float(d.sum));
            object.insert("min".into(), float(d.min));
            object.insert("max".into(), float(d.max));
            let quantiles: Map<String, Value> = QUANTILES
                .iter()
                .map(|&(name, q)| (name.to_owned(), d.quantile(q).map_or(Value::Null, float)))
                .collect();
            object.insert("quantiles".into(), Value::Object(quantiles));
        }
        MetricValue::Set(s) => {
            object.insert("unique".into(), s.unique.into());
        }
    }
    Value::Object(object)
}

fn field_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Str(s) | FieldValue::Text(s) => Value::from(s.as_str()),
        FieldValue::I64(v) => Value::from(*v),
        FieldValue::U64(v) => Value::from(*v),
        FieldValue::I128(v) => i64::try_from(*v).map_or_else(|_| v.to_string().into(), Value::from),
        FieldValue::U128(v) => u64::try_from(*v).map_or_else(|_| v.to_string().into(), Value::from),
        FieldValue::F64(v) => {
            Number::from_f64(*v).map_or_else(|| v.to_string().into(), Value::Number)
        }
        FieldValue::Bool(v) => Value::from(*v),
    }
}

fn fields_json(fields: &[(&'static str, FieldValue)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), field_json(v)))
            .collect(),
    )
}

fn error_json(global_tags: &[Tag], error: &ErrorEvent) -> Value {
    let meta = error.metadata;
    let mut object = Map::new();
    object.insert("type".into(), "error".into());
    object.insert("timestamp".into(), unix_seconds(error.timestamp));
    object.insert(
        "level".into(),
        meta.level().as_str().to_ascii_lowercase().into(),
    );
    object.insert("target".into(), meta.target().into());
    if let Some(module) = meta.module_path() {
        object.insert("module".into(), module.into());
    }
    if let Some(file) = meta.file() {
        object.insert("file".into(), file.into());
    }
    if let Some(line) = meta.line() {
        object.insert("line".into(), line.into());
    }
    if let Some(message) = &error.message {
        object.insert("message".into(), message.as_str().into());
    }
    object.insert("fields".into(), fields_json(&error.fields));
    object.insert("error_chain".into(), json!(error.error_chain));
    if let Some(trace_id) = error.trace_id {
        object.insert("trace_id".into(), trace_id.to_string().into());
    }
    if let Some(span_id) = error.span_id {
        object.insert("span_id".into(), span_id.to_string().into());
    }
    let spans: Vec<Value> = error
        .spans
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "target": s.target,
                "span_id": s.span_id.to_string(),
                "fields": fields_json(&s.fields),
            })
        })
        .collect();
    object.insert("spans".into(), Value::Array(spans));
    let breadcrumbs: Vec<Value> = error
        .breadcrumbs
        .iter()
        .map(|b| {
            json!({
                "timestamp": unix_seconds(b.timestamp),
                "level": b.level.as_str().to_ascii_lowercase(),
                "target": b.target,
                "message": b.message,
                "fields": fields_json(&b.fields),
            })
        })
        .collect();
    object.insert("breadcrumbs".into(), Value::Array(breadcrumbs));
    object.insert(
        "tags".into(),
        tags_json(merge_tags(global_tags, &error.tags)),
    );
    if let Some(fingerprint) = &error.fingerprint {
        object.insert("fingerprint".into(), fingerprint.as_str().into());
    }
    Value::Object(object)
}
