//! The distribution sketch: log-linear buckets with at most 0.79% relative error.
//!
//! A value's bucket is the top bits of its IEEE-754 representation: the sign, the 11 exponent bits
//! and the 6 most significant mantissa bits. Each power of two is thus split into 64 buckets of
//! equal width, and any value in a bucket is within `2^-7` (0.78%) of the bucket's midpoint. The
//! index costs a shift, with no logarithm, and buckets merge by adding counts.
//!
//! Two forms share that layout:
//! * [`AtomicSketch`], written by one thread and drained by the flusher. Buckets live in pages of
//!   64 counters (one power of two), allocated on first use and found through a small directory,
//!   so memory follows the range of values actually seen.
//! * [`Sketch`], the flusher's merged, sparse form that sinks read.

use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::OnceLock;

/// Mantissa bits kept in a bucket index.
const SUB_BITS: u32 = 6;
/// Shift from f64 bits to a magnitude key (11 exponent bits + `SUB_BITS`).
const SHIFT: u32 = 52 - SUB_BITS;
/// Buckets per page: one power of two.
const PAGE_LEN: usize = 1 << SUB_BITS;
/// Pages per group: 32 powers of two.
const GROUP_LEN: usize = 32;
/// Groups one series can use: each covers 32 powers of two of one sign.
const DIRECTORY_LEN: usize = 6;
/// Bit that marks negative values in a signed key.
const NEGATIVE: u32 = 1 << 17;

/// The largest relative error of a quantile read from a sketch.
pub(crate) const RELATIVE_ACCURACY: f64 = 1.0 / 128.0;

/// The magnitude key of a finite, non-zero value.
#[inline]
fn magnitude_key(value: f64) -> u32 {
    ((value.to_bits() & !(1u64 << 63)) >> SHIFT) as u32
}

/// The midpoint of a magnitude bucket.
fn midpoint(key: u32) -> f64 {
    f64::from_bits((u64::from(key) << SHIFT) | (1u64 << (SHIFT - 1)))
}

/// The bounds of a magnitude bucket: `[lower, upper)`.
fn bounds(key: u32) -> (f64, f64) {
    (f64::from_bits(u64::from(key) << SHIFT), f64::from_bits(u64::from(key + 1) << SHIFT))
}

// === AtomicSketch ===

#[repr(C)]
struct Page {
    /// Set (release) after every count the writer adds, taken (acquire) by the drain: a page
    /// with no value since the last drain is skipped without reading its 64 counts. Placed
    /// first, in the cache line of the first counts.
    touched: AtomicBool,
    counts: [AtomicU64; PAGE_LEN],
}

struct Group {
    pages: [OnceLock<Box<Page>>; GROUP_LEN],
}

struct DirectoryEntry {
    /// Group id + 1; 0 while the entry is free.
    key: AtomicU32,
    group: OnceLock<Box<Group>>,
}

/// A sketch with one writer (the thread that owns it) and one drainer (the flusher).
pub(crate) struct AtomicSketch {
    directory: [DirectoryEntry; DIRECTORY_LEN],
}

impl std::fmt::Debug for AtomicSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicSketch").finish_non_exhaustive()
    }
}

impl AtomicSketch {
    pub(crate) const fn new() -> Self {
        AtomicSketch {
            directory: [const { DirectoryEntry { key: AtomicU32::new(0), group: OnceLock::new() } };
                DIRECTORY_LEN],
        }
    }

    /// Counts a finite, non-zero value. Returns `false` when the value's range needs more groups
    /// than the directory holds; the caller counts it outside the buckets.
    ///
    /// Only the owning thread may call this.
    #[inline]
    pub(crate) fn record(&self, value: f64) -> bool {
        let key = magnitude_key(value) | if value < 0.0 { NEGATIVE } else { 0 };
        let page_id = key >> SUB_BITS;
        let Some(group) = self.group(page_id / GROUP_LEN as u32) else {
            return false;
        };
        let page = group.pages[page_id as usize % GROUP_LEN].get_or_init(|| {
            Box::new(Page {
                touched: AtomicBool::new(false),
                counts: [const { AtomicU64::new(0) }; PAGE_LEN],
            })
        });
        page.counts[key as usize % PAGE_LEN].fetch_add(1, Relaxed);
        // Always stored, never skipped when already set: a drain that takes this flag then
        // sees the count above, and one that took it before this store leaves it set for the
        // next drain.
        page.touched.store(true, Release);
        true
    }

    #[inline]
    fn group(&self, group_id: u32) -> Option<&Group> {
        let wanted = group_id + 1;
        for entry in &self.directory {
            let key = entry.key.load(Relaxed);
            if key == wanted {
                return entry.group.get().map(|g| &**g);
            }
            if key == 0 {
                // Only the owning thread claims entries, so no other writer races this store.
                entry.key.store(wanted, Relaxed);
                let group = entry.group.get_or_init(|| {
                    Box::new(Group { pages: [const { OnceLock::new() }; GROUP_LEN] })
                });
                return Some(group);
            }
        }
        None
    }

    /// Moves every count into `into`; returns how many values were moved.
    pub(crate) fn drain_into(&self, into: &mut Sketch) -> u64 {
        let mut moved = 0;
        for entry in &self.directory {
            // `get` synchronizes with the writer's initialization, which follows its key store.
            let Some(group) = entry.group.get() else {
                continue;
            };
            let group_id = entry.key.load(Relaxed).saturating_sub(1);
            for (page_index, page) in group.pages.iter().enumerate() {
                let Some(page) = page.get() else { continue };
                if !page.touched.swap(false, Acquire) {
                    continue;
                }
                let page_id = group_id * GROUP_LEN as u32 + page_index as u32;
                for (slot, count) in page.counts.iter().enumerate() {
                    if count.load(Relaxed) == 0 {
                        continue;
                    }
                    let n = count.swap(0, Relaxed);
                    if n > 0 {
                        into.add_signed_key((page_id << SUB_BITS) | slot as u32, n);
                        moved += n;
                    }
                }
            }
        }
        moved
    }
}

// === Sketch ===

/// A distribution's values over one interval, as sinks read them: a count, quantiles and buckets.
///
/// Quantiles read from it are within 0.79% of the true value (relative to the value), whatever
/// the data's skew. Memory grows with the number of distinct buckets hit: at most 64 per power of
/// two of the value range.
///
/// Read-only outside the crate: how values are bucketed and stored is the aggregator's business
/// and may change; what is promised is [`count`](Self::count), [`quantile`](Self::quantile)
/// within [`relative_accuracy`](Self::relative_accuracy), and [`buckets`](Self::buckets)
/// in ascending order that add up to the count.
#[derive(Clone, PartialEq, Eq)]
pub struct Sketch {
    positive: BTreeMap<u32, u64>,
    negative: BTreeMap<u32, u64>,
    zero: u64,
    count: u64,
}

/// One bucket of a [`Sketch`]: values in `[lower, upper)` (negated for negative buckets).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SketchBucket {
    /// The bucket's smallest value.
    pub lower: f64,
    /// The bucket's largest value (exclusive, except for the zero bucket where it equals `lower`).
    pub upper: f64,
    /// How many values fell in the bucket.
    pub count: u64,
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sketch")
            .field("count", &self.count)
            .field("buckets", &(self.positive.len() + self.negative.len()))
            .finish()
    }
}

impl Sketch {
    /// An empty sketch.
    pub(crate) fn new() -> Self {
        Sketch { positive: BTreeMap::new(), negative: BTreeMap::new(), zero: 0, count: 0 }
    }

    /// The largest relative error of a quantile read from any sketch.
    pub fn relative_accuracy() -> f64 {
        RELATIVE_ACCURACY
    }

    /// Adds one value. Non-finite values are ignored.
    pub(crate) fn insert(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if value == 0.0 {
            self.add_zero(1);
        } else {
            self.add_signed_key(magnitude_key(value) | if value < 0.0 { NEGATIVE } else { 0 }, 1);
        }
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Sketch) {
        for (&k, &n) in &other.positive {
            *self.positive.entry(k).or_default() += n;
        }
        for (&k, &n) in &other.negative {
            *self.negative.entry(k).or_default() += n;
        }
        self.zero += other.zero;
        self.count += other.count;
    }

    pub(crate) fn add_signed_key(&mut self, key: u32, n: u64) {
        let map = if key & NEGATIVE != 0 { &mut self.negative } else { &mut self.positive };
        *map.entry(key & !NEGATIVE).or_default() += n;
        self.count += n;
    }

    pub(crate) fn add_zero(&mut self, n: u64) {
        self.zero += n;
        self.count += n;
    }

    /// Number of values in the sketch.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the sketch holds no value.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `q` quantile (`q` in `0.0..=1.0`, clamped): the midpoint of the bucket that holds the
    /// value of rank `floor(q * (count - 1))`. `None` for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (&key, &n) in self.negative.iter().rev() {
            seen += n;
            if seen > rank {
                return Some(-midpoint(key));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (&key, &n) in &self.positive {
            seen += n;
            if seen > rank {
                return Some(midpoint(key));
            }
        }
        // Unreachable while `count` equals the sum of the buckets; fall back to the largest.
        self.positive.keys().next_back().map(|&k| midpoint(k))
    }

    /// The non-empty buckets in ascending order of value.
    pub fn buckets(&self) -> impl Iterator<Item = SketchBucket> + '_ {
        let negative = self.negative.iter().rev().map(|(&k, &count)| {
            let (lower, upper) = bounds(k);
            SketchBucket { lower: -upper, upper: -lower, count }
        });
        let zero =
            (self.zero > 0).then_some(SketchBucket { lower: 0.0, upper: 0.0, count: self.zero });
        let positive = self.positive.iter().map(|(&k, &count)| {
            let (lower, upper) = bounds(k);
            SketchBucket { lower, upper, count }
        });
        negative.chain(zero).chain(positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn midpoints_are_within_accuracy_of_bucket_members() {
        for &v in &[1.0, 1.0078, 1.5, 3.999, 1e-9, 7.3e12, 0.000_123] {
            let m = midpoint(magnitude_key(v));
            assert!(((m - v) / v).abs() <= RELATIVE_ACCURACY, "{v} -> {m}");
        }
    }

    #[test]
    fn atomic_sketch_drains_exact_counts() {
        let atomic = AtomicSketch::new();
        for i in 1..=1000 {
            assert!(atomic.record(f64::from(i)));
            assert!(atomic.record(-f64::from(i) / 1000.0));
        }
        let mut sketch = Sketch::new();
        assert_eq!(atomic.drain_into(&mut sketch), 2000);
        assert_eq!(sketch.count(), 2000);
        assert_eq!(atomic.drain_into(&mut sketch), 0);
        let median = sketch.quantile(0.5).unwrap();
        assert!(median < 0.0 && median > -0.002, "{median}");
    }

    #[test]
    fn drains_skip_untouched_pages_and_stay_exact() {
        let atomic = AtomicSketch::new();
        let mut sketch = Sketch::new();
        let mut recorded = 0;
        for round in 0..50u32 {
            // Some rounds write one page, some several, some none.
            for i in 0..(round % 4) * 10 {
                assert!(atomic.record(f64::from(1 + (round * 7 + i) % 300)));
                recorded += 1;
            }
            atomic.drain_into(&mut sketch);
            assert_eq!(sketch.count(), recorded);
        }
        assert_eq!(atomic.drain_into(&mut sketch), 0);
    }

    #[test]
    fn directory_overflow_is_reported() {
        let atomic = AtomicSketch::new();
        // Each of these needs its own group (32 powers of two apart).
        let spread: Vec<f64> = (0..8).map(|i| 2f64.powi(-200 + i * 40)).collect();
        let recorded = spread.iter().filter(|&&v| atomic.record(v)).count();
        assert_eq!(recorded, DIRECTORY_LEN);
    }

    #[test]
    fn buckets_ascend_and_sum_to_count() {
        let mut s = Sketch::new();
        for v in [-5.0, -0.5, 0.0, 0.0, 2.0, 300.0] {
            s.insert(v);
        }
        let buckets: Vec<_> = s.buckets().collect();
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 6);
        assert!(buckets.windows(2).all(|w| w[0].upper <= w[1].lower));
    }

    proptest! {
        #[test]
        fn quantiles_within_one_percent_on_skewed_data(
            seed in any::<u64>(),
            n in 1usize..3000,
            scale in -20i32..20,
        ) {
            // Pareto-like heavy tail built from a simple generator.
            let mut x = seed | 1;
            let mut values: Vec<f64> = (0..n).map(|_| {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                2f64.powi(scale) / (1.0 - u).max(1e-12).powf(1.5)
            }).collect();
            let mut sketch = Sketch::new();
            values.iter().for_each(|&v| sketch.insert(v));
            values.sort_by(f64::total_cmp);
            for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let exact = exact_quantile(&values, q);
                let approx = sketch.quantile(q).unwrap();
                prop_assert!(((approx - exact) / exact).abs() <= 0.01, "q={} exact={} approx={}", q, exact, approx);
            }
        }

        #[test]
        fn merging_equals_inserting_everything(a in proptest::collection::vec(-1e6f64..1e6, 0..200),
                                               b in proptest::collection::vec(-1e6f64..1e6, 0..200)) {
            let (mut sa, mut sb, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
            a.iter().for_each(|&v| { sa.insert(v); all.insert(v); });
            b.iter().for_each(|&v| { sb.insert(v); all.insert(v); });
            sa.merge(&sb);
            prop_assert_eq!(sa, all);
        }
    }
}
