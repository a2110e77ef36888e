//! What a sink may use of the pipeline: [`SinkContext`].
//!
//! A sink sees the pipeline through this one narrow type, built-in sinks and user sinks alike:
//! the debug switch, the service's identity, the loss ledger, and its lane's signals (the
//! deadline of a pending flush, and a pause that a flush cuts short). It never sees the
//! aggregation state, the configuration or the other sinks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::batch::MetricRecord;
use crate::pipeline::Shared;
#[cfg(any(feature = "sentry", feature = "datadog", feature = "statsd"))]
use crate::stats::Carried;
use crate::stats::{DropReason, Stats};

/// A sink's view of its pipeline, given to [`Sink::start`](super::Sink::start) on the sink's
/// own thread before anything else. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use tracing_tally::sink::{Batch, Sink, SinkContext};
/// use tracing_tally::sink::ExportError;
/// use tracing_tally::DropReason;
///
/// #[derive(Default)]
/// struct Uploader {
///     cx: Option<SinkContext>,
/// }
///
/// impl Sink for Uploader {
///     fn name(&self) -> &str {
///         "uploader"
///     }
///
///     fn start(&mut self, cx: SinkContext) {
///         self.cx = Some(cx);
///     }
///
///     fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
///         let Some(cx) = &self.cx else { return Ok(()) };
///         // Wait before a retry, but never past a pending flush's deadline.
///         if cx.deadline().is_none() && cx.pause(Duration::from_millis(1)) {
///             // ... try again ...
///         }
///         // What this sink gives up is booked, so `Stats` stays exact.
///         cx.lose_records(DropReason::SinkError, batch.metrics());
///         Ok(())
///     }
/// }
/// ```
#[derive(Clone)]
pub struct SinkContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: Box<str>,
    shared: Arc<Shared>,
    signals: Signals,
    /// The sink runs on the thread that flushes (manual mode).
    inline: bool,
}

impl fmt::Debug for SinkContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkContext")
            .field("sink", &self.inner.name)
            .field("pipeline", &self.inner.shared.id)
            .finish_non_exhaustive()
    }
}

impl SinkContext {
    /// The context of the sink named `name` in the pipeline `shared`.
    pub(crate) fn new(name: &str, shared: Arc<Shared>, inline: bool) -> SinkContext {
        let signals = Signals::new();
        SinkContext { inner: Arc::new(Inner { name: name.into(), shared, signals, inline }) }
    }

    /// The sink's name, as it is booked in the loss ledger.
    pub fn sink_name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the pipeline runs with diagnostics on (`TALLY_DEBUG`): sinks then log what goes
    /// wrong to standard error.
    pub fn debug(&self) -> bool {
        self.inner.shared.config.debug
    }

    /// Logs a diagnostic line (prefixed with the sink's name) when [`debug`](Self::debug) is on.
    pub fn log(&self, message: fmt::Arguments<'_>) {
        if self.debug() {
            crate::debug::log(format_args!("{}: {message}", self.inner.name));
        }
    }

    /// The service's name (`service` global tag), if set.
    pub fn service(&self) -> Option<&str> {
        self.inner
            .shared
            .config
            .global_tags
            .iter()
            .find(|t| t.key() == "service")
            .map(|t| t.value())
    }

    /// The release, if set.
    pub fn release(&self) -> Option<&str> {
        self.inner.shared.config.release.as_deref()
    }

    /// The environment, if set.
    pub fn environment(&self) -> Option<&str> {
        self.inner.shared.config.environment.as_deref()
    }

    /// Whether the sink runs on the thread that flushes (manual mode, for serverless
    /// functions): that caller waits for every request the sink makes, so a request must not
    /// outlast a flush's [`deadline`](Self::deadline). A sink on its own thread may let a
    /// request in flight finish after a flush gave up waiting.
    pub fn is_inline(&self) -> bool {
        self.inner.inline
    }

    /// The deadline of the flush (or shutdown) waiting for this sink, if one is: a sink that
    /// retries or waits must be done by then.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.signals.deadline()
    }

    /// Waits `wait` (a backoff before a retry). Returns `false` when a flush or shutdown was
    /// asked for meanwhile and cut the wait short: check [`deadline`](Self::deadline) again.
    pub fn pause(&self, wait: Duration) -> bool {
        self.inner.signals.pause(wait)
    }

    /// Books `count` records (errors, transactions, sessions, datagrams...) as given up for
    /// `reason`. Use [`lose_records`](Self::lose_records) for metric records, so that the
    /// per-metric ledger ([`Stats::metric_losses`]) stays exact too.
    pub fn lose(&self, reason: DropReason, count: u64) {
        self.inner.shared.counters.dropped(reason, count);
    }

    /// Books metric records as given up for `reason`, in the drop counts and, by metric and
    /// with the values they carried, in the per-metric ledger.
    pub fn lose_records(&self, reason: DropReason, records: &[MetricRecord]) {
        self.inner.shared.counters.dropped(reason, records.len() as u64);
        self.inner.shared.counters.metric_losses.lose_records(&self.inner.name, records);
    }

    /// Books metric points by what they carried (the per-metric ledger only).
    #[cfg(any(feature = "sentry", feature = "datadog", feature = "statsd"))]
    pub(crate) fn lose_carried<'a>(&self, carried: impl IntoIterator<Item = &'a Carried>) {
        self.inner.shared.counters.metric_losses.lose(&self.inner.name, carried);
    }

    /// Tells the pipeline that the sink (or its backend) cannot keep up with traces, for
    /// example because the backend rate-limits transactions: new root spans are sampled at a
    /// lower rate until a check finds the pipeline healthy again (see
    /// [`Stats::downsampled_traces`]).
    pub fn report_backpressure(&self) {
        self.inner.shared.backpressure.strain();
    }

    /// A snapshot of the pipeline's statistics (what it dropped, and why).
    pub fn stats(&self) -> Stats {
        self.inner.shared.counters.snapshot(self.inner.shared.registry.live())
    }

    /// What the sink's lane refused since the last call (its rooms were full), for sinks that
    /// report their losses to their backend (Sentry's client reports). Already counted in
    /// [`Stats`].
    pub fn take_refused(&self) -> Refused {
        self.inner.signals.refused.take()
    }

    pub(crate) fn signals(&self) -> &Signals {
        &self.inner.signals
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }
}

/// What a sink's lane refused because its room for that kind of data was full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// Process-session updates.
    pub sessions: u64,
    /// Captured errors.
    pub errors: u64,
    /// Metric records.
    pub metrics: u64,
    /// Transactions.
    pub transactions: u64,
    /// Spans of those transactions, their roots included.
    pub spans: u64,
}

impl Refused {
    /// Whether nothing was refused.
    pub fn is_empty(&self) -> bool {
        *self == Refused::default()
    }
}

/// The lane's side of a context: refusals, the pending deadline and the pause signal.
pub(crate) struct Signals {
    epoch: Instant,
    /// The earliest deadline of a pending flush, in nanoseconds after `epoch`; `u64::MAX` when
    /// none is pending.
    deadline: AtomicU64,
    /// Bumped by every flush request; a pause waits for it to change.
    requests: Mutex<u64>,
    requested: Condvar,
    pub(crate) refused: RefusedCounts,
}

impl Signals {
    fn new() -> Signals {
        Signals {
            epoch: Instant::now(),
            deadline: AtomicU64::new(u64::MAX),
            requests: Mutex::new(0),
            requested: Condvar::new(),
            refused: RefusedCounts::default(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            u64::MAX => None,
            nanos => self.epoch.checked_add(Duration::from_nanos(nanos)),
        }
    }

    /// A flush with `deadline` waits for the sink: lowers the pending deadline and cuts pauses
    /// short.
    pub(crate) fn request(&self, deadline: Instant) {
        let nanos = u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1);
        self.deadline.fetch_min(nanos, Ordering::AcqRel);
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests = requests.wrapping_add(1);
        self.requested.notify_all();
    }

    /// No flush waits any more.
    pub(crate) fn clear(&self) {
        self.deadline.store(u64::MAX, Ordering::Release);
    }

    fn pause(&self, wait: Duration) -> bool {
        // A wait too long to represent is a wait for a flush.
        let now = Instant::now();
        let until = now.checked_add(wait).unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = *requests;
        // A flush that asked before the lock was taken (after the caller last looked at the
        // deadline) is not missed: a wait that would end after its deadline does not start.
        if self.deadline().is_some_and(|deadline| until > deadline) {
            return false;
        }
        loop {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            let (next, _) = self
                .requested
                .wait_timeout(requests, until - now)
                .unwrap_or_else(PoisonError::into_inner);
            requests = next;
            if *requests != seen {
                return false;
            }
        }
    }
}

/// Refusals not yet taken by the sink.
#[derive(Default)]
pub(crate) struct RefusedCounts {
    sessions: AtomicU64,
    errors: AtomicU64,
    metrics: AtomicU64,
    transactions: AtomicU64,
    spans: AtomicU64,
}

impl RefusedCounts {
    pub(crate) fn add(&self, refused: Refused) {
        self.sessions.fetch_add(refused.sessions, Ordering::Relaxed);
        self.errors.fetch_add(refused.errors, Ordering::Relaxed);
        self.metrics.fetch_add(refused.metrics, Ordering::Relaxed);
        self.transactions.fetch_add(refused.transactions, Ordering::Relaxed);
        self.spans.fetch_add(refused.spans, Ordering::Relaxed);
    }

    fn take(&self) -> Refused {
        Refused {
            sessions: self.sessions.swap(0, Ordering::Relaxed),
            errors: self.errors.swap(0, Ordering::Relaxed),
            metrics: self.metrics.swap(0, Ordering::Relaxed),
            transactions: self.transactions.swap(0, Ordering::Relaxed),
            spans: self.spans.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_cut_short_by_a_flush_and_never_starts_past_a_pending_deadline() {
        let signals = Arc::new(Signals::new());
        assert!(signals.pause(Duration::from_millis(1)), "no flush: the whole wait");
        let asker = {
            let signals = signals.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                signals.request(Instant::now() + Duration::from_secs(60));
            })
        };
        let started = Instant::now();
        assert!(!signals.pause(Duration::from_secs(30)), "cut short by the flush");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        asker.join().unwrap();
        // The flush asked already: a wait past its deadline does not start; one before it does.
        let started = Instant::now();
        assert!(!signals.pause(Duration::from_secs(120)));
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(signals.pause(Duration::from_millis(1)));
        assert!(signals.deadline().is_some());
        signals.clear();
        assert_eq!(signals.deadline(), None);
    }
}
