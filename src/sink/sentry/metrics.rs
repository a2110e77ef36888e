//! Metrics: aggregated records as `trace_metric` items (or legacy `statsd` lines).
//!
//! Sentry's Application Metrics take one item per measurement and aggregate server-side, so
//! each record of an interval maps onto items:
//!
//! * counter: one `counter` item, the interval's sum;
//! * gauge: one `gauge` item, the last value;
//! * distribution: `distribution` items for the values, rebuilt from the sketch (bucket
//!   midpoints, within 0.79%), at most [`MetricOptions::max_values`] per record, always
//!   including the exact minimum and maximum; values left out are reported as
//!   `buffer_overflow` (a client report);
//! * set: one `gauge` item, the interval's unique count.
//!
//! Every item carries `trace_id` (the process trace: aggregates span many traces) and the
//! attributes `sentry.environment`, `sentry.release`, `sentry.sdk.name`, `sentry.sdk.version`,
//! `server.address` and the record's tags. The pipeline's own metrics (`tally.*`) and session
//! counts are not sent as metrics.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::common::{Common, SDK_NAME};
use super::session::is_request_session;
use super::time::unix_float;
use crate::batch::session_counter::SESSIONS_METRIC;
use crate::batch::{merge_tags, DistributionValue, MetricRecord, MetricValue};
use crate::scrub::FILTERED;
use crate::stats::Carried;

/// Items per `trace_metric` container (the Python SDK flushes at 1000).
const MAX_ITEMS: usize = 1000;
/// Bytes per container payload, under Sentry's 1 MiB item limit.
const MAX_PAYLOAD: usize = 900 * 1024;

/// How metrics are mapped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricOptions {
    /// Distribution values sent per record and interval.
    pub(crate) max_values: usize,
}

/// The encoded metrics of a batch.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) containers: Vec<Container>,
    /// Distribution values left out (`buffer_overflow`).
    pub(crate) overflow: u64,
    /// Values that are not finite numbers (a sum that overflowed), left out (`invalid`).
    pub(crate) invalid: u64,
    /// Records not sent because their value was not a finite number (a counter whose sum
    /// overflowed, for example).
    pub(crate) non_finite: Vec<Carried>,
}

/// One `trace_metric` container.
#[derive(Debug, Default)]
pub(crate) struct Container {
    pub(crate) payload: Vec<u8>,
    /// Items in it.
    pub(crate) count: usize,
    /// The records it stands for: each record in the container that holds its first item.
    pub(crate) carried: Vec<Carried>,
}

/// Whether a record goes to Sentry as a metric.
pub(crate) fn is_metric(record: &MetricRecord) -> bool {
    !record.name().starts_with("tally.")
        && record.name() != SESSIONS_METRIC
        && !is_request_session(record)
}

fn attributes(common: &Common<'_>, global: &[crate::batch::Tag], record: &MetricRecord) -> Value {
    let mut attributes = Map::new();
    let string = |value: &str| json!({ "value": value, "type": "string" });
    attributes.insert("sentry.sdk.name".into(), string(SDK_NAME));
    attributes.insert("sentry.sdk.version".into(), string(env!("CARGO_PKG_VERSION")));
    for (key, value) in merge_tags(global, record.tags()) {
        let key = match key {
            "environment" => "sentry.environment",
            "release" => "sentry.release",
            "host" => "server.address",
            key => key,
        };
        let value = if common.scrubber.is_sensitive(key) { FILTERED } else { value };
        attributes.insert(key.to_owned(), string(value));
    }
    Value::Object(attributes)
}

/// Representative values of a distribution: [`DistributionValue::sample`].
fn values(d: &DistributionValue, max: usize) -> (Vec<f64>, u64) {
    d.sample(max)
}

/// `trace_metric` containers for the metric records of a batch.
pub(crate) fn trace_metrics(
    common: &Common<'_>,
    global: &[crate::batch::Tag],
    records: &[&MetricRecord],
    options: MetricOptions,
) -> Encoded {
    let trace_id = format!("{:032x}", common.process_trace_id);
    let mut encoded = Encoded::default();
    // Each encoded item, with the record it stands for on its record's first item.
    let mut items: Vec<(Vec<u8>, Option<Carried>)> = Vec::new();
    for record in records {
        let attributes = attributes(common, global, record);
        let mut carried = Some(Carried::of(record));
        let mut push = |kind: &str, value: f64| {
            if !value.is_finite() {
                encoded.invalid += 1;
                return;
            }
            let mut item = json!({
                "timestamp": unix_float(record.timestamp()),
                "trace_id": trace_id,
                "name": record.name(),
                "value": value,
                "type": kind,
                "attributes": attributes.clone(),
            });
            if let Some(unit) = record.unit() {
                item["unit"] = Value::from(unit);
            }
            items.push((serde_json::to_vec(&item).unwrap_or_default(), carried.take()));
        };
        match record.value() {
            MetricValue::Counter(c) => push("counter", c.sum()),
            MetricValue::Gauge(g) => push("gauge", g.last),
            MetricValue::Set(s) => push("gauge", s.unique as f64),
            MetricValue::Distribution(d) => {
                let (values, overflow) = values(d, options.max_values);
                encoded.overflow += overflow;
                for value in values {
                    push("distribution", value);
                }
            }
        }
        // Nothing was encoded: the record is lost, and counted.
        encoded.non_finite.extend(carried);
    }
    // Pack items into containers under both limits.
    let mut container = Container::default();
    let close = |container: &mut Container, encoded: &mut Encoded| {
        if container.count > 0 {
            container.payload.extend_from_slice(b"]}");
            encoded.containers.push(std::mem::take(container));
        }
    };
    for (item, carried) in items {
        let count = container.count;
        if count == MAX_ITEMS
            || (count > 0 && container.payload.len() + item.len() + 2 > MAX_PAYLOAD)
        {
            close(&mut container, &mut encoded);
        }
        if container.count == 0 {
            container.payload.extend_from_slice(br#"{"version":2,"items":["#);
        } else {
            container.payload.push(b',');
        }
        container.payload.extend_from_slice(&item);
        container.count += 1;
        container.carried.extend(carried);
    }
    close(&mut container, &mut encoded);
    encoded
}

/// Legacy `statsd` lines (for self-hosted Sentry before Application Metrics), with the
/// normalization rules of the old SDK aggregators, and the number of records left out for a
/// value that is not a finite number (a sum that overflowed).
pub(crate) fn statsd(
    global: &[crate::batch::Tag],
    records: &[&MetricRecord],
    max_values: usize,
) -> (Vec<u8>, u64) {
    let mut out = String::new();
    let mut invalid = 0;
    for record in records {
        let name = normalize(
            record.name(),
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
            '_',
            150,
        );
        let unit = record.unit().map_or_else(
            || "none".to_owned(),
            |u| normalize(u, |c| c.is_ascii_alphanumeric() || c == '_', '\0', 15),
        );
        let unit = if unit.is_empty() { "none".to_owned() } else { unit };
        let (kind, values): (&str, Vec<f64>) = match record.value() {
            MetricValue::Counter(c) => ("c", vec![c.sum()]),
            MetricValue::Gauge(g) => ("g", vec![g.last, g.min, g.max, g.sum, g.count as f64]),
            MetricValue::Set(s) => ("g", vec![s.unique as f64]),
            MetricValue::Distribution(d) => ("d", values(d, max_values).0),
        };
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            invalid += 1;
            continue;
        }
        let _ = write!(out, "{name}@{unit}");
        for value in values {
            let _ = write!(out, ":{value}");
        }
        let _ = write!(out, "|{kind}");
        let mut first = true;
        for (key, value) in merge_tags(global, record.tags()) {
            let key = normalize(
                key,
                |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'),
                '\0',
                32,
            );
            if key.is_empty() || value.is_empty() {
                continue;
            }
            out.push_str(if first { "|#" } else { "," });
            first = false;
            let _ = write!(out, "{key}:{}", escape_tag_value(value));
        }
        let ts =
            record.timestamp().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let _ = writeln!(out, "|T{ts}");
    }
    (out.into_bytes(), invalid)
}

/// Keeps the characters `keep` accepts, replacing (or, with `'\0'`, removing) the others.
fn normalize(text: &str, keep: fn(char) -> bool, replacement: char, max: usize) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for c in text.chars() {
        if keep(c) {
            out.push(c);
            replaced = false;
        } else if replacement != '\0' && !replaced {
            out.push(replacement);
            replaced = true;
        }
    }
    out.chars().take(max).collect()
}

fn escape_tag_value(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(200) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\u{7c}"),
            ',' => out.push_str("\\u{2c}"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::batch::testing::distribution_value as distribution;

    #[test]
    fn small_distributions_send_every_value() {
        let d = distribution(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let (values, overflow) = values(&d, 100);
        assert_eq!((values.len(), overflow), (5, 0));
        assert!(values.contains(&1.0) && values.contains(&5.0));
    }

    #[test]
    fn large_distributions_are_capped_with_exact_extremes() {
        let all: Vec<f64> = (1..=10_000).map(f64::from).collect();
        let d = distribution(&all);
        let (values, overflow) = values(&d, 100);
        assert_eq!(values.len(), 100);
        assert_eq!(overflow, 9_900);
        assert_eq!((values[0], values[99]), (1.0, 10_000.0), "ascending, exact extremes");
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[50];
        assert!((median - 5000.0).abs() / 5000.0 < 0.05, "{median}");
    }

    #[test]
    fn values_that_are_not_finite_are_counted_not_sent() {
        // Found by fuzzing: a counter whose float sum overflowed vanished without a count.
        use crate::scrub::Scrubber;
        let record = crate::batch::testing::counter("c", None, &[], f64::INFINITY);
        let scrubber = Scrubber::new(false, Vec::new());
        let common = Common::new(&[], &scrubber, 1);
        let encoded = trace_metrics(&common, &[], &[&record], MetricOptions { max_values: 10 });
        assert!(encoded.containers.is_empty());
        assert_eq!(encoded.invalid, 1);
        assert_eq!(statsd(&[], &[&record], 10), (Vec::new(), 1));
    }

    #[test]
    fn statsd_normalization_follows_the_old_sdks() {
        assert_eq!(
            normalize("a b/c", |c| c.is_ascii_alphanumeric() || c == '.', '_', 150),
            "a_b_c"
        );
        assert_eq!(escape_tag_value("a|b,c\nd"), "a\\u{7c}b\\u{2c}c\\nd");
    }
}
