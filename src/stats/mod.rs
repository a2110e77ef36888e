//! Self-telemetry: what the pipeline dropped, and why.
//!
//! Every drop is counted under a [`DropReason`]. The counts are readable at any time through
//! [`FlushGuard::stats`](crate::FlushGuard::stats) and are exported with every flush as the counter
//! `tally.dropped` tagged `reason:<reason>` (unless self-metrics are turned off).

mod losses;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(any(feature = "sentry", feature = "datadog", feature = "statsd"))]
pub(crate) use losses::Carried;
pub use losses::MetricLoss;
pub(crate) use losses::MetricLosses;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why a value, event or batch was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The reason's name as exported (`reason:<name>`).
            pub fn as_str(self) -> &'static str {
                match self { $( DropReason::$variant => $name, )* }
            }
        }
    };
}

drop_reasons! {
    /// A metric value was NaN or infinite.
    NonFinite => "non_finite",
    /// A negative increment on a monotonic counter.
    NegativeMonotonic => "negative_monotonic",
    /// A value of the wrong type for its metric kind (a string for a counter, a float for a set).
    InvalidType => "invalid_type",
    /// A metric field name with a prefix and no usable name (counted once per callsite).
    InvalidName => "invalid_name",
    /// An error event over its callsite's rate limit.
    RateLimited => "rate_limited",
    /// An error event dropped because the capture queue was full.
    QueueFull => "queue_full",
    /// A finished transaction dropped because its queue was full.
    TransactionQueueFull => "transaction_queue_full",
    /// A span of a recorded trace that closed after its root span (left out of the transaction).
    LateSpan => "late_span",
    /// A batch not delivered to a sink because the sink's queue was full (counted per record).
    SinkQueueFull => "sink_queue_full",
    /// Records a sink reported it could not export (counted per record).
    SinkError => "sink_error",
    /// Values a sink summarised away because its backend takes only so many per series and
    /// interval (distribution values past a cap, set members past the exact limit); the record
    /// itself was sent, represented by the values kept.
    SinkSampled => "sink_sampled",
    /// Records of payloads a network sink's spool dropped, oldest first, to stay under its size
    /// cap (see `SpoolOptions::max_bytes`).
    SpoolFull => "spool_full",
    /// Records of payloads that waited in a network sink's spool longer than its age cap (see
    /// `SpoolOptions::max_age`).
    SpoolExpired => "spool_expired",
    /// Spool files that could not be read back (truncated, corrupt, written by an unknown
    /// version) and were deleted; counted per file, since what they held cannot be known.
    SpoolCorrupt => "spool_corrupt",
    /// A sink panicked while exporting (counted per record).
    SinkPanic => "sink_panic",
    /// A panic inside the layer (for example in a field's `Debug` implementation) was caught.
    Panic => "panic",
    /// An event emitted from inside the layer's own processing (for example by a `Debug`
    /// implementation) was ignored.
    Reentrant => "reentrant",
    /// An event arrived after the pipeline shut down, or while its thread was exiting.
    Closed => "closed",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live counters, shared by the layer and the flusher.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// Values routed to an overflow series.
    pub(crate) overflowed: AtomicU64,
    /// Series created with a tag value cut to the maximum length.
    pub(crate) truncated_tags: AtomicU64,
    /// Series evicted after staying idle.
    pub(crate) evicted: AtomicU64,
    /// Error events captured and queued.
    pub(crate) errors_captured: AtomicU64,
    /// Root spans whose trace was not sampled.
    pub(crate) unsampled_traces: AtomicU64,
    /// Of those, roots left out only because backpressure lowered the sample rate.
    pub(crate) downsampled_traces: AtomicU64,
    /// Flushes completed.
    pub(crate) flushes: AtomicU64,
    /// Sink exports that failed (whole batches).
    pub(crate) export_failures: AtomicU64,
    /// What the sinks gave up, by sink and metric.
    pub(crate) metric_losses: MetricLosses,
}

impl Counters {
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        if let Some(counter) = self.dropped.get(reason as usize) {
            // Saturate rather than wrap: a count that stops at u64::MAX is still true.
            let _ = counter
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_add(n)));
        }
    }

    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, live_series: usize) -> Stats {
        let mut dropped = [0; DropReason::ALL.len()];
        for (out, counter) in dropped.iter_mut().zip(&self.dropped) {
            *out = counter.load(Ordering::Relaxed);
        }
        Stats {
            dropped,
            overflowed: self.overflowed.load(Ordering::Relaxed),
            truncated_tags: self.truncated_tags.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            errors_captured: self.errors_captured.load(Ordering::Relaxed),
            unsampled_traces: self.unsampled_traces.load(Ordering::Relaxed),
            downsampled_traces: self.downsampled_traces.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            export_failures: self.export_failures.load(Ordering::Relaxed),
            live_series,
            metric_losses: self.metric_losses.snapshot(),
        }
    }
}

/// A snapshot of the pipeline's self-telemetry since it was built.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    dropped: [u64; DropReason::ALL.len()],
    /// Values routed to an overflow series because a series limit was reached.
    pub overflowed: u64,
    /// Series created with a tag value cut to the maximum length.
    pub truncated_tags: u64,
    /// Series evicted after staying idle.
    pub evicted: u64,
    /// Error events captured (queued for export).
    pub errors_captured: u64,
    /// Traces not recorded because their root was not sampled.
    pub unsampled_traces: u64,
    /// Of the unsampled traces, those left out only because backpressure had lowered the sample
    /// rate (the sinks could not keep up with traces): they would have been kept otherwise.
    pub downsampled_traces: u64,
    /// Flushes completed.
    pub flushes: u64,
    /// Sink exports that failed.
    pub export_failures: u64,
    /// Series currently admitted (overflow series excluded).
    pub live_series: usize,
    metric_losses: Vec<MetricLoss>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Drops by name, the non-zero ones only.
        struct Drops<'a>(&'a Stats);
        impl fmt::Debug for Drops<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.drops().map(|(r, n)| (r.as_str(), n))).finish()
            }
        }
        f.debug_struct("Stats")
            .field("dropped", &Drops(self))
            .field("overflowed", &self.overflowed)
            .field("truncated_tags", &self.truncated_tags)
            .field("evicted", &self.evicted)
            .field("errors_captured", &self.errors_captured)
            .field("unsampled_traces", &self.unsampled_traces)
            .field("downsampled_traces", &self.downsampled_traces)
            .field("flushes", &self.flushes)
            .field("export_failures", &self.export_failures)
            .field("live_series", &self.live_series)
            .field("metric_losses", &self.metric_losses)
            .finish()
    }
}

impl Stats {
    /// How many were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason as usize).copied().unwrap_or(0)
    }

    /// Every reason with a non-zero count.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.dropped(r))).filter(|&(_, n)| n > 0)
    }

    /// The metric points each sink gave up (queue full, export failed, refused or unreachable
    /// backend, ...), by sink and metric, with the values they carried: for each metric, what
    /// the application recorded equals what the backend received plus what is reported here.
    /// Sorted by sink, then metric; empty when nothing was lost.
    pub fn metric_losses(&self) -> &[MetricLoss] {
        &self.metric_losses
    }

    /// The total of all drops.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().fold(0u64, |total, &n| total.saturating_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_saturates() {
        let c = Counters::default();
        c.dropped(DropReason::NonFinite, 2);
        c.dropped(DropReason::QueueFull, u64::MAX);
        c.dropped(DropReason::QueueFull, 5);
        let s = c.snapshot(0);
        assert_eq!(s.dropped(DropReason::NonFinite), 2);
        assert_eq!(s.dropped(DropReason::QueueFull), u64::MAX);
        assert_eq!(s.drops().count(), 2);
    }

    #[test]
    fn names_are_snake_case() {
        for r in DropReason::ALL {
            assert!(r.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
