//! What the sink gives up, counted by cause and forwarded to the pipeline's drop counters.
//!
//! The pipeline's vocabulary is [`DropReason`]; a [`DropCause`] is the Datadog edge of it: the
//! finer cause behind a reason (most of what the sink gives up is `sink_error` to the
//! pipeline: a stale point, a 400, a refused key...), kept for the sink's own counts (its
//! `Debug`, the tests) and its log lines. [`DropCause::reason`] is the one place that maps a
//! cause to its reason.
//!
//! Metric losses are counted per series point (a distribution sent as aggregates counts once
//! per aggregate), event losses per event.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::stats::{Carried, DropReason};

/// Why the Datadog sink left something out: the cause behind a pipeline [`DropReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropCause {
    /// A point older than the intake accepts (or an event older than 18 hours).
    Stale,
    /// A point too far in the future.
    Future,
    /// A value that is not a finite number.
    NonFinite,
    /// A single series or event larger than a payload may be.
    TooLarge,
    /// The intake refused the payload (400 and other final answers).
    Rejected,
    /// The intake refused the API key (401, 403).
    Unauthorized,
    /// A request that timed out after it was sent, not retried because the intake may have it
    /// already (distribution points and events are not idempotent).
    Timeout,
    /// The sink's lane was full and refused the records (booked by the lane, noted here).
    QueueFull,
    /// Evicted from the retry buffer to make room for newer payloads.
    BufferFull,
    /// Still waiting for a retry when the sink shut down.
    Shutdown,
    /// An event over the per-key or per-flush event limit.
    EventLimit,
    /// Distribution values summarised away: a point carries at most the configured number of
    /// values, the rest of the interval's values are represented by them.
    Sampled,
    /// Deleted from the spool, oldest first, to stay under its size cap.
    SpoolFull,
    /// Waited in the spool longer than its age cap.
    SpoolExpired,
    /// A spool file that could not be read back (counted once per file).
    SpoolCorrupt,
}

impl DropCause {
    /// Every cause, in declaration order.
    pub(crate) const ALL: [DropCause; 15] = [
        DropCause::Stale,
        DropCause::Future,
        DropCause::NonFinite,
        DropCause::TooLarge,
        DropCause::Rejected,
        DropCause::Unauthorized,
        DropCause::Timeout,
        DropCause::QueueFull,
        DropCause::BufferFull,
        DropCause::Shutdown,
        DropCause::EventLimit,
        DropCause::Sampled,
        DropCause::SpoolFull,
        DropCause::SpoolExpired,
        DropCause::SpoolCorrupt,
    ];

    /// The pipeline's reason for this cause.
    pub(crate) fn reason(self) -> DropReason {
        match self {
            DropCause::QueueFull => DropReason::SinkQueueFull,
            DropCause::EventLimit => DropReason::RateLimited,
            DropCause::Sampled => DropReason::SinkSampled,
            DropCause::SpoolFull => DropReason::SpoolFull,
            DropCause::SpoolExpired => DropReason::SpoolExpired,
            DropCause::SpoolCorrupt => DropReason::SpoolCorrupt,
            DropCause::Stale
            | DropCause::Future
            | DropCause::NonFinite
            | DropCause::TooLarge
            | DropCause::Rejected
            | DropCause::Unauthorized
            | DropCause::Timeout
            | DropCause::BufferFull
            | DropCause::Shutdown => DropReason::SinkError,
        }
    }

    /// The cause of a reason Datadog does not refine (one cause has it), read off
    /// [`reason`](Self::reason) so that the mapping stays in one place; `None` for a reason
    /// several causes share (`sink_error`) or none has.
    pub(crate) fn unrefined(reason: DropReason) -> Option<DropCause> {
        let mut causes = DropCause::ALL.into_iter().filter(|cause| cause.reason() == reason);
        match (causes.next(), causes.next()) {
            (Some(cause), None) => Some(cause),
            _ => None,
        }
    }

    /// A short name for diagnostics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DropCause::Stale => "stale",
            DropCause::Future => "future",
            DropCause::NonFinite => "non_finite",
            DropCause::TooLarge => "too_large",
            DropCause::Rejected => "rejected",
            DropCause::Unauthorized => "unauthorized",
            DropCause::Timeout => "timeout",
            DropCause::QueueFull => "queue_full",
            DropCause::BufferFull => "buffer_full",
            DropCause::Shutdown => "shutdown",
            DropCause::EventLimit => "event_limit",
            DropCause::Sampled => "sampled",
            DropCause::SpoolFull => "spool_full",
            DropCause::SpoolExpired => "spool_expired",
            DropCause::SpoolCorrupt => "spool_corrupt",
        }
    }
}

/// The pipeline's drop counters, counting `n` records lost for a reason.
type DropCounters = dyn Fn(DropReason, u64) + Send + Sync;

/// The pipeline's per-metric ledger, booking the metric points lost.
type MetricLedger = dyn Fn(&[&Carried]) + Send + Sync;

struct Inner {
    counts: [AtomicU64; DropCause::ALL.len()],
    drop_counters: Box<DropCounters>,
    metric_ledger: Box<MetricLedger>,
}

/// DropCause counters shared by the encoders, the transport and the spool's bookkeeping.
#[derive(Clone)]
pub(crate) struct Losses(Arc<Inner>);

impl Losses {
    /// Counters that also report each loss to `drop_counters` (the pipeline's) and the metric
    /// points lost to `metric_ledger` (the pipeline's per-metric ledger).
    pub(crate) fn new(
        drop_counters: impl Fn(DropReason, u64) + Send + Sync + 'static,
        metric_ledger: impl Fn(&[&Carried]) + Send + Sync + 'static,
    ) -> Self {
        Losses(Arc::new(Inner {
            counts: Default::default(),
            drop_counters: Box::new(drop_counters),
            metric_ledger: Box::new(metric_ledger),
        }))
    }

    /// Counts `n` items lost to `loss`, of which the metric points `carried` go to the ledger.
    pub(crate) fn record_items<'a>(
        &self,
        loss: DropCause,
        n: u64,
        carried: impl IntoIterator<Item = &'a Carried>,
    ) {
        self.record(loss, n);
        if loss != DropCause::Sampled {
            let carried: Vec<&Carried> = carried.into_iter().collect();
            if !carried.is_empty() {
                (self.0.metric_ledger)(&carried);
            }
        }
    }

    /// Counts `n` losses of one cause.
    pub(crate) fn record(&self, loss: DropCause, n: u64) {
        if n == 0 {
            return;
        }
        self.note(loss, n);
        (self.0.drop_counters)(loss.reason(), n);
    }

    /// Counts `n` losses that the pipeline booked already (what the lane refused): here only,
    /// so that they are not forwarded, and counted, twice.
    pub(crate) fn note(&self, loss: DropCause, n: u64) {
        if let Some(counter) = self.0.counts.get(loss as usize) {
            let _ = counter
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_add(n)));
        }
    }

    /// How many were lost to `loss` so far.
    pub(crate) fn get(&self, loss: DropCause) -> u64 {
        self.0.counts.get(loss as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Losses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for loss in DropCause::ALL {
            let n = self.get(loss);
            if n > 0 {
                map.entry(&loss.as_str(), &n);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! DropCause counters whose forwarded drops can be read back.

    use std::sync::{Arc, Mutex};

    use super::Losses;
    use crate::stats::DropReason;

    /// The `(reason, n)` pairs forwarded to the pipeline.
    pub(crate) type Forwarded = Arc<Mutex<Vec<(DropReason, u64)>>>;

    /// Counters plus the `(reason, n)` pairs they forwarded.
    pub(crate) fn recording() -> (Losses, Forwarded) {
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let sink = forwarded.clone();
        let losses = Losses::new(move |reason, n| sink.lock().unwrap().push((reason, n)), |_| {});
        (losses, forwarded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_cause_and_forwards_pipeline_reasons() {
        let (losses, forwarded) = testing::recording();
        losses.record(DropCause::Stale, 2);
        losses.record(DropCause::QueueFull, 3);
        losses.record(DropCause::EventLimit, 1);
        losses.record(DropCause::Sampled, 90);
        losses.record(DropCause::Rejected, 0);
        assert_eq!(losses.get(DropCause::Stale), 2);
        assert_eq!(losses.get(DropCause::Sampled), 90);
        assert_eq!(
            *forwarded.lock().unwrap(),
            vec![
                (DropReason::SinkError, 2),
                (DropReason::SinkQueueFull, 3),
                (DropReason::RateLimited, 1),
                (DropReason::SinkSampled, 90)
            ]
        );
        assert_eq!(
            format!("{losses:?}"),
            r#"{"stale": 2, "queue_full": 3, "event_limit": 1, "sampled": 90}"#
        );
    }

    #[test]
    fn only_the_reasons_datadog_does_not_refine_map_back() {
        assert_eq!(DropCause::unrefined(DropReason::SpoolFull), Some(DropCause::SpoolFull));
        assert_eq!(DropCause::unrefined(DropReason::SpoolExpired), Some(DropCause::SpoolExpired));
        assert_eq!(DropCause::unrefined(DropReason::SpoolCorrupt), Some(DropCause::SpoolCorrupt));
        assert_eq!(DropCause::unrefined(DropReason::SinkError), None);
        assert_eq!(DropCause::unrefined(DropReason::Panic), None);
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (i, loss) in DropCause::ALL.iter().enumerate() {
            assert_eq!(*loss as usize, i);
        }
    }
}
