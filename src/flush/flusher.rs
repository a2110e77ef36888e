//! The flusher's state: drains cells into intervals, builds batches, hands them to sinks.

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sinks::SinkHandle;
use super::ticket::FlushTicket;
use crate::aggregate::cell::{Accumulator, Cell};
use crate::aggregate::hash::{hash_str, hash_value_text, series_hash, tag_hash};
use crate::aggregate::series::{SeriesEntry, SeriesTags};
use crate::batch::{
    Batch, CounterValue, DistributionValue, GaugeValue, MetricKind, MetricRecord, MetricValue,
    SessionStatus, SessionUpdate, SetValue, Tag,
};
use crate::layer::session::{session_entry, SessionMode};
use crate::pipeline::{Inbox, Shared};
use crate::sink::summary::Totals;
use crate::stats::{Counters, Stats};

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
    /// Every live cell of every thread.
    cells: Vec<Arc<Cell>>,
    /// Records of closed intervals, not yet exported.
    pending: Vec<MetricRecord>,
    pub(crate) sinks: Vec<SinkHandle>,
    pub(crate) totals: Arc<Mutex<Totals>>,
    self_metrics: SelfMetrics,
    /// How long the previous flush took (reported as `tally.flush.duration`).
    last_flush: Option<Duration>,
}

impl Flusher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        inbox: Inbox,
        sinks: Vec<SinkHandle>,
        totals: Arc<Mutex<Totals>>,
    ) -> Self {
        Flusher {
            shared,
            inbox,
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
        let epoch = self.shared.epoch();
        let length = self.shared.config.rollup_interval;
        // Cells of one series (one per thread that wrote it) are grouped by sorting in place, not
        // in a map built per interval: the flush then allocates nothing per series but the record
        // it exports. The order barely changes between intervals, so the sort is cheap.
        self.cells.sort_unstable_by_key(|cell| cell.entry.hash);
        let mut records: Vec<MetricRecord> = Vec::new();
        let mut open: Option<(Arc<SeriesEntry>, Accumulator, bool)> = None;
        self.cells.retain(|cell| {
            // A cell only the flusher still holds was dropped by its thread (which exited or
            // forgot a retired series): this drain is its last. The fence pairs with the release
            // in the thread's `Arc` drop, so every write it made is visible below.
            let orphan = Arc::strong_count(cell) == 1;
            if orphan {
                fence(Ordering::Acquire);
            }
            let entry = &cell.entry;
            if open.as_ref().is_some_and(|(series, _, _)| series.hash != entry.hash) {
                if let Some((series, acc, true)) = open.take() {
                    records.push(record(series, start, length, acc));
                }
            }
            let slot = open.get_or_insert_with(|| {
                (entry.clone(), Accumulator::new(entry.metric.kind()), false)
            });
            if cell.drain_into(&mut slot.1) {
                slot.2 = true;
                entry.last_active.store(epoch, Ordering::Relaxed);
            }
            !orphan
        });
        if let Some((series, acc, true)) = open {
            records.push(record(series, start, length, acc));
        }
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
            let evicted = self.shared.registry.evict_idle(epoch.saturating_sub(idle));
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
        let transactions: Vec<_> = self.inbox.transactions.try_iter().collect();
        let batch = Arc::new(Batch {
            metrics,
            errors,
            transactions,
            sessions,
            global_tags: self.shared.config.global_tags.clone(),
        });
        self.totals.lock().unwrap_or_else(PoisonError::into_inner).add(&batch);
        for sink in &mut self.sinks {
            if !batch.is_empty() {
                sink.export(&batch, &self.shared);
            }
            if let Some(ticket) = ticket {
                sink.flush(ticket, shutdown);
            }
        }
        for sink in &mut self.sinks {
            sink.join_if_finished();
        }
        Counters::bump(&self.shared.counters.flushes, 1);
        self.last_flush = Some(started.elapsed());
    }

    pub(crate) fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.shared.registry.live())
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
                sketch: d.sketch,
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
                sketch,
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
