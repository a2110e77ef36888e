//! Metric records as v2 series (`POST /api/v2/series`).
//!
//! | record | series | `type` | value |
//! |---|---|---|---|
//! | counter | `<name>` | 1 (count), with `interval` = the roll-up interval in seconds | the interval's sum |
//! | gauge | `<name>` | 3 (gauge) | the last value set |
//! | set | `<name>` | 3 (gauge) | the interval's unique count |
//! | distribution (aggregates on) | `<name>.<aggregate>` | 3, or 1 for `.count` | see [`HistogramAggregate`] |
//!
//! One point per series, timestamped at the start of the record's interval. Example:
//!
//! ```text
//! {"metric":"http.requests","type":1,"interval":10,"points":[{"timestamp":1700000000,"value":42.0}],
//!  "resources":[{"name":"web-1","type":"host"}],"tags":["env:prod","route:/users"],"unit":"request"}
//! ```

use std::borrow::Cow;

use super::context::{self, Context};
use super::losses::DropCause;
use super::options::{DatadogOptions, HistogramAggregate};
use super::payload::{Input, Items};
use super::window::{self};
use crate::batch::{DistributionValue, MetricRecord, MetricValue};
use crate::sink::json::{self, Object};
use crate::stats::Carried;

/// `MetricIntakeType`: count.
pub(crate) const COUNT: u8 = 1;
/// `MetricIntakeType`: gauge.
pub(crate) const GAUGE: u8 = 3;

/// One series point to write.
struct Point<'a> {
    name: Cow<'a, str>,
    kind: u8,
    value: f64,
    unit: Option<&'static str>,
    /// Whether this point stands for its record in the loss ledger (one point per record: the
    /// `.count` aggregate of a distribution, or its first aggregate).
    carries: bool,
}

/// Every metric record of `batch` that maps to series, as series items.
pub(crate) fn encode(input: Input<'_>) -> Items {
    let Input { batch, options, window, losses } = input;
    let mut items = Items::default();
    for record in batch.metrics() {
        let points = points(record, options);
        if points.is_empty() {
            continue;
        }
        let timestamp = window::unix(record.timestamp());
        let carried = Carried::of(record);
        if !window.admit(timestamp, points.len() as u64, Some(&carried), losses) {
            continue;
        }
        let context = Context::new(batch.global_tags(), record.tags(), &options.host);
        let interval = record.interval().as_secs().max(1);
        for point in points {
            let carried = point.carries.then(|| carried.clone());
            if !point.value.is_finite() {
                losses.record_items(DropCause::NonFinite, 1, &carried);
                continue;
            }
            items.push(timestamp, carried, |out| write(out, &point, timestamp, interval, &context));
        }
    }
    items
}

/// The series points of one record (none for a distribution without aggregates).
fn points<'a>(record: &'a MetricRecord, options: &DatadogOptions) -> Vec<Point<'a>> {
    let name = context::metric_name(record.name());
    let unit = record.unit().and_then(context::unit);
    match record.value() {
        MetricValue::Counter(c) => {
            vec![Point { name, kind: COUNT, value: c.sum(), unit, carries: true }]
        }
        MetricValue::Gauge(g) => {
            vec![Point { name, kind: GAUGE, value: g.last, unit, carries: true }]
        }
        MetricValue::Set(s) => {
            vec![Point { name, kind: GAUGE, value: s.unique as f64, unit: None, carries: true }]
        }
        MetricValue::Distribution(d) if options.distributions.aggregates() && d.count > 0 => {
            let aggregates = &options.aggregates;
            let carrier = aggregates.iter().position(|&a| a == HistogramAggregate::Count);
            aggregates
                .iter()
                .enumerate()
                .map(|(i, &aggregate)| {
                    let (kind, value, unit) = match aggregate {
                        HistogramAggregate::Count => (COUNT, d.count as f64, None),
                        aggregate => (GAUGE, aggregate_value(d, aggregate), unit),
                    };
                    let name = Cow::Owned(format!("{name}.{}", aggregate.suffix()));
                    Point { name, kind, value, unit, carries: i == carrier.unwrap_or(0) }
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The value of one aggregate (NaN when the sketch cannot say, which is then not sent).
fn aggregate_value(d: &DistributionValue, aggregate: HistogramAggregate) -> f64 {
    match aggregate {
        HistogramAggregate::Max => d.max,
        HistogramAggregate::Min => d.min,
        HistogramAggregate::Avg => d.sum / d.count as f64,
        HistogramAggregate::Sum => d.sum,
        HistogramAggregate::Count => d.count as f64,
        HistogramAggregate::Median => d.quantile(0.5).unwrap_or(f64::NAN),
        HistogramAggregate::Percentile(p) => {
            d.quantile(f64::from(p.clamp(1, 99)) / 100.0).unwrap_or(f64::NAN)
        }
    }
}

fn write(out: &mut Vec<u8>, point: &Point<'_>, timestamp: i64, interval: u64, context: &Context) {
    let mut o = Object::new(out);
    o.field("metric", point.name.as_ref());
    o.field("type", &point.kind);
    if point.kind == COUNT {
        o.field("interval", &interval);
    }
    o.with("points", |out| {
        out.push(b'[');
        let mut p = Object::new(out);
        p.field("timestamp", &timestamp);
        p.float("value", point.value);
        p.end();
        out.push(b']');
    });
    if let Some(host) = &context.host {
        o.with("resources", |out| {
            out.push(b'[');
            let mut r = Object::new(out);
            r.field("name", host);
            r.field("type", "host");
            r.end();
            out.push(b']');
        });
    }
    o.with("tags", |out| json::strings(out, context.tags.iter().map(String::as_str)));
    if let Some(unit) = point.unit {
        o.field("unit", unit);
    }
    o.end();
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::batch::Batch;
    use crate::sink::datadog::losses::testing::recording;
    use crate::sink::datadog::losses::Losses;
    use crate::sink::datadog::options::DatadogOptions;
    use crate::sink::datadog::options::DistributionMode;
    use crate::sink::datadog::testing::{
        batch, counter, distribution, gauge, set, texts, KEY, NOW,
    };
    use crate::sink::datadog::window::Window;

    fn encode_all(batch: &Batch, options: &DatadogOptions) -> (Vec<String>, Losses) {
        let (losses, _) = recording();
        let window = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64 + 12));
        let items = encode(Input { batch, options, window: &window, losses: &losses });
        (texts(&items), losses)
    }

    #[test]
    fn counters_gauges_and_sets_golden() {
        let batch = batch(vec![
            counter("http.requests", Some("request"), &[("route", "/users")], 42.0),
            gauge("queue-depth", None, &[], 7.5),
            set("users", &[("route", "/users")], 17),
        ]);
        let (lines, losses) = encode_all(&batch, &DatadogOptions::new(KEY).unwrap());
        assert_eq!(
            lines,
            [
                r#"{"metric":"http.requests","type":1,"interval":10,"points":[{"timestamp":1700000000,"value":42.0}],"resources":[{"name":"web-1","type":"host"}],"tags":["env:prod","route:/users","service:api"],"unit":"request"}"#,
                r#"{"metric":"queue_depth","type":3,"points":[{"timestamp":1700000000,"value":7.5}],"resources":[{"name":"web-1","type":"host"}],"tags":["env:prod","service:api"]}"#,
                r#"{"metric":"users","type":3,"points":[{"timestamp":1700000000,"value":17.0}],"resources":[{"name":"web-1","type":"host"}],"tags":["env:prod","route:/users","service:api"]}"#,
            ]
        );
        assert_eq!(losses.get(DropCause::Stale), 0);
    }

    #[test]
    fn no_host_leaves_out_resources() {
        let batch = batch(vec![counter("c", None, &[], 1.0)]);
        let options = DatadogOptions::new(KEY).unwrap().host(None);
        let (lines, _) = encode_all(&batch, &options);
        assert_eq!(
            lines,
            [
                r#"{"metric":"c","type":1,"interval":10,"points":[{"timestamp":1700000000,"value":1.0}],"tags":["env:prod","service:api"]}"#
            ]
        );
    }

    #[test]
    fn distributions_become_agent_style_aggregates() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let batch = batch(vec![distribution("latency", Some("ms"), &[], &values)]);
        let options = DatadogOptions::new(KEY).unwrap().host(None);
        let (lines, _) = encode_all(&batch, &options);
        assert!(lines.is_empty(), "points mode sends no series: {lines:?}");

        let options = options.distributions(DistributionMode::Aggregates);
        let (lines, _) = encode_all(&batch, &options);
        let parsed: Vec<serde_json::Value> =
            lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let summary: Vec<(String, u64, f64, Option<&str>)> = parsed
            .iter()
            .map(|v| {
                (
                    v["metric"].as_str().unwrap().to_owned(),
                    v["type"].as_u64().unwrap(),
                    v["points"][0]["value"].as_f64().unwrap(),
                    v["unit"].as_str(),
                )
            })
            .collect();
        assert_eq!(summary[0], ("latency.max".into(), 3, 100.0, Some("millisecond")));
        assert_eq!(summary[1].0, "latency.median");
        assert!((summary[1].2 - 50.0).abs() <= 1.0, "{summary:?}");
        assert_eq!(summary[2], ("latency.avg".into(), 3, 50.5, Some("millisecond")));
        assert_eq!(summary[3], ("latency.count".into(), 1, 100.0, None));
        assert_eq!(parsed[3]["interval"], 10);
        assert_eq!(summary[4].0, "latency.95percentile");
        assert!((summary[4].2 - 95.0).abs() <= 1.0, "{summary:?}");
    }

    #[test]
    fn points_outside_the_window_are_counted_not_sent() {
        let mut old = counter("old", None, &[], 1.0);
        old.start = UNIX_EPOCH + Duration::from_secs(NOW as u64 - 3600);
        let mut ahead = gauge("ahead", None, &[], 1.0);
        ahead.start = UNIX_EPOCH + Duration::from_secs(NOW as u64 + 3600);
        let values = [1.0, 2.0];
        let mut old_distribution = distribution("d", None, &[], &values);
        old_distribution.start = old.start;
        let batch = batch(vec![old, ahead, old_distribution, counter("ok", None, &[], 1.0)]);
        let options = DatadogOptions::new(KEY).unwrap().distributions(DistributionMode::Aggregates);
        let (lines, losses) = encode_all(&batch, &options);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(r#""metric":"ok""#));
        // The old distribution would have been five aggregates.
        assert_eq!(losses.get(DropCause::Stale), 1 + 5);
        assert_eq!(losses.get(DropCause::Future), 1);
    }

    #[test]
    fn non_finite_values_are_counted_not_sent() {
        let batch = batch(vec![gauge("g", None, &[], f64::NAN), gauge("h", None, &[], 2.0)]);
        let (lines, losses) = encode_all(&batch, &DatadogOptions::new(KEY).unwrap());
        assert_eq!(lines.len(), 1);
        assert_eq!(losses.get(DropCause::NonFinite), 1);
    }
}
