//! The plain inputs, and the batch the flusher would build from them (with the one callsite
//! every captured error shares).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

use crate::aggregate::series::{MetricDesc, SeriesEntry};
use crate::aggregate::sketch::Sketch;
use crate::aggregate::tag::Tag;
use crate::batch::{
    Batch, CounterValue, DistributionValue, ErrorEvent, FieldValue, GaugeValue, MetricKind,
    MetricRecord, MetricValue, SetValue,
};
use crate::fields::{self};

/// One metric series' input over one interval.
#[derive(Debug, Clone, Default)]
pub struct MetricInput {
    /// The metric's name (sanitized like a field name unless `raw_name`).
    pub name: String,
    /// Keeps the name as it is (names that do not come from fields, such as span names).
    pub raw_name: bool,
    /// The kind, modulo 4: counter, gauge, distribution, set.
    pub kind: u8,
    /// A monotonic counter (negative increments are then dropped, as the layer does).
    pub monotonic: bool,
    /// The unit (sanitized like a field's `@unit`).
    pub unit: Option<String>,
    /// Tags: keys sanitized like field names, values as they are.
    pub tags: Vec<(String, String)>,
    /// The values recorded in the interval (counter increments, gauge values, distribution
    /// values, set members by their bits). Non-finite values are dropped.
    pub values: Vec<f64>,
    /// For a set: an estimated unique count past 1,000 members.
    pub unique: u64,
    /// How long ago the interval started, in seconds.
    pub age_secs: u32,
}

/// One captured error's input.
#[derive(Debug, Clone, Default)]
pub struct ErrorInput {
    /// The message.
    pub message: Option<String>,
    /// The error chain.
    pub chain: Vec<String>,
    /// The `fingerprint` field.
    pub fingerprint: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Values of fields (named from a fixed list, sensitive names included).
    pub fields: Vec<String>,
    /// The enclosing spans: a name index and field values.
    pub spans: Vec<(u8, Vec<String>)>,
    /// How long ago the error happened, in seconds.
    pub age_secs: u32,
}

/// A batch's input.
#[derive(Debug, Clone, Default)]
pub struct BatchInput {
    /// Metric series.
    pub metrics: Vec<MetricInput>,
    /// Captured errors.
    pub errors: Vec<ErrorInput>,
    /// Global tags (keys sanitized and values cut, as the builder does).
    pub global_tags: Vec<(String, String)>,
}

struct FuzzCallsite;

impl Callsite for FuzzCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &FUZZ_METADATA
    }
}

static FUZZ_CALLSITE: FuzzCallsite = FuzzCallsite;

static FUZZ_METADATA: Metadata<'static> = Metadata::new(
    "event src/fuzz.rs:1",
    "fuzz::target",
    Level::ERROR,
    Some("src/fuzz.rs"),
    Some(1),
    Some("fuzz::target"),
    FieldSet::new(&[], Identifier(&FUZZ_CALLSITE)),
    Kind::EVENT,
);

/// Field names of error fields: ordinary and sensitive ones.
const FIELD_NAMES: [&str; 6] = ["route", "password", "user.email", "query", "api_key", "x"];
/// Names of enclosing spans.
const SPAN_NAMES: [&str; 4] = ["request", "db.query", "", "span with spaces|and:more"];

fn series_tags(tags: &[(String, String)]) -> SmallVec<[Tag; 2]> {
    let mut out: Vec<Tag> = Vec::new();
    for (key, value) in tags {
        let key = fields::sanitize_tag_key(key);
        // The last field naming a tag wins.
        out.retain(|t| t.key() != key);
        out.push(Tag::new(&key, value));
    }
    out.sort_by(|a, b| a.key().cmp(b.key()));
    out.into_iter().collect()
}

fn global_tags(tags: &[(String, String)]) -> Arc<[Tag]> {
    let mut out: Vec<Tag> = Vec::new();
    for (key, value) in tags {
        let key = fields::sanitize_tag_key(key);
        if key.is_empty() {
            continue;
        }
        let (value, _) = fields::truncate_tag_value(value);
        out.retain(|t| t.key() != key);
        out.push(Tag::new(&key, value));
    }
    out.sort_by(|a, b| a.key().cmp(b.key()));
    out.into()
}

fn ago(now: SystemTime, secs: u32) -> SystemTime {
    now.checked_sub(Duration::from_secs(u64::from(secs))).unwrap_or(UNIX_EPOCH)
}

/// The record the flusher would produce for `input` (`None` when the interval has no data).
fn record(input: &MetricInput, now: SystemTime) -> Option<MetricRecord> {
    let kind = [MetricKind::Counter, MetricKind::Gauge, MetricKind::Distribution, MetricKind::Set]
        [usize::from(input.kind % 4)];
    let monotonic = input.monotonic && kind == MetricKind::Counter;
    let name =
        if input.raw_name { input.name.clone() } else { fields::sanitize_name(&input.name).0 };
    if name.is_empty() {
        // A field prefix without a name is not a metric (`FieldName::InvalidMetric`).
        return None;
    }
    let unit = input
        .unit
        .as_ref()
        .map(|u| u.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect())
        .filter(|u: &String| !u.is_empty())
        .map(|u| u.chars().take(fields::MAX_UNIT_LEN).collect::<String>());
    let values: Vec<f64> = input
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && !(monotonic && *v < 0.0))
        .collect();
    let value = match kind {
        MetricKind::Counter => {
            let mut counter = CounterValue::default();
            for v in &values {
                if v.fract() == 0.0 && v.abs() <= 4_294_967_296.0 {
                    counter.integer += *v as i128;
                } else {
                    counter.float += v;
                }
            }
            MetricValue::Counter(counter)
        }
        MetricKind::Gauge => {
            let last = *values.last()?;
            MetricValue::Gauge(GaugeValue {
                last,
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                sum: values.iter().sum(),
                count: values.len() as u64,
            })
        }
        MetricKind::Distribution => {
            if values.is_empty() {
                return None;
            }
            let mut sketch = Sketch::new();
            values.iter().for_each(|&v| sketch.insert(v));
            MetricValue::Distribution(DistributionValue {
                count: values.len() as u64,
                sum: values.iter().sum(),
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                sketch: Box::new(sketch),
            })
        }
        MetricKind::Set => {
            if input.unique > 1000 {
                MetricValue::Set(SetValue { unique: input.unique, members: None })
            } else {
                let mut members: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
                members.sort_unstable();
                members.dedup();
                if members.is_empty() {
                    return None;
                }
                MetricValue::Set(SetValue {
                    unique: members.len() as u64,
                    members: Some(members.into()),
                })
            }
        }
    };
    let metric = Arc::new(MetricDesc::new(&name, kind, monotonic, unit.as_deref()));
    let hash = metric.hash ^ input.tags.len() as u64;
    Some(MetricRecord {
        series: Arc::new(SeriesEntry::new(hash, metric, series_tags(&input.tags), false, 0)),
        start: ago(now, input.age_secs),
        interval: Duration::from_secs(10),
        value,
    })
}

fn error(input: &ErrorInput, now: SystemTime) -> ErrorEvent {
    let fields = input
        .fields
        .iter()
        .enumerate()
        .map(|(i, v)| (FIELD_NAMES[i % FIELD_NAMES.len()], FieldValue::Str(v.clone())))
        .collect();
    let spans = input
        .spans
        .iter()
        .enumerate()
        .map(|(i, (name, values))| crate::batch::SpanRecord {
            name: SPAN_NAMES[usize::from(*name) % SPAN_NAMES.len()],
            target: "fuzz::span",
            span_id: crate::batch::SpanId(i as u64 + 1),
            fields: values
                .iter()
                .enumerate()
                .map(|(j, v)| (FIELD_NAMES[j % FIELD_NAMES.len()], FieldValue::Text(v.clone())))
                .collect(),
        })
        .collect();
    ErrorEvent {
        message: input.message.clone(),
        fields,
        error_chain: input.chain.clone(),
        spans,
        tags: series_tags(&input.tags),
        fingerprint: input.fingerprint.clone(),
        ..ErrorEvent::new(&FUZZ_METADATA, ago(now, input.age_secs))
    }
}

/// The batch the flusher would hand to the sinks for `input`.
pub fn batch(input: &BatchInput) -> Batch {
    let now = SystemTime::now();
    Batch {
        metrics: input.metrics.iter().filter_map(|m| record(m, now)).collect(),
        errors: input.errors.iter().map(|e| error(e, now)).collect(),
        global_tags: global_tags(&input.global_tags),
        ..Batch::default()
    }
}
