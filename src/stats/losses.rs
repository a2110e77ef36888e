//! Losses by metric: which sink gave up which metric's points, and what those points carried.
//!
//! The drop counters say *why* records were lost; this ledger says *what*: for every sink and
//! metric, the points given up and the values they carried. With it, the books balance exactly:
//! for each metric, what the application recorded equals what the backend received plus what
//! [`Stats::metric_losses`](crate::Stats::metric_losses) reports.
//!
//! Sinks attach a [`Carried`] to every encoded item that stands for a metric record and hand
//! the `Carried` of the items they give up to [`MetricLosses::lose`]. The ledger is touched only
//! when something is lost, on sink threads, never on the application's hot path; it holds at
//! most [`MAX_ROWS`] (sink, metric) rows, and losses past that go to one row per sink whose
//! metric is [`OTHER_METRICS`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::aggregate::series::MetricDesc;
use crate::batch::{MetricRecord, MetricValue};

/// The most (sink, metric) rows the ledger keeps.
pub(crate) const MAX_ROWS: usize = 1024;

/// The metric name of the row that takes losses once [`MAX_ROWS`] rows exist.
pub(crate) const OTHER_METRICS: &str = "(other)";

/// What one encoded item stands for: one point of one metric, and the values it carries; or,
/// for a point sent as several items (a distribution's values over several StatsD datagrams),
/// a part of it (see [`Carried::part`]).
///
/// It is not a reason for a loss (that is always a [`DropReason`](crate::stats::DropReason),
/// mapped per backend at its edge): it travels with a payload so that, if the payload is
/// given up, the ledger books exactly *what* was lost.
#[derive(Clone)]
pub(crate) struct Carried {
    metric: Arc<MetricDesc>,
    /// 1 for a point or its first part, 0 for its other parts: a point split over several items
    /// is booked as lost once, with the first.
    points: u64,
    values: f64,
}

impl Carried {
    /// What `record` carries: a counter its sum, a gauge or distribution the number of values
    /// recorded into it, a set its unique count.
    pub(crate) fn of(record: &MetricRecord) -> Carried {
        let values = match record.value() {
            MetricValue::Counter(counter) => counter.sum(),
            MetricValue::Gauge(gauge) => gauge.count as f64,
            MetricValue::Distribution(distribution) => distribution.count as f64,
            MetricValue::Set(set) => set.unique as f64,
        };
        Carried { metric: record.series.metric.clone(), points: 1, values }
    }

    /// A part of this point that carries `values` of its values; only the `first` part counts
    /// the point itself.
    #[cfg(feature = "statsd")]
    pub(crate) fn part(&self, values: f64, first: bool) -> Carried {
        Carried { metric: self.metric.clone(), points: u64::from(first), values }
    }

    /// A point of the metric called `name` carrying `values`, for a point read back from disk
    /// (a sink's spool): the ledger books by name, so the metric's other traits do not matter.
    #[cfg(any(feature = "sentry", feature = "datadog"))]
    pub(crate) fn named(name: &str, values: f64) -> Carried {
        let metric = MetricDesc::new(name, crate::fields::MetricKind::Counter, false, None);
        Carried { metric: Arc::new(metric), points: 1, values }
    }

    /// The metric's name.
    #[cfg(any(feature = "sentry", feature = "datadog"))]
    pub(crate) fn name(&self) -> &str {
        self.metric.name()
    }

    /// The values carried.
    #[cfg(any(feature = "sentry", feature = "datadog", feature = "statsd"))]
    pub(crate) fn values(&self) -> f64 {
        self.values
    }
}

impl PartialEq for Carried {
    fn eq(&self, other: &Carried) -> bool {
        Arc::ptr_eq(&self.metric, &other.metric)
            && self.points == other.points
            && self.values == other.values
    }
}

impl fmt::Debug for Carried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.points {
            1 => write!(f, "{}={}", self.metric.name(), self.values),
            _ => write!(f, "{}=+{}", self.metric.name(), self.values),
        }
    }
}

/// Points a sink gave up for one metric, and what they carried.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricLoss {
    /// The sink's name (`datadog`, `sentry`, `dogstatsd`, ...).
    pub sink: String,
    /// The metric's name, or `(other)` for the metrics that found the ledger full (it keeps
    /// 1,024 rows).
    pub metric: String,
    /// Points (one series over one interval) given up.
    pub points: u64,
    /// What they carried: for a counter the sum of its increments, for a gauge or a
    /// distribution the number of values recorded, for a set its unique count (summed over
    /// points).
    pub values: f64,
}

#[derive(Debug, Default)]
struct Row {
    points: u64,
    values: f64,
}

/// The rows of every sink: sink name → metric name → row (looked up by `&str`, so booking a
/// loss allocates only for a new row).
#[derive(Debug, Default)]
struct Rows {
    by_sink: HashMap<Box<str>, HashMap<Box<str>, Row>>,
    count: usize,
}

impl Rows {
    /// Adds `points` carrying `values` to the row of `sink` and `metric` (or of `sink` and
    /// [`OTHER_METRICS`] once the ledger is full), made when missing.
    fn add(&mut self, sink: &str, metric: &str, points: u64, values: f64) {
        let full = self.count >= MAX_ROWS;
        if !self.by_sink.contains_key(sink) {
            self.by_sink.insert(sink.into(), HashMap::new());
        }
        let Some(metrics) = self.by_sink.get_mut(sink) else { return };
        let metric = if full && !metrics.contains_key(metric) { OTHER_METRICS } else { metric };
        match metrics.get_mut(metric) {
            Some(row) => {
                row.points = row.points.saturating_add(points);
                row.values += values;
            }
            None => {
                self.count += 1;
                metrics.insert(metric.into(), Row { points, values });
            }
        }
    }
}

/// The ledger, shared by every sink of a pipeline.
#[derive(Debug, Default)]
pub(crate) struct MetricLosses {
    rows: Mutex<Rows>,
}

impl MetricLosses {
    /// Books the items `carried` as lost by `sink`.
    pub(crate) fn lose<'a>(&self, sink: &str, carried: impl IntoIterator<Item = &'a Carried>) {
        let mut carried = carried.into_iter().peekable();
        if carried.peek().is_none() {
            return;
        }
        // A panic while the lock was held cannot leave a row half-written: keep counting.
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        for item in carried {
            rows.add(sink, item.metric.name(), item.points, item.values);
        }
    }

    /// Books every metric record of `records` as lost by `sink`.
    pub(crate) fn lose_records(&self, sink: &str, records: &[MetricRecord]) {
        let carried: Vec<Carried> = records.iter().map(Carried::of).collect();
        self.lose(sink, &carried);
    }

    /// The rows, sorted by sink and metric.
    pub(crate) fn snapshot(&self) -> Vec<MetricLoss> {
        let rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<MetricLoss> = rows
            .by_sink
            .iter()
            .flat_map(|(sink, metrics)| {
                metrics.iter().map(move |(metric, row)| MetricLoss {
                    sink: sink.to_string(),
                    metric: metric.to_string(),
                    points: row.points,
                    values: row.values,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.sink, &a.metric).cmp(&(&b.sink, &b.metric)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::MetricKind;

    fn carried(name: &str, values: f64) -> Carried {
        Carried {
            metric: Arc::new(MetricDesc::new(name, MetricKind::Counter, false, None)),
            points: 1,
            values,
        }
    }

    #[test]
    fn rows_add_up_by_sink_and_metric() {
        let ledger = MetricLosses::default();
        ledger.lose("a", &[carried("x", 2.0), carried("x", 3.0), carried("y", 1.0)]);
        ledger.lose("b", &[carried("x", 1.5)]);
        ledger.lose("a", &[]);
        let rows = ledger.snapshot();
        let view: Vec<_> =
            rows.iter().map(|r| (r.sink.as_str(), r.metric.as_str(), r.points, r.values)).collect();
        assert_eq!(view, [("a", "x", 2, 5.0), ("a", "y", 1, 1.0), ("b", "x", 1, 1.5)]);
    }

    #[test]
    fn past_the_row_limit_losses_go_to_one_other_row() {
        let ledger = MetricLosses::default();
        let items: Vec<_> = (0..MAX_ROWS + 10).map(|i| carried(&format!("m{i}"), 1.0)).collect();
        ledger.lose("s", &items);
        ledger.lose("s", &[carried("m0", 1.0), carried("late", 1.0)]);
        let rows = ledger.snapshot();
        assert_eq!(rows.len(), MAX_ROWS + 1);
        let other = rows.iter().find(|r| r.metric == OTHER_METRICS).map(|r| r.points);
        assert_eq!(other, Some(11));
        let m0 = rows.iter().find(|r| r.metric == "m0").map(|r| r.points);
        assert_eq!(m0, Some(2), "existing rows keep counting");
        let total: u64 = rows.iter().map(|r| r.points).sum();
        assert_eq!(total, MAX_ROWS as u64 + 12);
    }
}
