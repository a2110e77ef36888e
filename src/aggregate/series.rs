//! Metric descriptions and series entries: the identity of what is aggregated.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;

use super::hash::{hash_str, mix};
use super::tag::Tag;
use super::value::CellValue;
use crate::fields::MetricKind;

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
///
/// The entry also holds the *home cell* of the series: the cell of the thread that admitted it.
/// Most series are only ever written by one thread, so a series usually costs this one
/// allocation (its tag values are inline too, see [`Tag`]); other threads that write the series
/// get a [`Cell`](super::cell::Cell) of their own.
///
/// The layout is fixed so that the home cell, which its thread writes all the time, never shares
/// a cache line with the fields the other writers read on every update (`retired`,
/// `is_overflow`, `hash`): they sit at the two ends, more than a cache line apart.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SeriesEntry {
    /// Set when the flusher evicted the series: threads stop writing to it.
    pub(crate) retired: AtomicBool,
    pub(crate) is_overflow: bool,
    pub(crate) hash: u64,
    pub(crate) metric: Arc<MetricDesc>,
    /// Sorted by key, keys unique. Inline for the usual one or two tags.
    pub(crate) tags: SeriesTags,
    /// Roll-up epoch in which the series last had data (written by the flusher).
    pub(crate) last_active: AtomicU64,
    /// Written only by the thread that admitted the series, drained only by the flusher.
    pub(crate) home: CellValue,
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
        // Kept for the series' life: no spare capacity when the tags spill to the heap.
        tags.shrink_to_fit();
        SeriesEntry {
            retired: AtomicBool::new(false),
            is_overflow,
            hash,
            home: CellValue::new(metric.kind()),
            metric,
            tags,
            last_active: AtomicU64::new(epoch),
        }
    }

    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// A handle on a series (`Arc<SeriesEntry>`, a thread's `CellRef`) in a hash set, found by the
/// series hash kept in the entry: one handle per slot, no copy of the hash beside it.
#[derive(Debug)]
pub(crate) struct ByHash<T>(pub(crate) T);

impl<T: AsRef<SeriesEntry>> Borrow<u64> for ByHash<T> {
    fn borrow(&self) -> &u64 {
        &self.0.as_ref().hash
    }
}

impl<T: AsRef<SeriesEntry>> PartialEq for ByHash<T> {
    fn eq(&self, other: &ByHash<T>) -> bool {
        self.0.as_ref().hash == other.0.as_ref().hash
    }
}

impl<T: AsRef<SeriesEntry>> Eq for ByHash<T> {}

impl<T: AsRef<SeriesEntry>> Hash for ByHash<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `u64` hashes itself, so that lookups by hash (through `Borrow`) find it.
        state.write_u64(self.0.as_ref().hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_series_with_two_tags_fits_one_small_allocation() {
        // The entry of a counter series with up to two short tags is its only allocation:
        // 136 bytes, 152 with the `Arc`'s counts.
        assert!(
            std::mem::size_of::<SeriesEntry>() <= 136,
            "{}",
            std::mem::size_of::<SeriesEntry>()
        );
    }

    #[test]
    fn the_home_cell_is_a_cache_line_away_from_what_other_writers_read() {
        use std::mem::offset_of;
        let last_read_byte = offset_of!(SeriesEntry, hash) + 7;
        assert!(offset_of!(SeriesEntry, retired) < last_read_byte);
        assert!(offset_of!(SeriesEntry, is_overflow) < last_read_byte);
        assert!(offset_of!(SeriesEntry, home) >= last_read_byte + 64);
    }
}
