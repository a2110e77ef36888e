//! Property: what the layer exports equals a naive fold of the same input.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use tracing::info;
use tracing_tally::sink::MetricValue;
use tracing_tally::Tally;

use crate::support::Harness;

#[derive(Debug, Clone)]
enum Op {
    Counter { tag: u8, value: i64 },
    Gauge { tag: u8, value: f64 },
    Histogram { tag: u8, value: f64 },
    Set { tag: u8, member: u16 },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, -1000i64..1000).prop_map(|(tag, value)| Op::Counter { tag, value }),
        (0u8..4, -1e6f64..1e6).prop_map(|(tag, value)| Op::Gauge { tag, value }),
        (0u8..4, -1e6f64..1e6).prop_map(|(tag, value)| Op::Histogram { tag, value }),
        (0u8..4, 0u16..40).prop_map(|(tag, member)| Op::Set { tag, member }),
        Just(Op::Flush),
    ]
}

/// Totals per tag. (Sets are compared per interval, below: their unique counts do not add up.)
#[derive(Default, Debug, PartialEq)]
struct Naive {
    counters: BTreeMap<u8, i128>,
    gauges: BTreeMap<u8, (f64, f64, f64, u64)>, // last, min, max, count
    histograms: BTreeMap<u8, (u64, f64, f64)>,  // count, min, max
}

/// Float sums per tag, compared within rounding (the layer adds in another order).
#[derive(Default, Debug)]
struct Sums {
    gauges: BTreeMap<u8, (f64, f64)>, // sum, sum of |value| (the rounding scale)
    histograms: BTreeMap<u8, (f64, f64)>, // sum, sum of |value|
}

fn sums_match(got: &BTreeMap<u8, f64>, naive: &BTreeMap<u8, (f64, f64)>) -> Result<(), String> {
    let tags: BTreeSet<u8> = got.keys().chain(naive.keys()).copied().collect();
    for tag in tags {
        let (Some(got), Some((want, scale))) = (got.get(&tag), naive.get(&tag)) else {
            return Err(format!("tag {tag}: exported {got:?}, expected {naive:?}"));
        };
        if (got - want).abs() > 1e-9 * scale.max(1.0) {
            return Err(format!("tag {tag}: sum {got}, expected {want}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn exported_aggregates_equal_a_naive_fold(ops in proptest::collection::vec(op(), 1..300)) {
        let h = Harness::new(Tally::builder().manual().self_metrics(false));
        let mut naive = Naive::default();
        let mut naive_sums = Sums::default();
        // Per-interval set uniqueness: members seen since the last flush.
        let mut set_intervals: Vec<BTreeMap<u8, BTreeSet<u16>>> = vec![BTreeMap::new()];
        for op in &ops {
            match *op {
                Op::Counter { tag, value } => {
                    h.run(|| info!(counter.c = value, tag));
                    *naive.counters.entry(tag).or_default() += i128::from(value);
                }
                Op::Gauge { tag, value } => {
                    h.run(|| info!(gauge.g = value, tag));
                    let e = naive.gauges.entry(tag).or_insert((value, value, value, 0));
                    *e = (value, e.1.min(value), e.2.max(value), e.3 + 1);
                    let s = naive_sums.gauges.entry(tag).or_default();
                    *s = (s.0 + value, s.1 + value.abs());
                }
                Op::Histogram { tag, value } => {
                    h.run(|| info!(histogram.h = value, tag));
                    let e = naive.histograms.entry(tag).or_insert((0, value, value));
                    *e = (e.0 + 1, e.1.min(value), e.2.max(value));
                    let s = naive_sums.histograms.entry(tag).or_default();
                    *s = (s.0 + value, s.1 + value.abs());
                }
                Op::Set { tag, member } => {
                    h.run(|| info!(set.s = member, tag));
                    set_intervals.last_mut().unwrap().entry(tag).or_default().insert(member);
                }
                Op::Flush => {
                    prop_assert!(h.guard.flush(Duration::from_secs(5)));
                    set_intervals.push(BTreeMap::new());
                }
            }
        }
        prop_assert!(h.guard.flush(Duration::from_secs(5)));

        let tag_of = |r: &tracing_tally::sink::MetricRecord| -> u8 {
            r.tags().iter().find(|t| t.key() == "tag").unwrap().value().parse().unwrap()
        };
        let mut got = Naive::default();
        let mut gauge_sums = BTreeMap::<u8, f64>::new();
        let mut histogram_sums = BTreeMap::<u8, f64>::new();
        for r in h.capture.metrics() {
            let tag = tag_of(&r);
            match r.value() {
                MetricValue::Counter(c) => *got.counters.entry(tag).or_default() += c.exact_integer().unwrap(),
                MetricValue::Gauge(g) => {
                    // Records arrive in interval order: the last record's last is the last value.
                    let e = got.gauges.entry(tag).or_insert((g.last, g.min, g.max, 0));
                    *e = (g.last, e.1.min(g.min), e.2.max(g.max), e.3 + g.count);
                    *gauge_sums.entry(tag).or_default() += g.sum;
                }
                MetricValue::Distribution(d) => {
                    let e = got.histograms.entry(tag).or_insert((0, d.min, d.max));
                    *e = (e.0 + d.count, e.1.min(d.min), e.2.max(d.max));
                    *histogram_sums.entry(tag).or_default() += d.sum;
                }
                MetricValue::Set(_) => {} // compared per interval below
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        // Set totals: per interval, the unique count equals the naive per-interval set size.
        let mut exported_sets: Vec<(u8, u64)> = h
            .capture
            .named("s")
            .iter()
            .map(|r| (tag_of(r), match r.value() { MetricValue::Set(s) => s.unique, _ => 0 }))
            .collect();
        let mut expected_sets: Vec<(u8, u64)> = set_intervals
            .iter()
            .flat_map(|m| m.iter().map(|(t, s)| (*t, s.len() as u64)))
            .collect();
        exported_sets.sort();
        expected_sets.sort();
        prop_assert_eq!(exported_sets, expected_sets);
        prop_assert_eq!(got, naive);
        if let Err(e) = sums_match(&gauge_sums, &naive_sums.gauges) {
            prop_assert!(false, "gauge sums: {}", e);
        }
        if let Err(e) = sums_match(&histogram_sums, &naive_sums.histograms) {
            prop_assert!(false, "histogram sums: {}", e);
        }
    }
}
