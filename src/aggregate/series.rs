//! Metric descriptions and series entries: the identity of what is aggregated.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;

use super::hash::{hash_str, mix};

/// The kind of a metric, from its field prefix (see [`fields`](crate::fields)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MetricKind {
    /// A sum per interval (`monotonic_counter.`, `counter.`).
    Counter,
    /// Last, min, max, sum and count per interval (`gauge.`).
    Gauge,
    /// Count, sum, min, max and quantiles per interval (`histogram.`, `distribution.`, `timing.`).
    Distribution,
    /// Number of unique values per interval (`set.`).
    Set,
}

impl MetricKind {
    /// The lower-case name used in exported records: `counter`, `gauge`, `distribution`, `set`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Distribution => "distribution",
            MetricKind::Set => "set",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tag: a key and a value, both text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    key: Arc<str>,
    value: Box<str>,
}

impl Tag {
    /// A tag from a key and a value.
    pub fn new(key: impl Into<Arc<str>>, value: impl Into<Box<str>>) -> Tag {
        Tag { key: key.into(), value: value.into() }
    }

    /// The tag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The tag's value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key, self.value)
    }
}

/// One metric: a name, a kind and a unit, shared by all of its series.
#[derive(Debug)]
pub(crate) struct MetricDesc {
    name: Box<str>,
    kind: MetricKind,
    monotonic: bool,
    unit: Option<Box<str>>,
    /// Identity of the metric, the seed of its series hashes.
    pub(crate) hash: u64,
    /// Live (admitted, not evicted) series of this metric.
    pub(crate) series: AtomicUsize,
}

impl MetricDesc {
    pub(crate) fn new(name: &str, kind: MetricKind, monotonic: bool, unit: Option<&str>) -> Self {
        let hash = mix(hash_str(name)
            ^ mix(kind as u64 + 1)
            ^ mix(u64::from(monotonic) + 7)
            ^ unit.map_or(0, |u| mix(hash_str(u))));
        MetricDesc {
            name: name.into(),
            kind,
            monotonic,
            unit: unit.map(Into::into),
            hash,
            series: AtomicUsize::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kind(&self) -> MetricKind {
        self.kind
    }

    pub(crate) fn is_monotonic(&self) -> bool {
        self.monotonic
    }

    pub(crate) fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }
}

/// A series' tags: inline for the usual one or two.
pub(crate) type SeriesTags = SmallVec<[Tag; 2]>;

/// One series: a metric and a set of tags, registered once per process.
#[derive(Debug)]
pub(crate) struct SeriesEntry {
    pub(crate) hash: u64,
    pub(crate) metric: Arc<MetricDesc>,
    /// Sorted by key, keys unique. Inline for the usual one or two tags: a series is then two
    /// allocations (this entry and its tag values), which is what bounds memory per series.
    pub(crate) tags: SeriesTags,
    pub(crate) is_overflow: bool,
    /// Set when the flusher evicted the series: threads stop writing to it.
    pub(crate) retired: AtomicBool,
    /// Roll-up epoch in which the series last had data.
    pub(crate) last_active: AtomicU64,
}

impl SeriesEntry {
    pub(crate) fn new(
        hash: u64,
        metric: Arc<MetricDesc>,
        mut tags: SeriesTags,
        is_overflow: bool,
        epoch: u64,
    ) -> Self {
        tags.sort_by(|a, b| a.key().cmp(b.key()));
        SeriesEntry {
            hash,
            metric,
            tags: {
                // Kept for the series' life: no spare capacity when the tags spill to the heap.
                tags.shrink_to_fit();
                tags
            },
            is_overflow,
            retired: AtomicBool::new(false),
            last_active: AtomicU64::new(epoch),
        }
    }

    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}
