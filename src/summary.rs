//! The human-readable summary: totals since the pipeline started, as tables.
//!
//! [`FlushGuard::summary`](crate::FlushGuard::summary) returns a [`Summary`]; its `Display`
//! renders the tables, and its rows ([`CounterRow`], [`GaugeRow`], [`DistributionRow`],
//! [`SetRow`], [`ErrorRow`]) are there for programs that read the figures.
//! [`Builder::summary_on_drop`](crate::Builder::summary_on_drop) prints it when the guard drops,
//! to the [`SummaryOutput`] chosen.
//!
//! ```
//! let (_layer, guard) = tracing_tally::Tally::builder()
//!     .sink(tracing_tally::sink::JsonlSink::stdout())
//!     .summary_on_drop(Some(tracing_tally::summary::SummaryOutput::Stderr))
//!     .build::<tracing_subscriber::Registry>()?;
//! let summary: tracing_tally::summary::Summary = guard.summary();
//! for row in &summary.counters {
//!     println!("{} {} {}", row.name, row.tags, row.total);
//! }
//! # Ok::<(), tracing_tally::BuildError>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aggregate::series::SeriesEntry;
use crate::aggregate::sketch::Sketch;
use crate::batch::{Batch, MetricValue};
use crate::fields::SPAN_TAG;
use crate::stats::Stats;

/// Prefix of the pipeline's own metrics, left out of the summary tables.
const SELF_PREFIX: &str = "tally.";
/// Distinct error groups kept.
const MAX_ERROR_GROUPS: usize = 100;
/// Distinct series kept (at most the pipeline's own series limit): a summary is for people to
/// read, and its totals must not cost memory in proportion to a high-cardinality metric's series.
const MAX_SUMMARY_SERIES: usize = 1_000;
/// Distinct series kept per metric, so that one high-cardinality metric cannot crowd the others
/// out of the tables.
const MAX_SUMMARY_SERIES_PER_METRIC: usize = 100;

enum Total {
    Counter(f64),
    Gauge { last: f64, min: f64, max: f64 },
    Distribution { count: u64, sum: f64, min: f64, max: f64, sketch: Sketch },
    Set { peak: u64 },
}

/// Where the summary table goes when the guard drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOutput {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Running totals, fed with every exported batch.
pub(crate) struct Totals {
    series: HashMap<u64, (Arc<SeriesEntry>, Total)>,
    /// Hashes of series left out because `series` was full, up to [`MAX_SUMMARY_SERIES`]: how
    /// many distinct series the tables do not show, saturating there.
    not_shown: HashSet<u64>,
    /// Series kept per metric name.
    per_metric: HashMap<String, usize>,
    errors: BTreeMap<(String, String), u64>,
    other_errors: u64,
    series_limit: usize,
    started: Instant,
    span_metric: String,
}

impl Totals {
    pub(crate) fn new(series_limit: usize, span_metric: &str) -> Self {
        Totals {
            series: HashMap::new(),
            not_shown: HashSet::new(),
            per_metric: HashMap::new(),
            errors: BTreeMap::new(),
            other_errors: 0,
            series_limit: series_limit.min(MAX_SUMMARY_SERIES),
            started: Instant::now(),
            span_metric: span_metric.to_owned(),
        }
    }

    pub(crate) fn add(&mut self, batch: &Batch) {
        for record in batch.metrics() {
            if record.name().starts_with(SELF_PREFIX) {
                continue;
            }
            let full = self.series.len() >= self.series_limit
                || self.per_metric.get(record.name()).copied().unwrap_or(0)
                    >= MAX_SUMMARY_SERIES_PER_METRIC;
            let slot = match self.series.get_mut(&record.series_hash()) {
                Some((_, total)) => total,
                None if full => {
                    if self.not_shown.len() < MAX_SUMMARY_SERIES {
                        self.not_shown.insert(record.series_hash());
                    }
                    continue;
                }
                None => {
                    match self.per_metric.get_mut(record.name()) {
                        Some(kept) => *kept += 1,
                        None => {
                            self.per_metric.insert(record.name().to_owned(), 1);
                        }
                    }
                    let total = match record.value() {
                        MetricValue::Counter(_) => Total::Counter(0.0),
                        MetricValue::Gauge(g) => {
                            Total::Gauge { last: g.last, min: g.min, max: g.max }
                        }
                        MetricValue::Distribution(_) => Total::Distribution {
                            count: 0,
                            sum: 0.0,
                            min: f64::INFINITY,
                            max: f64::NEG_INFINITY,
                            sketch: Sketch::new(),
                        },
                        MetricValue::Set(_) => Total::Set { peak: 0 },
                    };
                    let (_, total) = self
                        .series
                        .entry(record.series_hash())
                        .or_insert((record.series.clone(), total));
                    total
                }
            };
            match (slot, record.value()) {
                (Total::Counter(sum), MetricValue::Counter(c)) => *sum += c.sum(),
                (Total::Gauge { last, min, max }, MetricValue::Gauge(g)) => {
                    *last = g.last;
                    *min = min.min(g.min);
                    *max = max.max(g.max);
                }
                (
                    Total::Distribution { count, sum, min, max, sketch },
                    MetricValue::Distribution(d),
                ) => {
                    *count += d.count;
                    *sum += d.sum;
                    *min = min.min(d.min);
                    *max = max.max(d.max);
                    sketch.merge(&d.sketch);
                }
                (Total::Set { peak }, MetricValue::Set(s)) => *peak = (*peak).max(s.unique),
                _ => {}
            }
        }
        for error in batch.errors() {
            let message = error
                .error_chain
                .first()
                .cloned()
                .or_else(|| error.message.clone())
                .unwrap_or_default();
            let key = (error.target().to_owned(), message);
            if let Some(n) = self.errors.get_mut(&key) {
                *n += 1;
            } else if self.errors.len() < MAX_ERROR_GROUPS {
                self.errors.insert(key, 1);
            } else {
                self.other_errors += 1;
            }
        }
    }

    pub(crate) fn summary(&self, stats: Stats) -> Summary {
        let mut summary = Summary {
            elapsed: self.started.elapsed(),
            counters: Vec::new(),
            gauges: Vec::new(),
            spans: Vec::new(),
            distributions: Vec::new(),
            sets: Vec::new(),
            errors: Vec::new(),
            series_not_shown: self.not_shown.len() as u64,
            stats,
        };
        for (entry, total) in self.series.values() {
            let name = entry.metric.name().to_owned();
            let tags = entry
                .tags
                .iter()
                .filter(|t| !(name == self.span_metric && t.key() == SPAN_TAG))
                .map(|t| format!("{}:{}", t.key(), t.value()))
                .collect::<Vec<_>>()
                .join(",");
            match total {
                Total::Counter(total) => {
                    summary.counters.push(CounterRow { name, tags, total: *total })
                }
                Total::Gauge { last, min, max } => {
                    summary.gauges.push(GaugeRow { name, tags, last: *last, min: *min, max: *max });
                }
                Total::Distribution { count, sum, min, max, sketch } => {
                    let quantile = |q: f64| sketch.quantile(q).unwrap_or(0.0).clamp(*min, *max);
                    let span = (name == self.span_metric)
                        .then(|| entry.tags.iter().find(|t| t.key() == SPAN_TAG))
                        .flatten();
                    let row = DistributionRow {
                        name: span.map_or(name, |t| t.value().to_owned()),
                        tags,
                        unit: entry.metric.unit().map(str::to_owned),
                        count: *count,
                        mean: if *count > 0 { sum / *count as f64 } else { 0.0 },
                        p50: quantile(0.5),
                        p90: quantile(0.9),
                        p99: quantile(0.99),
                        max: *max,
                    };
                    if span.is_some() {
                        summary.spans.push(row);
                    } else {
                        summary.distributions.push(row);
                    }
                }
                Total::Set { peak } => summary.sets.push(SetRow { name, tags, peak_unique: *peak }),
            }
        }
        summary.counters.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        summary.gauges.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        summary.spans.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        summary.distributions.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        summary.sets.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        summary.errors = self
            .errors
            .iter()
            .map(|((target, message), &count)| ErrorRow {
                target: target.clone(),
                message: message.clone(),
                count,
            })
            .collect();
        if self.other_errors > 0 {
            summary.errors.push(ErrorRow {
                target: "(other)".into(),
                message: String::new(),
                count: self.other_errors,
            });
        }
        summary.errors.sort_by_key(|row| std::cmp::Reverse(row.count));
        summary
    }
}

/// Totals since the pipeline started, ready to print.
///
/// Get one from [`FlushGuard::summary`](crate::FlushGuard::summary); its `Display` renders
/// tables of counters, gauges, span latencies, distributions, sets, errors and drops.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary {
    /// Time since the pipeline started.
    pub elapsed: Duration,
    /// Counter totals.
    pub counters: Vec<CounterRow>,
    /// Gauges: last value and extremes.
    pub gauges: Vec<GaugeRow>,
    /// Span latencies, by span name.
    pub spans: Vec<DistributionRow>,
    /// Other distributions.
    pub distributions: Vec<DistributionRow>,
    /// Sets: the largest unique count of any interval.
    pub sets: Vec<SetRow>,
    /// Errors grouped by target and message, most frequent first.
    pub errors: Vec<ErrorRow>,
    /// Distinct series left out of the tables: the summary keeps the first 100 series it sees of
    /// each metric and 1,000 in all (fewer if the pipeline's series limit is lower). Counted up
    /// to 1,000, so a figure of 1,000 means "at least 1,000". Every series still reaches the
    /// sinks.
    pub series_not_shown: u64,
    /// The pipeline's self-telemetry.
    pub stats: Stats,
}

/// A counter's total.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CounterRow {
    /// Metric name.
    pub name: String,
    /// Tags as `k:v,k:v`.
    pub tags: String,
    /// Sum since start.
    pub total: f64,
}

/// A gauge's last value and extremes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GaugeRow {
    /// Metric name.
    pub name: String,
    /// Tags as `k:v,k:v`.
    pub tags: String,
    /// Last value set.
    pub last: f64,
    /// Smallest value set.
    pub min: f64,
    /// Largest value set.
    pub max: f64,
}

/// A distribution's (or a span's) statistics since start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DistributionRow {
    /// Metric name, or the span name for span rows.
    pub name: String,
    /// Tags as `k:v,k:v`.
    pub tags: String,
    /// Unit, if known.
    pub unit: Option<String>,
    /// Number of values.
    pub count: u64,
    /// Mean value.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// A set's largest unique count in any interval.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SetRow {
    /// Metric name.
    pub name: String,
    /// Tags as `k:v,k:v`.
    pub tags: String,
    /// Largest unique count of one interval.
    pub peak_unique: u64,
}

/// One group of captured errors.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ErrorRow {
    /// The events' target.
    pub target: String,
    /// The error (first of the chain) or message.
    pub message: String,
    /// How many were captured.
    pub count: u64,
}

fn number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn table(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(f, "\n{title}")?;
    let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
        let mut first = true;
        for ((cell, width), title) in cells.iter().zip(&widths).zip(header) {
            let header_is_text = *title == "error";
            if !first {
                f.write_str("  ")?;
            }
            // Left-align names (the first column) and free text (a column titled "error").
            if first || header_is_text {
                write!(f, "{cell:<width$}")?;
            } else {
                write!(f, "{cell:>width$}")?;
            }
            first = false;
        }
        writeln!(f)
    };
    line(f, &header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
    for row in &rows {
        line(f, row)?;
    }
    Ok(())
}

fn with_tags(name: &str, tags: &str) -> String {
    if tags.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {{{tags}}}")
    }
}

impl Summary {
    /// Writes the tables to standard output or standard error (errors writing are ignored).
    pub(crate) fn print(&self, output: SummaryOutput) {
        let _ = match output {
            SummaryOutput::Stdout => write!(std::io::stdout().lock(), "{self}"),
            SummaryOutput::Stderr => write!(std::io::stderr().lock(), "{self}"),
        };
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tracing-tally summary ({:.1} s)", self.elapsed.as_secs_f64())?;
        let counters =
            self.counters.iter().map(|r| vec![with_tags(&r.name, &r.tags), number(r.total)]);
        table(f, "Counters", &["counter", "total"], counters.collect())?;
        let gauges = self.gauges.iter().map(|r| {
            vec![with_tags(&r.name, &r.tags), number(r.last), number(r.min), number(r.max)]
        });
        table(f, "Gauges", &["gauge", "last", "min", "max"], gauges.collect())?;
        let latency = |rows: &[DistributionRow]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| {
                    vec![
                        with_tags(&r.name, &r.tags),
                        r.count.to_string(),
                        number(r.mean),
                        number(r.p50),
                        number(r.p90),
                        number(r.p99),
                        number(r.max),
                    ]
                })
                .collect()
        };
        let header = ["span (ms)", "count", "mean", "p50", "p90", "p99", "max"];
        table(f, "Span latency", &header, latency(&self.spans))?;
        let header = ["distribution", "count", "mean", "p50", "p90", "p99", "max"];
        table(f, "Distributions", &header, latency(&self.distributions))?;
        let sets =
            self.sets.iter().map(|r| vec![with_tags(&r.name, &r.tags), r.peak_unique.to_string()]);
        table(f, "Sets", &["set", "peak unique"], sets.collect())?;
        let errors = self
            .errors
            .iter()
            .map(|r| vec![r.target.clone(), r.count.to_string(), r.message.clone()]);
        table(f, "Errors", &["target", "count", "error"], errors.collect())?;
        let drops =
            self.stats.drops().map(|(reason, n)| vec![reason.as_str().to_owned(), n.to_string()]);
        table(f, "Dropped", &["reason", "count"], drops.collect())?;
        if self.series_not_shown > 0 {
            let at_least =
                if self.series_not_shown >= MAX_SUMMARY_SERIES as u64 { "at least " } else { "" };
            writeln!(
                f,
                "\n{at_least}{} more series were exported but are not shown here",
                self.series_not_shown
            )?;
        }
        if self.stats.overflowed > 0 {
            writeln!(
                f,
                "\n{} values went to overflow series (series limit reached)",
                self.stats.overflowed
            )?;
        }
        Ok(())
    }
}
