//! Test fixtures: metric records built without a pipeline.
// Each sink's tests use some of them; a build with fewer sinks uses fewer.
#![cfg_attr(
    not(all(feature = "sentry", feature = "statsd", feature = "datadog")),
    allow(dead_code)
)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::aggregate::series::{MetricDesc, SeriesEntry};
use crate::aggregate::sketch::Sketch;
use crate::batch::{CounterValue, DistributionValue, MetricKind, MetricRecord, MetricValue, Tag};

/// The start of the interval of the fixtures' records (2023-11-14T22:13:20Z).
pub(crate) const NOW: i64 = 1_700_000_000;

/// A record of a 10 s interval starting at [`NOW`].
pub(crate) fn record(
    name: &str,
    kind: MetricKind,
    unit: Option<&str>,
    tags: &[(&str, &str)],
    value: MetricValue,
) -> MetricRecord {
    let metric = Arc::new(MetricDesc::new(name, kind, false, unit));
    let tags = tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
    MetricRecord {
        series: Arc::new(SeriesEntry::new(0, metric, tags, false, 0)),
        start: UNIX_EPOCH + Duration::from_secs(NOW as u64),
        interval: Duration::from_secs(10),
        value,
    }
}

/// A counter record whose sum is `sum` (a float sum: any value, infinity included).
pub(crate) fn counter(
    name: &str,
    unit: Option<&str>,
    tags: &[(&str, &str)],
    sum: f64,
) -> MetricRecord {
    let value = MetricValue::Counter(CounterValue { integer: 0, float: sum });
    record(name, MetricKind::Counter, unit, tags, value)
}

/// A distribution of exactly these values (count, sum, min, max, and a sketch of them).
pub(crate) fn distribution_value(values: &[f64]) -> DistributionValue {
    let mut sketch = Sketch::new();
    values.iter().for_each(|&v| sketch.insert(v));
    DistributionValue {
        count: values.len() as u64,
        sum: values.iter().sum(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        sketch: Box::new(sketch),
    }
}
