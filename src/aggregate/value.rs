//! The values cells hold, by metric kind: written by their owner thread, drained by the flusher.
//!
//! The owning thread updates a value with uncontended atomic read-modify-write operations; the
//! flusher takes each value with an atomic `swap`, so every update lands in exactly one interval
//! and nothing is counted twice or lost. No lock is taken.
//!
//! Integer counters, the most frequent update, go further: the owner keeps a running sum with a
//! plain load and store (it is the only writer) and the flusher, the only drainer, takes the
//! difference from the sum it saw last time. Every increment still lands in exactly one interval.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::accumulator::{Accumulator, CounterAcc, DistributionAcc, GaugeAcc};
use super::set::AtomicSet;
use super::sketch::AtomicSketch;
use crate::fields::MetricKind;

/// Orders gauge writes across threads, so "last" means last.
static GAUGE_SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// The value a cell accumulates, by metric kind.
#[derive(Debug)]
pub(crate) enum CellValue {
    /// The flag sits beside the sums rather than inside them, in the word of the enum's tag:
    /// a counter's value, the most common, stays at 32 bytes.
    Counter(Touched, CounterCell),
    /// Boxed, like the two rarer kinds below, so that a counter's value stays small.
    Gauge(Box<GaugeCell>),
    Distribution(Box<DistributionCell>),
    Set(Box<AtomicSet>),
}

impl CellValue {
    pub(crate) fn new(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => CellValue::Counter(Touched::default(), CounterCell::default()),
            MetricKind::Gauge => CellValue::Gauge(Box::default()),
            MetricKind::Distribution => CellValue::Distribution(Box::default()),
            MetricKind::Set => CellValue::Set(Box::new(AtomicSet::new())),
        }
    }

    /// Records a numeric observation. Sets take members through [`CellValue::insert_member`].
    #[inline]
    pub(super) fn record(&self, number: Number) {
        match self {
            CellValue::Counter(touched, c) => {
                match number {
                    Number::Int(v) => c.add_integer(v),
                    Number::Float(v) => c.add_float(v),
                }
                touched.set();
            }
            CellValue::Gauge(g) => g.set(number.as_f64()),
            CellValue::Distribution(d) => d.record(number.as_f64()),
            CellValue::Set(_) => {}
        }
    }

    /// Adds a set member (the hash of its text).
    #[inline]
    pub(super) fn insert_member(&self, member: u64) {
        if let CellValue::Set(s) = self {
            s.insert(member);
        }
    }

    /// Moves the cell's values into `into`; returns whether there were any.
    pub(crate) fn drain_into(&self, into: &mut Accumulator) -> bool {
        match (self, into) {
            (CellValue::Counter(touched, c), Accumulator::Counter(acc)) => {
                // Taken first: an update that lands after this is drained next time.
                let touched = touched.take();
                c.drain_into(acc) || touched
            }
            (CellValue::Gauge(g), Accumulator::Gauge(acc)) => g.drain_into(acc),
            (CellValue::Distribution(d), Accumulator::Distribution(acc)) => d.drain_into(acc),
            (CellValue::Set(s), Accumulator::Set(acc)) => s.drain_into(acc),
            _ => false,
        }
    }
}

/// Set on every update of a counter, so an interval whose increments summed to zero still
/// reports.
#[derive(Debug, Default)]
pub(crate) struct Touched(AtomicBool);

impl Touched {
    #[inline]
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// A validated numeric observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    #[inline]
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Int(v) => v as f64,
            Number::Float(v) => v,
        }
    }
}

/// Maps an f64 to a u64 whose unsigned order is the float's order (for atomic min/max).
#[inline]
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
fn from_order_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// Lowers `min` and raises `max` to `key` where it extends them. Most values do neither: a plain
/// load first spares them the locked read-modify-write. (A value recorded while the flusher
/// resets the extremes may count toward the neighbouring interval's extremes, as it could before.)
#[inline]
fn update_extremes(min: &AtomicU64, max: &AtomicU64, key: u64) {
    if key < min.load(Ordering::Relaxed) {
        min.fetch_min(key, Ordering::Relaxed);
    }
    if key > max.load(Ordering::Relaxed) {
        max.fetch_max(key, Ordering::Relaxed);
    }
}

const MIN_EMPTY: u64 = u64::MAX;
const MAX_EMPTY: u64 = 0;

#[inline]
fn add_f64(target: &AtomicU64, value: f64) {
    let mut current = target.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + value).to_bits();
        match target.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

fn take_f64(target: &AtomicU64) -> f64 {
    f64::from_bits(target.swap(0f64.to_bits(), Ordering::Relaxed))
}

// === Counter ===

#[derive(Debug, Default)]
pub(crate) struct CounterCell {
    /// Running sum of integer increments, as a wrapping i64. Only the owning thread writes it, so
    /// it adds with a plain load and store: no locked instruction on the hottest path. It is
    /// never reset; the flusher takes the difference since its last drain.
    integer: AtomicU64,
    /// The running sum as of the last drain: read and written by the flusher only.
    integer_drained: AtomicU64,
    /// Sum of float increments, as f64 bits.
    float: AtomicU64,
}

impl CounterCell {
    /// Adds an integer. Only the cell's owning thread calls this (see [`Cell`]), which is what
    /// makes the load-then-store exact: no other thread ever writes `integer`.
    #[inline]
    fn add_integer(&self, value: i64) {
        let sum = self.integer.load(Ordering::Relaxed);
        self.integer.store(sum.wrapping_add(value as u64), Ordering::Relaxed);
    }

    #[inline]
    fn add_float(&self, value: f64) {
        add_f64(&self.float, value);
    }

    /// Returns whether the sums changed (see [`Touched`] for updates that summed to zero).
    fn drain_into(&self, acc: &mut CounterAcc) -> bool {
        let sum = self.integer.load(Ordering::Relaxed);
        let integer = sum.wrapping_sub(self.integer_drained.swap(sum, Ordering::Relaxed)) as i64;
        let float = take_f64(&self.float);
        acc.integer += i128::from(integer);
        acc.float += float;
        integer != 0 || float != 0.0
    }
}

// === Gauge ===

#[derive(Debug)]
pub(crate) struct GaugeCell {
    last: AtomicU64,
    sequence: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Default for GaugeCell {
    fn default() -> Self {
        GaugeCell {
            last: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            min: AtomicU64::new(MIN_EMPTY),
            max: AtomicU64::new(MAX_EMPTY),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl GaugeCell {
    #[inline]
    fn set(&self, value: f64) {
        let sequence = GAUGE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        self.last.store(value.to_bits(), Ordering::Relaxed);
        self.sequence.store(sequence, Ordering::Relaxed);
        update_extremes(&self.min, &self.max, order_key(value));
        add_f64(&self.sum, value);
        // Release: a drain that sees this count also sees the writes above.
        self.count.fetch_add(1, Ordering::Release);
    }

    fn drain_into(&self, acc: &mut GaugeAcc) -> bool {
        let count = self.count.swap(0, Ordering::Acquire);
        if count == 0 {
            return false;
        }
        let last = f64::from_bits(self.last.load(Ordering::Relaxed));
        let sequence = self.sequence.load(Ordering::Relaxed);
        let min = self.min.swap(MIN_EMPTY, Ordering::Relaxed);
        let max = self.max.swap(MAX_EMPTY, Ordering::Relaxed);
        let sum = take_f64(&self.sum);
        if sequence >= acc.sequence {
            acc.last = last;
            acc.sequence = sequence;
        }
        if min != MIN_EMPTY {
            acc.min = acc.min.min(from_order_key(min));
        }
        if max != MAX_EMPTY {
            acc.max = acc.max.max(from_order_key(max));
        }
        acc.sum += sum;
        acc.count += count;
        true
    }
}

// === Distribution ===

#[derive(Debug)]
pub(crate) struct DistributionCell {
    /// Set (release) after every value, taken (acquire) by the drain: a cell with no value
    /// since the last drain costs the flusher one swap, not a walk over its sketch's pages.
    touched: AtomicBool,
    zero: AtomicU64,
    /// Values whose range did not fit the sketch's directory: counted, summed, not bucketed.
    unbucketed: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    sketch: AtomicSketch,
}

impl Default for DistributionCell {
    fn default() -> Self {
        DistributionCell {
            touched: AtomicBool::new(false),
            zero: AtomicU64::new(0),
            unbucketed: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(MIN_EMPTY),
            max: AtomicU64::new(MAX_EMPTY),
            sketch: AtomicSketch::new(),
        }
    }
}

impl DistributionCell {
    #[inline]
    fn record(&self, value: f64) {
        if value == 0.0 {
            self.zero.fetch_add(1, Ordering::Relaxed);
        } else if !self.sketch.record(value) {
            self.unbucketed.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&self.sum, value);
        update_extremes(&self.min, &self.max, order_key(value));
        // After everything above, always: a drain that takes the flag sees the whole value,
        // and one that took it earlier leaves it set for the next drain.
        self.touched.store(true, Ordering::Release);
    }

    fn drain_into(&self, acc: &mut DistributionAcc) -> bool {
        if !self.touched.swap(false, Ordering::Acquire) {
            return false;
        }
        let zero = self.zero.swap(0, Ordering::Relaxed);
        let unbucketed = self.unbucketed.swap(0, Ordering::Relaxed);
        acc.sketch.add_zero(zero);
        let count = zero + unbucketed + self.sketch.drain_into(&mut acc.sketch);
        if count == 0 {
            return false;
        }
        let min = self.min.swap(MIN_EMPTY, Ordering::Relaxed);
        let max = self.max.swap(MAX_EMPTY, Ordering::Relaxed);
        acc.count += count;
        acc.unbucketed += unbucketed;
        acc.sum += take_f64(&self.sum);
        if min != MIN_EMPTY {
            acc.min = acc.min.min(from_order_key(min));
        }
        if max != MAX_EMPTY {
            acc.max = acc.max.max(from_order_key(max));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn order_keys_sort_like_floats() {
        let values = [f64::MIN, -1.5, -0.0, 0.0, 1e-300, 2.0, f64::MAX];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) <= order_key(pair[1]), "{pair:?}");
            assert_eq!(from_order_key(order_key(pair[0])).to_bits(), pair[0].to_bits());
        }
    }

    #[test]
    fn gauge_keeps_last_min_max_sum_count() {
        let g = GaugeCell::default();
        for v in [3.0, -1.0, 7.5, 2.0] {
            g.set(v);
        }
        let mut acc = GaugeAcc::default();
        assert!(g.drain_into(&mut acc));
        assert_eq!((acc.last, acc.min, acc.max, acc.sum, acc.count), (2.0, -1.0, 7.5, 11.5, 4));
        assert!(!g.drain_into(&mut acc));
    }

    #[test]
    fn counter_reports_touched_zero_sums() {
        let c = CellValue::new(MetricKind::Counter);
        c.record(Number::Int(5));
        c.record(Number::Int(-5));
        let mut acc = Accumulator::new(MetricKind::Counter);
        assert!(c.drain_into(&mut acc));
        assert!(matches!(acc, Accumulator::Counter(CounterAcc { integer: 0, .. })));
        assert!(!c.drain_into(&mut acc));
    }

    #[test]
    fn a_counter_value_is_four_words() {
        assert_eq!(std::mem::size_of::<CellValue>(), 32);
    }

    #[test]
    fn counter_drains_each_increment_once_across_the_running_sum_wrapping() {
        let c = CounterCell::default();
        c.add_integer(i64::MAX);
        let mut acc = CounterAcc::default();
        assert!(c.drain_into(&mut acc));
        assert_eq!(acc.integer, i128::from(i64::MAX));
        // The running sum wraps past i64::MAX; each interval still gets exactly its increments.
        for _ in 0..3 {
            c.add_integer(1 << 32);
        }
        let mut acc = CounterAcc::default();
        assert!(c.drain_into(&mut acc));
        assert_eq!(acc.integer, 3 << 32);
        let mut acc = CounterAcc::default();
        assert!(!c.drain_into(&mut acc));
        assert_eq!(acc.integer, 0);
    }

    #[test]
    fn counter_written_by_its_owner_while_the_flusher_drains_loses_nothing() {
        let c = Arc::new(CounterCell::default());
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    c.add_integer(3);
                }
            })
        };
        let mut acc = CounterAcc::default();
        while !writer.is_finished() {
            c.drain_into(&mut acc);
        }
        let _ = writer.join();
        c.drain_into(&mut acc);
        assert_eq!(acc.integer, 600_000);
    }

    #[test]
    fn distribution_counts_zeros_and_extremes() {
        let d = DistributionCell::default();
        for v in [0.0, 0.0, -3.0, 10.0, 1e-310] {
            d.record(v);
        }
        let mut acc = DistributionAcc::default();
        assert!(d.drain_into(&mut acc));
        assert_eq!(acc.count, 5);
        assert_eq!(acc.sketch.count(), 5);
        assert_eq!((acc.min, acc.max, acc.sum), (-3.0, 10.0, 7.0 + 1e-310));
    }

    #[test]
    fn distribution_written_while_the_flusher_drains_loses_nothing() {
        let d = Arc::new(DistributionCell::default());
        let writer = {
            let d = d.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u32 {
                    d.record(f64::from(i % 5000));
                }
            })
        };
        let mut acc = DistributionAcc::default();
        let mut skipped = 0;
        while !writer.is_finished() {
            skipped += u32::from(!d.drain_into(&mut acc));
        }
        let _ = writer.join();
        d.drain_into(&mut acc);
        assert_eq!(acc.count, 200_000);
        assert_eq!(acc.sketch.count(), 200_000);
        assert!(!d.drain_into(&mut acc), "an untouched cell has nothing ({skipped} skipped)");
    }
}
