//! The flusher's state: drains cells into intervals, builds batches, hands them to sinks.

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::lane::{self, Lane};
use super::ticket::FlushTicket;
use crate::aggregate::accumulator::Accumulator;
use crate::aggregate::cell::Cell;
use crate::aggregate::hash::{hash_str, hash_value_text, series_hash, tag_hash};
use crate::aggregate::series::{SeriesEntry, SeriesTags};
use crate::aggregate::value::CellValue;
use crate::batch::{
    Batch, CounterValue, DistributionValue, GaugeValue, MetricKind, MetricRecord, MetricValue,
    SessionStatus, SessionUpdate, SetValue, Tag,
};
use crate::pipeline::{session_entry, SessionMode};
use crate::pipeline::{Inbox, Shared};
use crate::stats::{Counters, Stats};
use crate::summary::Totals;

/// The start of the roll-up interval that contains `time`.
pub(crate) fn interval_start(time: SystemTime, length: Duration) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let length = length.as_nanos().max(1);
    let start = since - since % length;
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(start).unwrap_or(u64::MAX))
}

/// Everything the flusher owns.
pub(crate) struct Flusher {
    pub(crate) shared: Arc<Shared>,
    inbox: Inbox,
    /// Evicted series whose home cell may still take a write: a thread that had not yet seen the
    /// eviction may write it once more. Drained until no thread holds the series.
    retiring: Vec<Arc<SeriesEntry>>,
    /// Every live cell of a thread that writes a series it did not admit. (Home cells are found
    /// through the registry.)
    cells: Vec<Arc<Cell>>,
    /// Records of closed intervals, not yet exported.
    pending: Vec<MetricRecord>,
    pub(crate) sinks: Vec<Lane>,
    pub(crate) totals: Arc<Mutex<Totals>>,
    self_metrics: SelfMetrics,
    /// How long the previous flush took (reported as `tally.flush.duration`).
    last_flush: Option<Duration>,
}

impl Flusher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        inbox: Inbox,
        sinks: Vec<Lane>,
        totals: Arc<Mutex<Totals>>,
    ) -> Self {
        Flusher {
            shared,
            inbox,
            retiring: Vec::new(),
            cells: Vec::new(),
            pending: Vec::new(),
            sinks,
            totals,
            self_metrics: SelfMetrics::default(),
            last_flush: None,
        }
    }

    /// Drains every cell into the interval that starts at `start`. With `complete`, the interval
    /// is over: idle series are evicted and writers move to the next epoch.
    pub(crate) fn close_interval(&mut self, start: SystemTime, complete: bool) {
        self.cells.extend(self.inbox.new_cells.try_iter());
        // Every series' home cell: those of the registry's series and of the retiring ones. The
        // list lives for this drain only, so the flusher keeps no per-series memory of its own.
        let mut homes = std::mem::take(&mut self.retiring);
        self.shared.registry.collect(&mut homes);
        let epoch = self.shared.epoch();
        let length = self.shared.config.rollup_interval;
        // The cells of one series (its home cell and one per other thread that wrote it) are
        // grouped by sorting both lists by series hash and walking them together, not in a map
        // built per interval. The order of `cells` barely changes between intervals, so its sort
        // is cheap.
        homes.sort_unstable_by_key(|entry| entry.hash);
        self.cells.sort_unstable_by_key(|cell| cell.entry.hash);
        let mut series = SeriesDrain { epoch, start, length, records: Vec::new(), open: None };
        let cells = &mut self.cells;
        let (mut next_home, mut next_cell, mut kept_homes, mut kept_cells) = (0, 0, 0, 0);
        loop {
            let home_first = match (homes.get(next_home), cells.get(next_cell)) {
                (Some(home), Some(cell)) => home.hash <= cell.entry.hash,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            // A cell only the flusher still holds has no writer left (its thread exited or
            // forgot a retired series; for a home cell, the registry evicted the series too):
            // this drain is its last, and the cell is dropped from the lists below. The fence
            // pairs with the release in the writer's `Arc` drop, so every write it made is
            // visible to the drain. Of the home cells, only retired series that some thread
            // still holds are kept (in `retiring`); the registry holds the others.
            if home_first {
                let entry = &homes[next_home];
                let orphan = Arc::strong_count(entry) == 1;
                if orphan {
                    fence(Ordering::Acquire);
                }
                series.drain(entry, &entry.home);
                if !orphan && entry.is_retired() {
                    homes.swap(kept_homes, next_home);
                    kept_homes += 1;
                }
                next_home += 1;
            } else {
                let cell = &cells[next_cell];
                let orphan = Arc::strong_count(cell) == 1;
                if orphan {
                    fence(Ordering::Acquire);
                }
                series.drain(&cell.entry, &cell.value);
                if !orphan {
                    cells.swap(kept_cells, next_cell);
                    kept_cells += 1;
                }
                next_cell += 1;
            }
        }
        homes.truncate(kept_homes);
        homes.shrink_to_fit();
        self.retiring = homes;
        cells.truncate(kept_cells);
        let mut records = series.finish();
        // A stable order (by name, then tags) makes exported batches easy to read and diff.
        records.sort_by(|a, b| (a.name(), a.tags()).cmp(&(b.name(), b.tags())));
        if self.pending.is_empty() {
            // The usual case: no copy of a possibly large interval.
            self.pending = records;
        } else {
            self.pending.extend(records);
        }
        if complete {
            let idle = u64::from(self.shared.config.idle_intervals);
            let oldest_active = epoch.saturating_sub(idle);
            let evicted = self.shared.registry.evict_idle(oldest_active, &mut self.retiring);
            Counters::bump(&self.shared.counters.evicted, evicted as u64);
            self.shared.advance_epoch();
        }
    }

    /// Exports pending records, captured errors and self-metrics to every sink. With a ticket,
    /// each sink is also asked to flush (or, with `shutdown`, to shut down).
    pub(crate) fn export(&mut self, ticket: Option<&Arc<FlushTicket>>, shutdown: bool) {
        let started = Instant::now();
        let mut metrics = std::mem::take(&mut self.pending);
        let now = interval_start(SystemTime::now(), self.shared.config.rollup_interval);
        if self.shared.config.self_metrics {
            let stats = self.stats();
            metrics.extend(self.self_metrics.records(&self.shared, &stats, now, self.last_flush));
        }
        let mut sessions = Vec::new();
        if let Some(session) = &self.shared.session {
            if shutdown {
                let update = session.update(true);
                // Other sinks see the process session as a counter.
                metrics.push(self.self_metrics.session_record(&self.shared, &update, now));
                sessions.push(update);
            } else if session.needs_init() {
                sessions.push(session.update(false));
            }
        }
        let errors: Vec<_> = self.inbox.errors.try_iter().collect();
        let transactions = self.shared.take_transactions(&self.inbox);
        let batch = Batch {
            metrics,
            errors,
            transactions,
            sessions,
            global_tags: self.shared.config.global_tags.clone(),
        };
        self.totals.lock().unwrap_or_else(PoisonError::into_inner).add(&batch);
        let parts = lane::split(batch);
        for sink in &mut self.sinks {
            if let Some(ticket) = ticket {
                sink.announce(ticket.deadline);
            }
            for part in &parts {
                sink.offer(part);
            }
            if let Some(ticket) = ticket {
                sink.flush(ticket, shutdown);
            }
        }
        for sink in &mut self.sinks {
            if sink.is_strained() {
                self.shared.backpressure.strain();
            }
            sink.join_if_finished();
        }
        // The backpressure check runs at scheduled exports (every flush in manual mode), as
        // Sentry's monitor runs on a period: an explicit flush does not count as one.
        if ticket.is_none() || self.shared.config.manual {
            self.shared.backpressure.check();
        }
        Counters::bump(&self.shared.counters.flushes, 1);
        self.last_flush = Some(started.elapsed());
    }

    pub(crate) fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.shared.registry.live())
    }
}

/// Merges the cells of each series, met in series-hash order, into one record per series.
struct SeriesDrain {
    epoch: u64,
    start: SystemTime,
    length: Duration,
    records: Vec<MetricRecord>,
    /// The series being merged, its accumulator, and whether any of its cells had data.
    open: Option<(Arc<SeriesEntry>, Accumulator, bool)>,
}

impl SeriesDrain {
    fn drain(&mut self, entry: &Arc<SeriesEntry>, cell: &CellValue) {
        if self.open.as_ref().is_some_and(|(series, _, _)| series.hash != entry.hash) {
            self.close();
        }
        let (_, acc, had_data) = self
            .open
            .get_or_insert_with(|| (entry.clone(), Accumulator::new(entry.metric.kind()), false));
        if cell.drain_into(acc) {
            *had_data = true;
            entry.last_active.store(self.epoch, Ordering::Relaxed);
        }
    }

    fn close(&mut self) {
        if let Some((series, acc, true)) = self.open.take() {
            self.records.push(record(series, self.start, self.length, acc));
        }
    }

    fn finish(mut self) -> Vec<MetricRecord> {
        self.close();
        self.records
    }
}

fn record(
    series: Arc<SeriesEntry>,
    start: SystemTime,
    interval: Duration,
    acc: Accumulator,
) -> MetricRecord {
    let value = match acc {
        Accumulator::Counter(c) => {
            MetricValue::Counter(CounterValue { integer: c.integer, float: c.float })
        }
        Accumulator::Gauge(g) => MetricValue::Gauge(GaugeValue {
            last: g.last,
            // A value set while the flusher resets the extremes can leave an interval with a
            // count but no extremes of its own: its last value stands in for them.
            min: if g.min.is_finite() { g.min } else { g.last },
            max: if g.max.is_finite() { g.max } else { g.last },
            sum: g.sum,
            count: g.count,
        }),
        Accumulator::Distribution(d) => {
            // Extremes recorded outside the sketch's range fall back to the sketch's own.
            let min = if d.min.is_finite() { d.min } else { d.sketch.quantile(0.0).unwrap_or(0.0) };
            let max = if d.max.is_finite() { d.max } else { d.sketch.quantile(1.0).unwrap_or(0.0) };
            MetricValue::Distribution(DistributionValue {
                count: d.count,
                sum: d.sum,
                min,
                max,
                sketch: Box::new(d.sketch),
            })
        }
        Accumulator::Set(s) => {
            MetricValue::Set(SetValue { unique: s.unique(), members: s.members().map(Into::into) })
        }
    };
    MetricRecord { series, start, interval, value }
}

/// The pipeline's own metrics (`tally.*`), and the process session's end as a counter.
#[derive(Default)]
struct SelfMetrics {
    entries: HashMap<(&'static str, Option<&'static str>), Arc<SeriesEntry>>,
    sessions: HashMap<&'static str, Arc<SeriesEntry>>,
    reported: Option<Stats>,
}

impl SelfMetrics {
    fn entry(
        &mut self,
        shared: &Shared,
        name: &'static str,
        kind: MetricKind,
        unit: Option<&str>,
        reason: Option<&'static str>,
    ) -> Arc<SeriesEntry> {
        self.entries
            .entry((name, reason))
            .or_insert_with(|| {
                let metric = shared.registry.metric(name, kind, kind == MetricKind::Counter, unit);
                let tags: SeriesTags = reason.map(|r| Tag::new("reason", r)).into_iter().collect();
                let tags_hash = reason
                    .map_or(0, |r| tag_hash(hash_str("reason"), hash_value_text(r.as_bytes())));
                let hash = series_hash(metric.hash, tags_hash);
                Arc::new(SeriesEntry::new(hash, metric, tags, false, 0))
            })
            .clone()
    }

    /// The `sessions` counter for the process session's end (`mode:application`, `status`).
    fn session_record(
        &mut self,
        shared: &Shared,
        update: &SessionUpdate,
        start: SystemTime,
    ) -> MetricRecord {
        let status = match (update.status, update.errors) {
            (SessionStatus::Exited, errors) if errors > 0 => "errored",
            (status, _) => status.as_str(),
        };
        let series = self
            .sessions
            .entry(status)
            .or_insert_with(|| session_entry(shared, SessionMode::Application, status))
            .clone();
        let value = MetricValue::Counter(CounterValue { integer: 1, float: 0.0 });
        MetricRecord { series, start, interval: shared.config.rollup_interval, value }
    }

    fn records(
        &mut self,
        shared: &Shared,
        stats: &Stats,
        start: SystemTime,
        last_flush: Option<Duration>,
    ) -> Vec<MetricRecord> {
        let interval = shared.config.rollup_interval;
        let previous = self.reported.replace(stats.clone());
        let mut out = Vec::new();
        let mut counter = |this: &mut Self, name, reason, now: u64, before: u64| {
            if now > before {
                let series = this.entry(shared, name, MetricKind::Counter, None, reason);
                let value = MetricValue::Counter(CounterValue {
                    integer: i128::from(now - before),
                    float: 0.0,
                });
                out.push(MetricRecord { series, start, interval, value });
            }
        };
        for (reason, n) in stats.drops() {
            let before = previous.as_ref().map_or(0, |p| p.dropped(reason));
            counter(self, "tally.dropped", Some(reason.as_str()), n, before);
        }
        let before = previous.as_ref().map_or(0, |p| p.overflowed);
        counter(self, "tally.series.overflow", None, stats.overflowed, before);
        let before = previous.as_ref().map_or(0, |p| p.evicted);
        counter(self, "tally.series.evicted", None, stats.evicted, before);
        let before = previous.as_ref().map_or(0, |p| p.errors_captured);
        counter(self, "tally.errors.captured", None, stats.errors_captured, before);

        let live = stats.live_series as f64;
        let series = self.entry(shared, "tally.series.live", MetricKind::Gauge, None, None);
        let value = MetricValue::Gauge(GaugeValue {
            last: live,
            min: live,
            max: live,
            sum: live,
            count: 1,
        });
        out.push(MetricRecord { series, start, interval, value });
        if let Some(duration) = last_flush {
            let ms = duration.as_secs_f64() * 1e3;
            let mut sketch = crate::aggregate::sketch::Sketch::new();
            sketch.insert(ms);
            let series = self.entry(
                shared,
                "tally.flush.duration",
                MetricKind::Distribution,
                Some("millisecond"),
                None,
            );
            let value = MetricValue::Distribution(DistributionValue {
                count: 1,
                sum: ms,
                min: ms,
                max: ms,
                sketch: Box::new(sketch),
            });
            out.push(MetricRecord { series, start, interval, value });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_starts_are_aligned() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_012_345);
        assert_eq!(
            interval_start(t, Duration::from_secs(10)),
            UNIX_EPOCH + Duration::from_secs(1_700_000_010)
        );
        assert_eq!(
            interval_start(t, Duration::from_millis(250)),
            UNIX_EPOCH + Duration::from_millis(1_700_000_012_250)
        );
    }
}
