use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aggregate::series::SeriesEntry;
pub use crate::aggregate::series::{MetricKind, Tag};
use crate::aggregate::sketch::Sketch;

/// One series' value over one roll-up interval.
#[derive(Clone)]
#[non_exhaustive]
pub struct MetricRecord {
    pub(crate) series: Arc<SeriesEntry>,
    pub(crate) start: SystemTime,
    pub(crate) interval: Duration,
    pub(crate) value: MetricValue,
}

impl MetricRecord {
    /// The metric's name, without its field prefix and unit.
    pub fn name(&self) -> &str {
        self.series.metric.name()
    }

    /// The metric's kind.
    pub fn kind(&self) -> MetricKind {
        self.series.metric.kind()
    }

    /// Whether the metric is a counter that only goes up (`monotonic_counter.`).
    pub fn is_monotonic(&self) -> bool {
        self.series.metric.is_monotonic()
    }

    /// The metric's unit, when the field named one (`@unit`) or the kind implies one.
    pub fn unit(&self) -> Option<&str> {
        self.series.metric.unit()
    }

    /// The series' own tags, sorted by key. Global tags are in [`Batch::global_tags`](crate::batch::Batch::global_tags).
    pub fn tags(&self) -> &[Tag] {
        &self.series.tags
    }

    /// Whether this is the overflow series of a metric that reached its series limit
    /// (tagged `overflow:true`).
    pub fn is_overflow(&self) -> bool {
        self.series.is_overflow
    }

    /// Start of the roll-up interval.
    pub fn timestamp(&self) -> SystemTime {
        self.start
    }

    /// Length of the roll-up interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The aggregated value.
    pub fn value(&self) -> &MetricValue {
        &self.value
    }

    /// A stable 64-bit identity of the series (name, kind, unit and tags).
    pub fn series_hash(&self) -> u64 {
        self.series.hash
    }
}

impl fmt::Debug for MetricRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricRecord")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("unit", &self.unit())
            .field("tags", &self.tags())
            .field("timestamp", &self.start)
            .field("value", &self.value)
            .finish()
    }
}

/// An aggregated value, by kind.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A counter's sum over the interval.
    Counter(CounterValue),
    /// A gauge's statistics over the interval.
    Gauge(GaugeValue),
    /// A distribution's statistics and sketch over the interval.
    Distribution(DistributionValue),
    /// A set's unique count over the interval.
    Set(SetValue),
}

/// A counter's sum over one interval.
///
/// Integer increments are summed exactly; floating-point increments separately.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct CounterValue {
    pub(crate) integer: i128,
    pub(crate) float: f64,
}

impl CounterValue {
    /// The sum as a float.
    pub fn sum(&self) -> f64 {
        self.integer as f64 + self.float
    }

    /// The exact sum when every increment was an integer.
    pub fn exact_integer(&self) -> Option<i128> {
        (self.float == 0.0).then_some(self.integer)
    }
}

/// A gauge's statistics over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GaugeValue {
    /// The value set last (across all threads).
    pub last: f64,
    /// The smallest value set.
    pub min: f64,
    /// The largest value set.
    pub max: f64,
    /// The sum of the values set.
    pub sum: f64,
    /// How many times the gauge was set.
    pub count: u64,
}

/// A distribution's statistics over one interval.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DistributionValue {
    /// Number of values recorded (exact).
    pub count: u64,
    /// Sum of the values recorded.
    pub sum: f64,
    /// Smallest value recorded.
    pub min: f64,
    /// Largest value recorded.
    pub max: f64,
    /// The values' sketch: quantiles within 1% relative error.
    pub sketch: Sketch,
}

impl DistributionValue {
    /// The `q` quantile (`0.0..=1.0`), within 1% of the true value; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).map(|v| v.clamp(self.min, self.max))
    }
}

/// A set's size over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetValue {
    /// Number of unique values: exact up to 1,000 values, then a HyperLogLog estimate
    /// (about 1.6% standard error).
    pub unique: u64,
}
