//! The series registry: one entry per live series, shared by all threads.
//!
//! Threads consult it only the first time they see a series (the slow path); after that they keep
//! a pointer to their own cell. It enforces the cardinality limits: a series beyond its metric's
//! limit, or beyond the global limit, is not admitted and its values go to the metric's overflow
//! series (tagged `overflow:true`). The flusher evicts series that stayed idle, which frees their
//! place under the limits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::hash::{hash_str, hash_value_text, series_hash, tag_hash, BuildPassThrough};
use super::series::{ByHash, MetricDesc, SeriesEntry, SeriesTags};
use super::tag::Tag;
use crate::fields::MetricKind;

const SHARDS: usize = 64;

/// The tag that marks overflow series.
pub(crate) const OVERFLOW_TAG: (&str, &str) = ("overflow", "true");

/// Series limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) per_metric: usize,
    pub(crate) total: usize,
}

/// How a series was resolved.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// The series, or its metric's overflow series when the series was over a limit.
    pub(crate) entry: Arc<SeriesEntry>,
    /// Whether this call created the entry: the caller's thread then writes its home cell (and
    /// no other thread ever does).
    pub(crate) home: bool,
}

/// A shard: one pointer per series, found by series hash.
type Shard = HashSet<ByHash<Arc<SeriesEntry>>, BuildPassThrough>;

/// What identifies a metric: name, kind, monotonicity, unit.
type MetricKey = (String, MetricKind, bool, Option<String>);

/// Registry of live series and interned metrics.
#[derive(Debug)]
pub(crate) struct Registry {
    shards: Box<[Mutex<Shard>]>,
    metrics: Mutex<HashMap<MetricKey, Arc<MetricDesc>>>,
    live: AtomicUsize,
    limits: Limits,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; recover the data if something ever did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            metrics: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
            limits,
        }
    }

    /// The metric with this name, kind and unit (one per pipeline).
    pub(crate) fn metric(
        &self,
        name: &str,
        kind: MetricKind,
        monotonic: bool,
        unit: Option<&str>,
    ) -> Arc<MetricDesc> {
        let key = (name.to_owned(), kind, monotonic, unit.map(str::to_owned));
        lock(&self.metrics)
            .entry(key)
            .or_insert_with(|| Arc::new(MetricDesc::new(name, kind, monotonic, unit)))
            .clone()
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(hash as usize) % SHARDS])
    }

    /// As [`find_or_admit`](Self::find_or_admit), with the metric's overflow series for a
    /// series over a limit.
    #[cfg(test)]
    pub(crate) fn resolve(
        &self,
        hash: u64,
        metric: &Arc<MetricDesc>,
        epoch: u64,
        tags: impl FnOnce() -> SeriesTags,
    ) -> Resolution {
        self.find_or_admit(hash, metric, epoch, tags)
            .unwrap_or_else(|| self.overflow(metric, epoch))
    }

    /// Finds or admits the series `hash` of `metric`; `None` when it is over a limit, and the
    /// caller then finds the metric's overflow series, often in a table of its own without a
    /// lock (see [`overflow_hash`]), else through [`overflow`](Self::overflow). `tags` builds
    /// the series' tags, called only for a new series and outside any lock.
    pub(crate) fn find_or_admit(
        &self,
        hash: u64,
        metric: &Arc<MetricDesc>,
        epoch: u64,
        tags: impl FnOnce() -> SeriesTags,
    ) -> Option<Resolution> {
        if let Some(existing) = self.shard(hash).get(&hash) {
            return Some(Resolution { entry: existing.0.clone(), home: false });
        }
        if !self.reserve(metric) {
            return None;
        }
        let entry = Arc::new(SeriesEntry::new(hash, metric.clone(), tags(), false, epoch));
        let mut shard = self.shard(hash);
        if let Some(existing) = shard.get(&hash) {
            // Another thread admitted it meanwhile.
            let existing = existing.0.clone();
            drop(shard);
            self.release(metric);
            return Some(Resolution { entry: existing, home: false });
        }
        shard.insert(ByHash(entry.clone()));
        Some(Resolution { entry, home: true })
    }

    fn reserve(&self, metric: &MetricDesc) -> bool {
        // Once a limit is reached, every new series of every thread lands here: a load, not an
        // add and a subtract, keeps the counters' cache lines shared instead of bouncing.
        if metric.series.load(Ordering::Relaxed) >= self.limits.per_metric
            || self.live.load(Ordering::Relaxed) >= self.limits.total
        {
            return false;
        }
        if metric.series.fetch_add(1, Ordering::Relaxed) >= self.limits.per_metric {
            metric.series.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        if self.live.fetch_add(1, Ordering::Relaxed) >= self.limits.total {
            self.live.fetch_sub(1, Ordering::Relaxed);
            metric.series.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, metric: &MetricDesc) {
        metric.series.fetch_sub(1, Ordering::Relaxed);
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// The overflow series of `metric`, created on first use. Overflow series do not count
    /// against the limits.
    pub(crate) fn overflow(&self, metric: &Arc<MetricDesc>, epoch: u64) -> Resolution {
        let hash = overflow_hash(metric);
        let mut shard = self.shard(hash);
        if let Some(existing) = shard.get(&hash) {
            return Resolution { entry: existing.0.clone(), home: false };
        }
        let tags = SeriesTags::from_iter([Tag::new(OVERFLOW_TAG.0, OVERFLOW_TAG.1)]);
        let entry = Arc::new(SeriesEntry::new(hash, metric.clone(), tags, true, epoch));
        shard.insert(ByHash(entry.clone()));
        Resolution { entry, home: true }
    }

    /// Appends every series in the registry to `into`: the flusher drains their home cells.
    ///
    /// Each shard is locked while its entries are copied out (a pointer each), a few
    /// microseconds: threads admitting a new series in that shard meanwhile wait that long.
    pub(crate) fn collect(&self, into: &mut Vec<Arc<SeriesEntry>>) {
        into.reserve(self.live.load(Ordering::Relaxed));
        for shard in self.shards.iter() {
            into.extend(lock(shard).iter().map(|ByHash(entry)| entry.clone()));
        }
    }

    /// Removes every series idle since before `oldest_active`, marks it retired and appends it
    /// to `evicted` (its home cell still gets a last drain). Returns how many were evicted.
    pub(crate) fn evict_idle(
        &self,
        oldest_active: u64,
        evicted: &mut Vec<Arc<SeriesEntry>>,
    ) -> usize {
        let before = evicted.len();
        for shard in self.shards.iter() {
            lock(shard).retain(|ByHash(entry)| {
                if entry.last_active.load(Ordering::Relaxed) >= oldest_active {
                    return true;
                }
                entry.retired.store(true, Ordering::Relaxed);
                if !entry.is_overflow {
                    self.release(&entry.metric);
                }
                evicted.push(entry.clone());
                false
            });
        }
        evicted.len() - before
    }

    /// Number of admitted, live series (overflow series excluded).
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// The hash of a metric's overflow series.
pub(crate) fn overflow_hash(metric: &MetricDesc) -> u64 {
    series_hash(
        metric.hash,
        tag_hash(hash_str(OVERFLOW_TAG.0), hash_value_text(OVERFLOW_TAG.1.as_bytes())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(per_metric: usize, total: usize) -> Registry {
        Registry::new(Limits { per_metric, total })
    }

    fn admitted(resolution: &Resolution) -> bool {
        !resolution.entry.is_overflow
    }

    #[test]
    fn admits_up_to_the_per_metric_limit_then_overflows() {
        let r = registry(2, 100);
        let m = r.metric("requests", MetricKind::Counter, true, None);
        assert!(admitted(&r.resolve(1, &m, 0, SeriesTags::new)));
        assert!(admitted(&r.resolve(2, &m, 0, SeriesTags::new)));
        let again = r.resolve(1, &m, 0, SeriesTags::new);
        assert!(admitted(&again) && !again.home, "only its first resolver writes the home");
        let overflow = r.resolve(3, &m, 0, SeriesTags::new);
        assert!(overflow.entry.is_overflow && overflow.home);
        assert_eq!(overflow.entry.tags[0].key(), "overflow");
        assert!(!r.resolve(4, &m, 0, SeriesTags::new).home);
        assert_eq!(r.live(), 2);
    }

    #[test]
    fn global_limit_applies_across_metrics() {
        let r = registry(10, 3);
        let a = r.metric("a", MetricKind::Counter, false, None);
        let b = r.metric("b", MetricKind::Gauge, false, None);
        for h in 0..2 {
            assert!(admitted(&r.resolve(h, &a, 0, SeriesTags::new)));
        }
        assert!(admitted(&r.resolve(10, &b, 0, SeriesTags::new)));
        assert!(!admitted(&r.resolve(11, &b, 0, SeriesTags::new)));
    }

    #[test]
    fn eviction_frees_room_and_retires_entries() {
        let r = registry(1, 10);
        let m = r.metric("m", MetricKind::Counter, false, None);
        let old = r.resolve(1, &m, 0, SeriesTags::new).entry;
        assert!(!admitted(&r.resolve(2, &m, 0, SeriesTags::new)));
        let mut evicted = Vec::new();
        assert_eq!(r.evict_idle(1, &mut evicted), 2); // the series and the overflow series
        assert!(old.is_retired() && evicted.iter().any(|e| Arc::ptr_eq(e, &old)));
        let mut live = Vec::new();
        r.collect(&mut live);
        assert!(live.is_empty());
        assert!(admitted(&r.resolve(2, &m, 1, SeriesTags::new)));
    }

    #[test]
    fn interned_metrics_are_shared() {
        let r = registry(1, 1);
        let a = r.metric("x", MetricKind::Counter, false, Some("byte"));
        let b = r.metric("x", MetricKind::Counter, false, Some("byte"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &r.metric("x", MetricKind::Gauge, false, Some("byte"))));
    }
}
