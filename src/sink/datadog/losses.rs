//! What the sink gives up, counted by cause and forwarded to the pipeline's drop counters.
//!
//! Metric losses are counted per series point (a distribution sent as aggregates counts once
//! per aggregate), event losses per event. The pipeline's [`DropReason`]s are coarser than
//! these causes; [`Loss::reason`] is the one place that maps them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::stats::{Carried, DropReason};

/// Why the sink left something out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
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

impl Loss {
    /// Every cause, in declaration order.
    pub(crate) const ALL: [Loss; 15] = [
        Loss::Stale,
        Loss::Future,
        Loss::NonFinite,
        Loss::TooLarge,
        Loss::Rejected,
        Loss::Unauthorized,
        Loss::Timeout,
        Loss::QueueFull,
        Loss::BufferFull,
        Loss::Shutdown,
        Loss::EventLimit,
        Loss::Sampled,
        Loss::SpoolFull,
        Loss::SpoolExpired,
        Loss::SpoolCorrupt,
    ];

    /// The pipeline's reason for this cause (`None` when the pipeline has no fitting reason).
    pub(crate) fn reason(self) -> Option<DropReason> {
        match self {
            Loss::QueueFull => Some(DropReason::SinkQueueFull),
            Loss::EventLimit => Some(DropReason::RateLimited),
            Loss::Sampled => Some(DropReason::SinkSampled),
            Loss::SpoolFull => Some(DropReason::SpoolFull),
            Loss::SpoolExpired => Some(DropReason::SpoolExpired),
            Loss::SpoolCorrupt => Some(DropReason::SpoolCorrupt),
            Loss::Stale
            | Loss::Future
            | Loss::NonFinite
            | Loss::TooLarge
            | Loss::Rejected
            | Loss::Unauthorized
            | Loss::Timeout
            | Loss::BufferFull
            | Loss::Shutdown => Some(DropReason::SinkError),
        }
    }

    /// A short name for diagnostics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Loss::Stale => "stale",
            Loss::Future => "future",
            Loss::NonFinite => "non_finite",
            Loss::TooLarge => "too_large",
            Loss::Rejected => "rejected",
            Loss::Unauthorized => "unauthorized",
            Loss::Timeout => "timeout",
            Loss::QueueFull => "queue_full",
            Loss::BufferFull => "buffer_full",
            Loss::Shutdown => "shutdown",
            Loss::EventLimit => "event_limit",
            Loss::Sampled => "sampled",
            Loss::SpoolFull => "spool_full",
            Loss::SpoolExpired => "spool_expired",
            Loss::SpoolCorrupt => "spool_corrupt",
        }
    }
}

type Forward = dyn Fn(DropReason, u64) + Send + Sync;
type Book = dyn Fn(&[&Carried]) + Send + Sync;

struct Inner {
    counts: [AtomicU64; Loss::ALL.len()],
    forward: Box<Forward>,
    book: Box<Book>,
}

/// Loss counters shared by the encoders, the transport and the spool's bookkeeping.
#[derive(Clone)]
pub(crate) struct Losses(Arc<Inner>);

impl Losses {
    /// Counters that also report each loss to `forward` (the pipeline's drop counters) and
    /// the metric points lost to `book` (the pipeline's per-metric ledger).
    pub(crate) fn new(
        forward: impl Fn(DropReason, u64) + Send + Sync + 'static,
        book: impl Fn(&[&Carried]) + Send + Sync + 'static,
    ) -> Self {
        Losses(Arc::new(Inner {
            counts: Default::default(),
            forward: Box::new(forward),
            book: Box::new(book),
        }))
    }

    /// Counts `n` items lost to `loss`, of which the metric points `carried` go to the ledger.
    pub(crate) fn record_items<'a>(
        &self,
        loss: Loss,
        n: u64,
        carried: impl IntoIterator<Item = &'a Carried>,
    ) {
        self.record(loss, n);
        if loss != Loss::Sampled {
            let carried: Vec<&Carried> = carried.into_iter().collect();
            if !carried.is_empty() {
                (self.0.book)(&carried);
            }
        }
    }

    /// Counts `n` losses of one cause.
    pub(crate) fn record(&self, loss: Loss, n: u64) {
        if n == 0 {
            return;
        }
        self.note(loss, n);
        if let Some(reason) = loss.reason() {
            (self.0.forward)(reason, n);
        }
    }

    /// Counts `n` losses that the pipeline booked already (what the lane refused): here only,
    /// so that they are not forwarded, and counted, twice.
    pub(crate) fn note(&self, loss: Loss, n: u64) {
        if let Some(counter) = self.0.counts.get(loss as usize) {
            let _ = counter
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_add(n)));
        }
    }

    /// How many were lost to `loss` so far.
    pub(crate) fn get(&self, loss: Loss) -> u64 {
        self.0.counts.get(loss as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Losses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for loss in Loss::ALL {
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
    //! Loss counters whose forwarded drops can be read back.

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
        losses.record(Loss::Stale, 2);
        losses.record(Loss::QueueFull, 3);
        losses.record(Loss::EventLimit, 1);
        losses.record(Loss::Sampled, 90);
        losses.record(Loss::Rejected, 0);
        assert_eq!(losses.get(Loss::Stale), 2);
        assert_eq!(losses.get(Loss::Sampled), 90);
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
    fn all_is_in_declaration_order() {
        for (i, loss) in Loss::ALL.iter().enumerate() {
            assert_eq!(*loss as usize, i);
        }
    }
}
