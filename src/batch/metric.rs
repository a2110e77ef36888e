use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aggregate::series::SeriesEntry;
use crate::aggregate::sketch::Sketch;
pub use crate::aggregate::tag::Tag;
pub use crate::fields::MetricKind;

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
    /// The values' sketch: quantiles within 1% relative error. Boxed, so that a record of any
    /// kind stays small (see [`MetricRecord`]).
    pub sketch: Box<Sketch>,
}

impl DistributionValue {
    /// At most `max` values (at least 2 when there are two or more) that represent the
    /// interval's values, for backends that take raw values without weights: every value
    /// (rebuilt from the sketch as in [`weighted_values`](Self::weighted_values)) when there are
    /// no more than `max`, else `max` values at evenly spaced ranks, so that the sample follows
    /// the distribution; in both cases ascending, with the exact minimum and maximum first and
    /// last. Also returns how many of the interval's values the sample leaves out.
    pub fn sample(&self, max: usize) -> (Vec<f64>, u64) {
        let d = self;
        let max = max.max(2) as u64;
        let total = d.sketch.count();
        let extremes = [d.min, d.max];
        let mut out: Vec<f64> = if total == 0 {
            // No sketch (it cannot happen with a count): the extremes are all there is.
            let n = if d.count == 1 || d.min == d.max { 1 } else { 2 };
            extremes.iter().copied().take(n).collect()
        } else if total <= max {
            let mut out = Vec::with_capacity(total as usize);
            for bucket in d.sketch.buckets() {
                let value = d.representative(bucket.lower, bucket.upper);
                out.extend(std::iter::repeat_n(value, bucket.count as usize));
            }
            out
        } else {
            // The value of rank floor((k + 1/2) * total / max) for k in 0..max.
            let mut out = Vec::with_capacity(max as usize);
            let mut k = 0u64;
            let mut seen = 0u64;
            for bucket in d.sketch.buckets() {
                seen += bucket.count;
                let value = d.representative(bucket.lower, bucket.upper);
                while k < max
                    && u128::from(2 * k + 1) * u128::from(total)
                        < 2 * u128::from(max) * u128::from(seen)
                {
                    out.push(value);
                    k += 1;
                }
            }
            out
        };
        if total > 0 {
            // Buckets ascend: the first and last values are the extremes, which are known exactly.
            if let Some(first) = out.first_mut() {
                *first = d.min;
            }
            if out.len() > 1 {
                if let Some(last) = out.last_mut() {
                    *last = d.max;
                }
            }
        }
        out.retain(|v| v.is_finite());
        let left_out = d.count.saturating_sub(out.len() as u64);
        (out, left_out)
    }

    /// The value a bucket stands for: its midpoint, kept inside the interval's extremes.
    fn representative(&self, lower: f64, upper: f64) -> f64 {
        let mut mid = lower + (upper - lower) / 2.0;
        if !mid.is_finite() {
            // The outermost buckets reach infinity (`-inf + inf` is NaN): their finite bound.
            mid = if lower.is_finite() { lower } else { upper };
        }
        if self.min <= self.max {
            mid.clamp(self.min, self.max)
        } else {
            mid
        }
    }

    /// The values as `(value, count)` pairs in ascending order: one per sketch bucket, at the
    /// bucket's midpoint (within 0.79% of every value in it) clamped to `[min, max]`, except that
    /// the smallest and the largest value come first and last as their own pairs, exact. The
    /// counts add up to [`count`](Self::count).
    pub fn weighted_values(&self) -> Vec<(f64, u64)> {
        let mut pairs: Vec<(f64, u64)> = self
            .sketch
            .buckets()
            .filter(|b| b.count > 0)
            .map(|b| (self.representative(b.lower, b.upper), b.count))
            .collect();
        let total: u64 = pairs.iter().map(|(_, n)| n).sum();
        if total < 2 || pairs.is_empty() {
            // A single value is its own minimum and maximum.
            return if total == 1 { vec![(self.min, 1)] } else { pairs };
        }
        // Take the exact extremes out of the first and last buckets.
        let last = pairs.len() - 1;
        for index in [0, last] {
            if let Some(pair) = pairs.get_mut(index) {
                pair.1 -= 1;
            }
        }
        pairs.retain(|(_, n)| *n > 0);
        pairs.insert(0, (self.min, 1));
        pairs.push((self.max, 1));
        pairs
    }

    /// The `q` quantile (`0.0..=1.0`), within 1% of the true value; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).map(|v| v.clamp(self.min, self.max))
    }
}

/// A set's size over one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetValue {
    /// Number of unique values: exact up to 1,000 values, then a HyperLogLog estimate
    /// (about 1.6% standard error).
    pub unique: u64,
    pub(crate) members: Option<Arc<[u64]>>,
}

impl SetValue {
    /// The 64-bit hashes of the members, sorted, while the count is exact (up to 1,000
    /// members); `None` past that. Equal values hash alike in every process built with the same
    /// tracing-tally version (and `200` like `"200"`), so sinks whose backend counts unique members itself (StatsD sets) can send them.
    pub fn member_hashes(&self) -> Option<&[u64]> {
        self.members.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::batch::testing::distribution_value as distribution;

    #[test]
    fn records_stay_small() {
        // The flusher holds one record per series and interval: the sketch is boxed so that
        // records of counters and gauges do not pay for it.
        eprintln!(
            "MetricRecord {} B, MetricValue {} B, DistributionValue {} B, Sketch {} B",
            std::mem::size_of::<MetricRecord>(),
            std::mem::size_of::<MetricValue>(),
            std::mem::size_of::<DistributionValue>(),
            std::mem::size_of::<Sketch>()
        );
        assert!(std::mem::size_of::<MetricRecord>() <= 96);
    }

    #[test]
    fn weighted_values_keep_the_count_and_the_exact_extremes() {
        for values in
            [&[5.0][..], &[5.0, 5.0], &[1.0, 10.0, 10.0, 20.0], &[-3.0, 0.0, 0.0, 7.5, 1e6]]
        {
            let d = distribution(values);
            let pairs = d.weighted_values();
            assert_eq!(pairs.iter().map(|(_, n)| n).sum::<u64>(), d.count, "{values:?}");
            assert_eq!(pairs.first().map(|p| p.0), Some(d.min));
            assert_eq!(pairs.last().map(|p| p.0), Some(d.max));
            assert!(pairs.windows(2).all(|w| w[0].0 <= w[1].0), "{pairs:?}");
            for (value, _) in &pairs {
                let nearest = values
                    .iter()
                    .map(|v| (v - value).abs() / v.abs().max(1e-9))
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest <= 0.008 || *value == 0.0, "{value} in {values:?}");
            }
        }
        assert!(distribution(&[]).weighted_values().is_empty());
    }

    #[test]
    fn values_in_the_outermost_buckets_stay_finite() {
        // Found by fuzzing: the midpoint of the bucket of -f64::MAX was NaN, which StatsD got as
        // `NaN` and plain StatsD dropped without a count.
        for value in [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, -5e-324] {
            let d = distribution(&[value, value, value, 1.0]);
            let pairs = d.weighted_values();
            assert!(pairs.iter().all(|(v, _)| v.is_finite()), "{value}: {pairs:?}");
            assert_eq!(pairs.iter().map(|(_, n)| n).sum::<u64>(), 4);
            let (sample, left_out) = d.sample(10);
            assert!(sample.iter().all(|v| v.is_finite()) && sample.len() == 4, "{sample:?}");
            assert_eq!(left_out, 0);
        }
    }
}
