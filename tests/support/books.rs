//! Bookkeeping for the accounting tests: what the pipeline produced, what a backend received,
//! what the pipeline reported lost, per metric, and the check that they balance exactly.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::info;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, MetricRecord, MetricValue, Sink};
use tracing_tally::MetricLoss;

const ROUTES: [&str; 3] = ["/users", "/orders", "/cart"];
/// Events of each kind per round of [`workload`].
pub(crate) const EVENTS_PER_ROUND: u64 = 60;

/// One round of the accounting workload: a counter, an up-down counter, a distribution and a
/// gauge (`acct.requests`, `acct.inflight`, `acct.latency`, `acct.depth`), tagged by route and
/// round, [`EVENTS_PER_ROUND`] events each.
pub(crate) fn workload(round: u64) {
    for i in 0..EVENTS_PER_ROUND {
        let route = ROUTES[(i % 3) as usize];
        info!(monotonic_counter.acct.requests = 1, route, round);
        info!(counter.acct.inflight = (i % 5) as i64 - 1, round);
        info!(distribution.acct.latency = i as f64 * 0.25, route, round);
        info!(gauge.acct.depth = i, round);
    }
}

/// What [`workload`] emitted over `rounds` rounds, booked as [`Books::add_record`] books it: the
/// counters' sums, and the number of values of the distribution and the gauge. (Points depend
/// on how the rounds fell into intervals; values do not.)
pub(crate) fn emitted(rounds: u64) -> BTreeMap<&'static str, f64> {
    let mut values = BTreeMap::new();
    for _ in 0..rounds {
        for i in 0..EVENTS_PER_ROUND {
            *values.entry("acct.requests").or_default() += 1.0;
            *values.entry("acct.inflight").or_default() += ((i % 5) as i64 - 1) as f64;
            *values.entry("acct.latency").or_default() += 1.0;
            *values.entry("acct.depth").or_default() += 1.0;
        }
    }
    values
}

/// Checks that the pipeline produced, for every metric of [`workload`], exactly what was
/// emitted over `rounds` rounds: nothing was lost or invented before the sinks.
pub(crate) fn assert_produced_as_emitted(produced: &Books, rounds: u64) {
    for (metric, values) in emitted(rounds) {
        assert_eq!(
            produced.get(metric).values,
            values,
            "{metric}: produced {:?}, emitted {values}",
            produced.get(metric)
        );
        assert!(produced.get(metric).points > 0, "{metric}");
    }
}

/// Points and values of one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Line {
    pub(crate) points: u64,
    pub(crate) values: f64,
}

/// Lines by metric name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Books(pub(crate) BTreeMap<String, Line>);

impl Books {
    pub(crate) fn add(&mut self, metric: &str, points: u64, values: f64) {
        let line = self.0.entry(metric.to_owned()).or_default();
        line.points += points;
        line.values += values;
    }

    pub(crate) fn get(&self, metric: &str) -> Line {
        self.0.get(metric).copied().unwrap_or_default()
    }

    /// What one record carries, by the rule of [`MetricLoss::values`].
    pub(crate) fn add_record(&mut self, record: &MetricRecord) {
        let values = match record.value() {
            MetricValue::Counter(counter) => counter.sum(),
            MetricValue::Gauge(gauge) => gauge.count as f64,
            MetricValue::Distribution(distribution) => distribution.count as f64,
            MetricValue::Set(set) => set.unique as f64,
            other => panic!("unknown value {other:?}"),
        };
        self.add(record.name(), 1, values);
    }

    /// The losses `sink` reported.
    pub(crate) fn lost(losses: &[MetricLoss], sink: &str) -> Books {
        let mut books = Books::default();
        for loss in losses.iter().filter(|l| l.sink == sink) {
            books.add(&loss.metric, loss.points, loss.values);
        }
        books
    }
}

/// A sink that books every record the pipeline hands it: what was produced.
#[derive(Clone, Default)]
pub(crate) struct Ledger(pub(crate) Arc<Mutex<Books>>);

impl Ledger {
    pub(crate) fn books(&self) -> Books {
        self.0.lock().unwrap().clone()
    }
}

impl Sink for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let mut books = self.0.lock().unwrap();
        for record in batch.metrics().iter().filter(|r| !r.name().starts_with("tally.")) {
            books.add_record(record);
        }
        Ok(())
    }
}

/// Which parts of a line the backend's wire format shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compare {
    pub(crate) points: bool,
    pub(crate) values: bool,
}

/// Checks, metric by metric, `produced == delivered + lost`, and returns a table of the three.
pub(crate) fn balance(
    produced: &Books,
    delivered: &Books,
    lost: &Books,
    compare: &[(&str, Compare)],
) -> String {
    let mut table = String::from("metric | produced | delivered | lost\n");
    let mut wrong = Vec::new();
    for (metric, what) in compare {
        let (p, d, l) = (produced.get(metric), delivered.get(metric), lost.get(metric));
        let _ = writeln!(table, "{metric} | {p:?} | {d:?} | {l:?}");
        if what.points && p.points != d.points + l.points {
            wrong.push(format!("{metric}: points {} != {} + {}", p.points, d.points, l.points));
        }
        if what.values && (p.values - (d.values + l.values)).abs() > 1e-9 * p.values.max(1.0) {
            wrong.push(format!("{metric}: values {} != {} + {}", p.values, d.values, l.values));
        }
    }
    assert!(wrong.is_empty(), "the books do not balance: {wrong:?}\n{table}");
    table
}
