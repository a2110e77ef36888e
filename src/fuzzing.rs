//! Entry points for the fuzz targets (`fuzz/`) and the bad-input property tests
//! (`tests/bad_input.rs`); compiled only with the `fuzzing` feature, not part of the API.
//!
//! Each function takes plain inputs, builds what the pipeline would hand to the code under test
//! (field names, records and errors, a [`Batch`]), runs the real parser or encoder, and checks
//! the invariants itself, panicking on a violation:
//!
//! * [`fields`]: field names parse into names, units and tag keys that follow the documented
//!   rules and limits; tag values are cut at character boundaries; sink names follow each sink's
//!   rules.
//! * [`statsd`]: every datagram is within the packet size, every line follows the StatsD /
//!   DogStatsD grammar, events are within 8 KiB, and every message and distribution value is
//!   either sent or counted.
//! * [`sentry`]: every envelope parses (header line, item headers with exact lengths, JSON
//!   payloads), items are within Sentry's limits, and every metric value is sent or counted.
//! * [`datadog`]: every payload is within the intake's limits (the real ones or smaller ones, to
//!   exercise splitting), is valid JSON, and every point is sent or counted as a loss.
//!
//! Input values follow what the layer lets through: non-finite numbers are dropped before
//! aggregation (as the layer does), but sums may still overflow to infinity; metric names and
//! tag keys are sanitized like field names unless [`MetricInput::raw_name`] asks otherwise; tag
//! values may be any text of any length (span names are not cut).

// Panicking is how a fuzzer learns of a violated invariant; this module exists only for fuzzers
// and the tests that share their checks.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
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
use crate::fields::{self, FieldName};

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

// === fields ===

/// Parses `field` as a field name, sanitizes it as a metric name and a tag key, cuts it as a tag
/// value, and checks every result against the rules of [`crate::fields`].
pub fn fields(field: &str) {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let is_unit_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match fields::parse(field) {
        FieldName::Message => assert_eq!(field, fields::MESSAGE),
        FieldName::Error => assert_eq!(field, fields::ERROR),
        FieldName::InvalidMetric => {}
        FieldName::Metric(metric) => {
            assert!(!metric.name.is_empty(), "empty metric name from {field:?}");
            assert!(metric.name.len() <= fields::MAX_NAME_LEN, "{field:?}");
            assert!(metric.name.chars().all(is_name_char), "{:?} from {field:?}", metric.name);
            if let Some(unit) = &metric.unit {
                assert!(!unit.is_empty() && unit.len() <= fields::MAX_UNIT_LEN, "{field:?}");
                assert!(unit.chars().all(is_unit_char), "{unit:?} from {field:?}");
            }
            if !metric.sanitized {
                assert!(field.contains(metric.name.as_str()), "{field:?}");
            }
        }
        FieldName::Tag(key) => {
            assert!(key.len() <= fields::MAX_TAG_KEY_LEN, "{field:?}");
            assert!(key.chars().all(is_name_char), "{key:?} from {field:?}");
        }
    }
    let (name, changed) = fields::sanitize_name(field);
    assert!(name.len() <= fields::MAX_NAME_LEN && name.chars().all(is_name_char));
    assert_eq!(changed, name != field, "{field:?}");
    let (value, truncated) = fields::truncate_tag_value(field);
    assert!(value.len() <= fields::MAX_TAG_VALUE_LEN);
    assert!(field.starts_with(value));
    assert_eq!(truncated, value.len() < field.len());
    if truncated {
        // Cut at the last boundary: the next character would not have fitted.
        let next = field[value.len()..].chars().next().map_or(0, char::len_utf8);
        assert!(value.len() + next > fields::MAX_TAG_VALUE_LEN, "{field:?}");
    }
    let tag = Tag::new(&name, field);
    assert_eq!((tag.key(), tag.value()), (name.as_str(), field));
    #[cfg(feature = "statsd")]
    statsd_names(field);
}

#[cfg(feature = "statsd")]
fn statsd_names(field: &str) {
    use crate::sink::statsd::encode::{Dialect, TagStyle};
    for dialect in [Dialect::DogStatsd, Dialect::Plain(TagStyle::Graphite)] {
        let encoding = statsd_encoding(dialect, field.get(..8).unwrap_or_default(), "d");
        let name = encoding.name(field);
        assert!(!name.is_empty() || dialect != Dialect::DogStatsd, "{field:?}");
        check_statsd_name(&name, dialect);
    }
}

// === building batches ===

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
        timestamp: ago(now, input.age_secs),
        metadata: &FUZZ_METADATA,
        message: input.message.clone(),
        fields,
        error_chain: input.chain.clone(),
        error_types: Vec::new(),
        spans,
        trace_id: None,
        span_id: None,
        breadcrumbs: Vec::new(),
        tags: series_tags(&input.tags),
        fingerprint: input.fingerprint.clone(),
        handled: true,
        stacktrace: None,
        thread: None,
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

// === StatsD ===

/// What the StatsD sink is configured with.
#[cfg(feature = "statsd")]
#[derive(Debug, Clone, Default)]
pub struct StatsdInput {
    /// DogStatsD (0), or plain StatsD with Graphite tags (1), DogStatsD tags (2), no tags (3).
    pub dialect: u8,
    /// The metric name prefix.
    pub prefix: String,
    /// The configured packet size (clamped as the options clamp it).
    pub max_packet: u32,
    /// Distributions as `d`, `h` or `ms` (modulo 3).
    pub distribution_type: u8,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`statsd`] produced.
#[cfg(feature = "statsd")]
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsdOutcome {
    /// Datagrams.
    pub datagrams: usize,
    /// Messages sent.
    pub messages: u64,
    /// Messages dropped for being longer than a datagram.
    pub oversized: u64,
}

#[cfg(feature = "statsd")]
fn statsd_encoding(
    dialect: crate::sink::statsd::encode::Dialect,
    prefix: &str,
    distribution_type: &'static str,
) -> crate::sink::statsd::encode::Encoding {
    crate::sink::statsd::encode::Encoding {
        dialect,
        prefix: prefix.to_owned(),
        distribution_type,
        origin_suffix: String::new(),
        max_plain_values: 1_000,
    }
}

/// Encodes a batch as the StatsD sink does and checks the datagrams.
#[cfg(feature = "statsd")]
pub fn statsd(input: &StatsdInput) -> StatsdOutcome {
    use crate::sink::statsd::encode::{dogstatsd_global_tags, Dialect, TagStyle};
    use crate::sink::statsd::merge;
    use crate::sink::statsd::packet::Packer;

    let dialect = match input.dialect % 4 {
        0 => Dialect::DogStatsd,
        1 => Dialect::Plain(TagStyle::Graphite),
        2 => Dialect::Plain(TagStyle::DogStatsd),
        _ => Dialect::Plain(TagStyle::Drop),
    };
    let distribution_type = ["d", "h", "ms"][usize::from(input.distribution_type % 3)];
    let encoding = statsd_encoding(dialect, &input.prefix, distribution_type);
    let max = usize::try_from(input.max_packet).unwrap_or(usize::MAX).clamp(64, 65_467);
    let batch = batch(&input.batch);
    let global: Vec<(String, String)> = match dialect {
        Dialect::DogStatsd => dogstatsd_global_tags(batch.global_tags()),
        Dialect::Plain(_) => {
            batch.global_tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
        }
    };
    let mut packer = Packer::new(max);
    let mut messages = 0u64;
    for record in batch.metrics() {
        let tags = merge(&global, record.tags());
        let produced = encoding.record(record, &tags, &mut packer);
        messages += produced.messages;
        // The same record on its own: its lines, and its values accounted for.
        let mut own = Packer::new(max);
        let alone = encoding.record(record, &tags, &mut own);
        assert_eq!(alone, produced);
        let (datagrams, oversized, _) = own.finish();
        let lines: Vec<String> = datagrams
            .iter()
            .flat_map(|d| std::str::from_utf8(&d.bytes).expect("UTF-8").split('\n'))
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len() as u64 + oversized, produced.messages);
        match record.value() {
            MetricValue::Set(set) => {
                let members =
                    set.member_hashes().map_or(set.unique.min(10_000), |m| m.len() as u64);
                assert_eq!(produced.messages, members);
                assert_eq!(produced.sampled, set.unique - members);
            }
            MetricValue::Distribution(d) if oversized == 0 => {
                let sent: u64 = lines.iter().map(|l| weighted_values(l, dialect)).sum();
                assert_eq!(sent + produced.dropped, d.count, "{lines:?}");
            }
            _ => {}
        }
    }
    for error in batch.errors() {
        let tags = merge(&global, &error.tags);
        // `None` is counted by the sink (`sink_error`).
        if let Some(event) = encoding.event(error, &tags) {
            // Checked here too: an event over the packet size never reaches a datagram.
            check_statsd_line(&event, dialect);
            packer.push(event.as_bytes());
            messages += 1;
        }
    }
    let (datagrams, oversized, _) = packer.finish();
    let mut sent = 0u64;
    for datagram in &datagrams {
        assert!(datagram.bytes.len() <= max, "datagram of {} > {max}", datagram.bytes.len());
        let text = std::str::from_utf8(&datagram.bytes).expect("datagrams are UTF-8");
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), datagram.messages as usize);
        for line in lines {
            check_statsd_line(line, dialect);
        }
        sent += u64::from(datagram.messages);
    }
    assert_eq!(sent + oversized, messages, "every message is sent or counted");
    StatsdOutcome { datagrams: datagrams.len(), messages: sent, oversized }
}

/// How many recorded values a distribution line stands for (`|@1/n` weighs each value `n`).
#[cfg(feature = "statsd")]
fn weighted_values(line: &str, dialect: crate::sink::statsd::encode::Dialect) -> u64 {
    use crate::sink::statsd::encode::Dialect;
    let weight = |rate: Option<&str>| -> u64 {
        rate.map_or(1, |r| (1.0 / r.parse::<f64>().expect("rate")).round() as u64)
    };
    // A tag suffix (`|#k:v,...`) belongs to the whole line and holds `:` of its own.
    let line = line.split_once("|#").map_or(line, |(values, _)| values);
    let (_, values) = line.split_once(':').expect("name:values");
    if dialect == Dialect::DogStatsd {
        let mut parts = values.split('|');
        let count = parts.next().unwrap_or_default().split(':').count() as u64;
        let rate = parts.find_map(|p| p.strip_prefix('@'));
        count * weight(rate)
    } else {
        values
            .split(':')
            .map(|segment| weight(segment.split('|').find_map(|p| p.strip_prefix('@'))))
            .sum()
    }
}

#[cfg(feature = "statsd")]
fn check_statsd_name(name: &str, dialect: crate::sink::statsd::encode::Dialect) {
    use crate::sink::statsd::encode::Dialect;
    match dialect {
        Dialect::DogStatsd => {
            assert!(name.starts_with(|c: char| c.is_ascii_alphabetic()), "name {name:?}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')),
                "name {name:?}"
            );
        }
        Dialect::Plain(_) => assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "name {name:?}"
        ),
    }
}

#[cfg(feature = "statsd")]
fn check_number(value: &str, line: &str) {
    assert!(
        !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '.')),
        "value {value:?} in {line:?}"
    );
    assert!(value.parse::<f64>().is_ok_and(f64::is_finite), "value {value:?} in {line:?}");
}

#[cfg(feature = "statsd")]
fn check_dogstatsd_tags(tags: &str, line: &str) {
    for tag in tags.split(',') {
        assert!(!tag.is_empty() && !tag.starts_with(':'), "tag {tag:?} in {line:?}");
        assert!(!tag.contains(['|', '\n', '\r']), "tag {tag:?} in {line:?}");
    }
}

/// Checks one message against the grammar of its dialect.
#[cfg(feature = "statsd")]
fn check_statsd_line(line: &str, dialect: crate::sink::statsd::encode::Dialect) {
    use crate::sink::statsd::encode::{Dialect, TagStyle};
    assert!(!line.is_empty(), "empty line");
    assert!(!line.contains('\r'), "carriage return in {line:?}");
    if let Some(rest) = line.strip_prefix("_e{") {
        assert!(line.len() <= 8 * 1024, "event of {} bytes", line.len());
        let (lengths, rest) = rest.split_once("}:").expect("_e{title,text}:");
        let (title_len, text_len) = lengths.split_once(',').expect("title,text lengths");
        let (title_len, text_len): (usize, usize) =
            (title_len.parse().expect("length"), text_len.parse().expect("length"));
        let title = rest.get(..title_len).expect("title length is a char boundary");
        let rest = rest[title_len..].strip_prefix('|').expect("| after the title");
        let text = rest.get(..text_len).expect("text length is a char boundary");
        let meta = &rest[text_len..];
        assert!(!title.contains('\n') && !text.contains('\n'), "{line:?}");
        let meta = meta.strip_prefix('|').expect("| after the text");
        for field in meta.split('|') {
            if let Some(tags) = field.strip_prefix('#') {
                check_dogstatsd_tags(tags, line);
            } else {
                assert!(
                    ["d:", "k:", "t:", "c:", "e:", "card:"].iter().any(|p| field.starts_with(p)),
                    "event field {field:?} in {line:?}"
                );
            }
        }
        return;
    }
    let (name, rest) = line.split_once(':').expect("name:value");
    match dialect {
        Dialect::DogStatsd => {
            check_statsd_name(name, dialect);
            let mut fields = rest.split('|');
            let values = fields.next().unwrap_or_default();
            let kind = fields.next().expect("a type");
            assert!(["c", "g", "s", "d", "h", "ms"].contains(&kind), "type {kind:?} in {line:?}");
            for value in values.split(':') {
                if kind == "s" {
                    assert!(!value.is_empty(), "{line:?}");
                } else {
                    check_number(value, line);
                }
            }
            for field in fields {
                if let Some(rate) = field.strip_prefix('@') {
                    let rate: f64 = rate.parse().expect("rate");
                    assert!(rate > 0.0 && rate <= 1.0, "{line:?}");
                } else if let Some(tags) = field.strip_prefix('#') {
                    check_dogstatsd_tags(tags, line);
                } else {
                    assert!(
                        ["c:", "e:", "card:"].iter().any(|p| field.starts_with(p)),
                        "field {field:?} in {line:?}"
                    );
                }
            }
        }
        Dialect::Plain(style) => {
            let mut name_parts = name.split(';');
            check_statsd_name(name_parts.next().unwrap_or_default(), dialect);
            for tag in name_parts {
                assert_eq!(style, TagStyle::Graphite, "{line:?}");
                let (key, value) = tag.split_once('=').expect("key=value");
                check_statsd_name(key, dialect);
                check_statsd_name(value, dialect);
            }
            let rest = match rest.split_once("|#") {
                Some((rest, tags)) => {
                    assert_eq!(style, TagStyle::DogStatsd, "{line:?}");
                    check_dogstatsd_tags(tags, line);
                    rest
                }
                None => rest,
            };
            for segment in rest.split(':') {
                let mut fields = segment.split('|');
                let value = fields.next().unwrap_or_default();
                let kind = fields.next().expect("a type");
                assert!(["c", "g", "s", "ms"].contains(&kind), "type {kind:?} in {line:?}");
                if kind == "s" {
                    assert!(!value.is_empty(), "{line:?}");
                } else {
                    check_number(value, line);
                }
                if kind == "ms" {
                    assert!(!value.starts_with('-'), "negative timing in {line:?}");
                }
                for field in fields {
                    let rate: f64 =
                        field.strip_prefix('@').expect("only a rate").parse().expect("rate");
                    assert!(rate > 0.0 && rate <= 1.0, "{line:?}");
                }
            }
        }
    }
}

// === Sentry ===

/// What the Sentry sink is configured with.
#[cfg(feature = "sentry")]
#[derive(Debug, Clone, Default)]
pub struct SentryInput {
    /// Metrics as legacy `statsd` items.
    pub legacy_statsd: bool,
    /// Distribution values per record (0 means the default, 100).
    pub max_distribution_values: u16,
    /// Sends personal data unscrubbed.
    pub send_default_pii: bool,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`sentry`] produced.
#[cfg(feature = "sentry")]
#[derive(Debug, Clone, Default)]
pub struct SentryOutcome {
    /// The envelopes, as sent.
    pub envelopes: Vec<Vec<u8>>,
    /// Metric values sent.
    pub metric_values: u64,
    /// Metric values counted as dropped.
    pub metric_drops: u64,
}

/// Sentry's limit on one event or metric container item (1 MiB).
#[cfg(feature = "sentry")]
const SENTRY_MAX_ITEM: usize = 1024 * 1024;

/// Encodes a batch's errors and metrics as the Sentry sink does and checks the envelopes.
#[cfg(feature = "sentry")]
pub fn sentry(input: &SentryInput) -> SentryOutcome {
    use crate::scrub::Scrubber;
    use crate::sink::sentry::common::Common;
    use crate::sink::sentry::envelope::EnvelopeWriter;
    use crate::sink::sentry::metrics::{self, MetricOptions};
    use crate::sink::sentry::time::Ids;

    let batch = batch(&input.batch);
    let scrubber = Scrubber::new(input.send_default_pii, Vec::new());
    let common = Common::new(batch.global_tags(), &scrubber, 0x0123_4567_89ab_cdef);
    let mut ids = Ids::new();
    let mut outcome = SentryOutcome::default();
    let envelope = |items: &[(&str, Option<usize>, &[u8])]| {
        let header = serde_json::json!({
            "sdk": { "name": "fuzz", "version": "0" },
            "sent_at": "2024-01-01T00:00:00Z",
        });
        let mut writer = EnvelopeWriter::new(&header);
        for (item_type, count, payload) in items {
            match count {
                Some(n) => writer.container(item_type, "application/json", *n, payload),
                None => writer.item(item_type, payload),
            }
        }
        let bytes = writer.finish();
        check_envelope(&bytes, items.len());
        bytes
    };
    for error in batch.errors() {
        let (event_id, payload) = crate::sink::sentry::event::encode(&common, error, &mut ids);
        assert!(payload.len() <= SENTRY_MAX_ITEM, "event of {} bytes", payload.len());
        let event: Value = serde_json::from_slice(&payload).expect("event JSON");
        assert_eq!(event["event_id"], Value::from(event_id));
        outcome.envelopes.push(envelope(&[("event", None, &payload)]));
    }
    let records: Vec<&MetricRecord> =
        batch.metrics().iter().filter(|r| metrics::is_metric(r)).collect();
    let max_values = if input.max_distribution_values == 0 {
        100
    } else {
        usize::from(input.max_distribution_values)
    };
    if input.legacy_statsd {
        let (payload, skipped) = metrics::statsd(batch.global_tags(), &records, max_values);
        let text = std::str::from_utf8(&payload).expect("statsd payload is UTF-8");
        let lines = text.lines().count() as u64;
        for line in text.lines() {
            check_legacy_statsd_line(line);
        }
        assert_eq!(lines + skipped, records.len() as u64, "every record is sent or counted");
        outcome.metric_values = lines;
        outcome.metric_drops = skipped;
        if !payload.is_empty() {
            outcome.envelopes.push(envelope(&[("statsd", None, &payload)]));
        }
        return outcome;
    }
    let encoded = metrics::trace_metrics(
        &common,
        batch.global_tags(),
        &records,
        MetricOptions { max_values },
    );
    let expected: u64 = records
        .iter()
        .map(|r| match r.value() {
            MetricValue::Distribution(d) => d.count,
            _ => 1,
        })
        .sum();
    let mut sent = 0u64;
    for container in &encoded.containers {
        let (payload, count) = (&container.payload, &container.count);
        assert!(*count > 0 && *count <= 1000, "{count} items in a container");
        assert!(payload.len() <= SENTRY_MAX_ITEM, "container of {} bytes", payload.len());
        let container: Value = serde_json::from_slice(payload).expect("container JSON");
        let items = container["items"].as_array().expect("items");
        assert_eq!(items.len(), *count);
        for item in items {
            assert!(item["value"].as_f64().is_some_and(f64::is_finite), "{item}");
            assert!(item["name"].is_string() && item["type"].is_string(), "{item}");
        }
        sent += *count as u64;
        outcome.envelopes.push(envelope(&[("trace_metric", Some(*count), payload)]));
    }
    assert_eq!(
        sent + encoded.overflow + encoded.invalid,
        expected,
        "every metric value is sent or counted"
    );
    let carried: usize = encoded.containers.iter().map(|c| c.carried.len()).sum();
    assert_eq!(
        carried + encoded.non_finite.len(),
        records.len(),
        "every record is carried by a container or booked as lost"
    );
    outcome.metric_values = sent;
    outcome.metric_drops = encoded.overflow + encoded.invalid;
    outcome
}

#[cfg(feature = "sentry")]
fn check_legacy_statsd_line(line: &str) {
    let (head, rest) = line.split_once('|').expect("name:values|type");
    let (name_unit, values) = head.split_once(':').expect("name@unit:values");
    let (name, unit) = name_unit.split_once('@').expect("name@unit");
    assert!(!name.is_empty() && !unit.is_empty(), "{line:?}");
    for value in values.split(':') {
        assert!(value.parse::<f64>().is_ok_and(f64::is_finite), "value {value:?} in {line:?}");
    }
    let mut fields = rest.split('|');
    assert!(["c", "g", "d", "s"].contains(&fields.next().unwrap_or_default()), "{line:?}");
    for field in fields {
        assert!(field.starts_with('#') || field.starts_with('T'), "{field:?} in {line:?}");
    }
}

/// A strict envelope reader: a JSON object header line, then items whose header gives the exact
/// payload length, each payload followed by `\n`, nothing left over.
#[cfg(feature = "sentry")]
fn check_envelope(envelope: &[u8], items: usize) {
    let line = |rest: &[u8]| -> (Vec<u8>, usize) {
        let end = rest.iter().position(|&b| b == b'\n').expect("a line ends with \\n");
        (rest[..end].to_vec(), end + 1)
    };
    let (header, mut at) = line(envelope);
    let header: Value = serde_json::from_slice(&header).expect("envelope header JSON");
    assert!(header.is_object());
    let mut found = 0;
    while at < envelope.len() {
        let (item_header, used) = line(&envelope[at..]);
        at += used;
        let item_header: Value = serde_json::from_slice(&item_header).expect("item header JSON");
        assert!(item_header["type"].is_string(), "{item_header}");
        let length = usize::try_from(item_header["length"].as_u64().expect("length")).unwrap();
        let payload = envelope.get(at..at + length).expect("payload within the envelope");
        assert_eq!(envelope.get(at + length), Some(&b'\n'), "payload followed by \\n");
        if item_header["type"] != "statsd" {
            serde_json::from_slice::<Value>(payload).expect("payload JSON");
        }
        if let Some(count) = item_header.get("item_count") {
            let parsed: Value = serde_json::from_slice(payload).expect("container JSON");
            assert_eq!(
                parsed["items"].as_array().map(Vec::len),
                count.as_u64().map(|n| n as usize)
            );
        }
        at += length + 1;
        found += 1;
    }
    assert_eq!(found, items);
}

// === Datadog ===

/// What the Datadog sink is configured with.
#[cfg(feature = "datadog")]
#[derive(Debug, Clone, Default)]
pub struct DatadogInput {
    /// Distributions as points (0), aggregates (1) or both (2).
    pub mode: u8,
    /// Aggregates: max, min, median, avg, sum, count, then percentiles (`n - 6`).
    pub aggregates: Vec<u8>,
    /// Values per distribution point (clamped as the options clamp it).
    pub max_distribution_values: u32,
    /// Deflate (0), gzip (1) or no compression (2).
    pub compression: u8,
    /// The host setting: from tags (`None`), or a fixed host (empty: off).
    pub host: Option<String>,
    /// Scales the intake's limits down (0: the real limits) to exercise splitting: items per
    /// body `1 + n % 50`, bytes `64 + n * 16`.
    pub small_limits: u16,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`datadog`] produced.
#[cfg(feature = "datadog")]
#[derive(Debug, Clone, Copy, Default)]
pub struct DatadogOutcome {
    /// Request bodies.
    pub payloads: usize,
    /// Items sent (series, distribution points, events).
    pub items: u64,
    /// Items counted as lost.
    pub lost: u64,
}

/// Encodes a batch as the Datadog sink does, chunks it into payloads and checks them.
#[cfg(feature = "datadog")]
pub fn datadog(input: &DatadogInput) -> DatadogOutcome {
    use crate::sink::datadog::losses::{Loss, Losses};
    use crate::sink::datadog::options::{
        Compression, DatadogOptions, DistributionMode, HistogramAggregate,
    };
    use crate::sink::datadog::payload::{self, Kind, Limits};
    use crate::sink::datadog::window::Window;
    use crate::sink::datadog::{distribution, event, series};

    let mode = [DistributionMode::Points, DistributionMode::Aggregates, DistributionMode::Both]
        [usize::from(input.mode % 3)];
    let compression = [Compression::Deflate, Compression::Gzip, Compression::None]
        [usize::from(input.compression % 3)];
    let mut options = DatadogOptions::new("0123456789abcdef0123456789abcdef")
        .expect("a valid key")
        .distributions(mode)
        .compression(compression)
        .max_distribution_values(usize::try_from(input.max_distribution_values).unwrap_or(2));
    if !input.aggregates.is_empty() {
        options = options.histogram_aggregates(input.aggregates.iter().map(|&a| match a {
            0 => HistogramAggregate::Max,
            1 => HistogramAggregate::Min,
            2 => HistogramAggregate::Median,
            3 => HistogramAggregate::Avg,
            4 => HistogramAggregate::Sum,
            5 => HistogramAggregate::Count,
            n => HistogramAggregate::Percentile(n - 6),
        }));
    }
    if let Some(host) = &input.host {
        options = options.host(Some(host.clone()));
    }
    let batch = batch(&input.batch);
    let now = SystemTime::now();
    let metrics = Window::metrics(now);
    let lost = |losses: &Losses| -> u64 { Loss::ALL.iter().map(|&l| losses.get(l)).sum() };

    // Series: one point per counter, gauge and set, one per aggregate of a distribution.
    let series_losses = Losses::new(|_, _| {}, |_| {});
    let series_items = series::encode(&batch, &options, &metrics, &series_losses);
    let expected: u64 = batch
        .metrics()
        .iter()
        .map(|r| match r.value() {
            MetricValue::Distribution(d) if mode != DistributionMode::Points && d.count > 0 => {
                options.aggregates.len() as u64
            }
            MetricValue::Distribution(_) => 0,
            _ => 1,
        })
        .sum();
    assert_eq!(series_items.len() as u64 + lost(&series_losses), expected, "series points");

    // Distribution points: one per distribution record, its values sampled (and counted).
    let point_losses = Losses::new(|_, _| {}, |_| {});
    let point_items = distribution::encode(&batch, &options, &metrics, &point_losses);
    if mode != DistributionMode::Aggregates {
        let records = batch
            .metrics()
            .iter()
            .filter(|r| matches!(r.value(), MetricValue::Distribution(d) if d.count > 0))
            .count() as u64;
        let unsent = lost(&point_losses) - point_losses.get(Loss::Sampled);
        assert_eq!(point_items.len() as u64 + unsent, records, "distribution points");
    } else {
        assert!(point_items.is_empty());
    }

    // Events: one per error, or counted.
    let event_losses = Losses::new(|_, _| {}, |_| {});
    let event_items = event::encode(&batch, &options, &Kind::Event.window(now), &event_losses);
    assert_eq!(
        event_items.len() as u64 + lost(&event_losses),
        batch.errors().len() as u64,
        "events"
    );

    let mut outcome = DatadogOutcome::default();
    for (kind, items) in [
        (Kind::Series, &series_items),
        (Kind::Distribution, &point_items),
        (Kind::Event, &event_items),
    ] {
        let limits = match input.small_limits {
            0 => kind.limits(),
            n if kind == Kind::Event => {
                Limits { max_raw: 64 + usize::from(n) * 16, ..kind.limits() }
            }
            n => Limits {
                max_items: 1 + usize::from(n) % 50,
                max_raw: 64 + usize::from(n) * 16,
                max_body: 64 + usize::from(n) * 16,
            },
        };
        let losses = Losses::new(|_, _| {}, |_| {});
        let compression = kind.compression(options.compression);
        let payloads = payload::chunk(kind, compression, items, &limits, &losses);
        let mut sent = 0u64;
        for p in &payloads {
            assert!(
                p.items() >= 1 && p.items() as usize <= limits.max_items,
                "{} items",
                p.items()
            );
            assert!(
                p.body.len() <= limits.max_body,
                "body of {} > {}",
                p.body.len(),
                limits.max_body
            );
            let raw = payload::decompress(&p.body, p.compression).expect("decompresses");
            assert!(raw.len() <= limits.max_raw, "raw body of {} > {}", raw.len(), limits.max_raw);
            let json: Value = serde_json::from_slice(&raw).expect("payload JSON");
            match kind {
                Kind::Event => assert!(json["title"].is_string() && json["text"].is_string()),
                _ => assert_eq!(
                    json["series"].as_array().map(Vec::len),
                    Some(p.items() as usize),
                    "items in the body"
                ),
            }
            sent += p.items();
        }
        let too_large = losses.get(Loss::TooLarge);
        assert_eq!(sent + too_large, items.len() as u64, "{kind:?}: every item sent or counted");
        outcome.payloads += payloads.len();
        outcome.items += sent;
        outcome.lost += too_large;
    }
    outcome.lost += lost(&series_losses) + lost(&point_losses) + lost(&event_losses);
    outcome
}
