//! What the flusher hands to sinks: a [`Batch`] of metric records and captured errors.
//!
//! Every type here is read-only for sinks and `#[non_exhaustive]`, so new fields can be added
//! without breaking sink implementations.

mod error_event;
mod ids;
mod metric;
mod session;
#[cfg(test)]
pub(crate) mod testing;
mod trace;

use std::sync::Arc;

pub use error_event::{Breadcrumb, ErrorEvent, FieldValue, Fields, SpanRecord};
pub use ids::{SpanId, TraceId};
pub use metric::{
    CounterValue, DistributionValue, GaugeValue, MetricKind, MetricRecord, MetricValue, SetValue,
    Tag,
};
pub(crate) use session::session_counter;
pub use session::{SessionStatus, SessionUpdate};
pub use trace::{Sampling, SpanStatus, TraceSpan, Transaction};

pub use crate::aggregate::sketch::{Sketch, SketchBucket};

/// One flush's worth of telemetry, shared by every sink.
///
/// Metric records cover completed roll-up intervals (and, on a final or explicit flush, the
/// interval in progress). Errors are those captured since the previous batch.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Batch {
    pub(crate) metrics: Vec<MetricRecord>,
    pub(crate) errors: Vec<ErrorEvent>,
    pub(crate) transactions: Vec<Transaction>,
    pub(crate) sessions: Vec<SessionUpdate>,
    pub(crate) global_tags: Arc<[Tag]>,
}

impl Batch {
    /// Metric records: one per series and roll-up interval.
    pub fn metrics(&self) -> &[MetricRecord] {
        &self.metrics
    }

    /// Captured error events, oldest first.
    pub fn errors(&self) -> &[ErrorEvent] {
        &self.errors
    }

    /// Recorded traces whose root span closed since the previous batch.
    pub fn transactions(&self) -> &[Transaction] {
        &self.transactions
    }

    /// Process-session updates (release health): the first at start, the last at shutdown.
    pub fn sessions(&self) -> &[SessionUpdate] {
        &self.sessions
    }

    /// Tags that apply to everything in the batch (service, environment, release, host and
    /// configured tags), sorted by key. A record's own tag wins over a global tag with the same key.
    pub fn global_tags(&self) -> &[Tag] {
        &self.global_tags
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
            && self.errors.is_empty()
            && self.transactions.is_empty()
            && self.sessions.is_empty()
    }

    /// A record's tags merged with the global tags, sorted by key (the record's tag wins).
    pub fn merged_tags<'a>(&'a self, record: &'a MetricRecord) -> Vec<(&'a str, &'a str)> {
        merge_tags(&self.global_tags, record.tags())
    }
}

/// Merges two key-sorted tag lists; on equal keys the second list wins.
pub(crate) fn merge_tags<'a>(global: &'a [Tag], own: &'a [Tag]) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::with_capacity(global.len() + own.len());
    let (mut g, mut o) = (global.iter().peekable(), own.iter().peekable());
    loop {
        match (g.peek(), o.peek()) {
            (Some(a), Some(b)) => match a.key().cmp(b.key()) {
                std::cmp::Ordering::Less => {
                    out.push((a.key(), a.value()));
                    g.next();
                }
                std::cmp::Ordering::Equal => {
                    g.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push((b.key(), b.value()));
                    o.next();
                }
            },
            (Some(a), None) => {
                out.push((a.key(), a.value()));
                g.next();
            }
            (None, Some(b)) => {
                out.push((b.key(), b.value()));
                o.next();
            }
            (None, None) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_prefers_own_tags_and_stays_sorted() {
        let global = [Tag::new("env", "prod"), Tag::new("service", "api")];
        let own = [Tag::new("route", "/x"), Tag::new("service", "worker")];
        assert_eq!(
            merge_tags(&global, &own),
            vec![("env", "prod"), ("route", "/x"), ("service", "worker")]
        );
    }
}
