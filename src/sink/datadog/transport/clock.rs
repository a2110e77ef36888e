//! The time a request or a backoff wait may take on the lane: Datadog's requests are bounded
//! by a pending flush's deadline (a series point sent twice overwrites itself, and the
//! payloads that are not idempotent are dropped rather than resent after a timeout), so a flush
//! never waits past its deadline for a request in flight.

use std::time::{Duration, Instant};

use crate::sink::http::{wait_for_retry, MIN_REQUEST};
use crate::sink::SinkContext;

/// The deadlines a sender keeps on its lane, and its waits.
pub(crate) struct Clock {
    /// The sink's context, once started: a pending flush's deadline, and pauses it cuts short.
    cx: Option<SinkContext>,
    /// The deadline of the flush (or shutdown) being run.
    pub(crate) flushing: Option<Instant>,
    /// The configured request timeout.
    timeout: Duration,
}

impl Clock {
    pub(crate) fn new(timeout: Duration) -> Clock {
        Clock { cx: None, flushing: None, timeout }
    }

    pub(crate) fn start(&mut self, cx: SinkContext) {
        self.cx = Some(cx);
    }

    pub(crate) fn context(&self) -> Option<&SinkContext> {
        self.cx.as_ref()
    }

    /// The earliest deadline to keep: the flush being run, or one waiting on the lane.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let pending = self.cx.as_ref().and_then(SinkContext::deadline);
        match (self.flushing, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time a request may take now: the configured timeout, shortened to the deadline;
    /// `None` when less than [`MIN_REQUEST`] is left.
    pub(crate) fn request_timeout(&self) -> Option<Duration> {
        let Some(deadline) = self.deadline() else { return Some(self.timeout) };
        let left = deadline.saturating_duration_since(Instant::now());
        (left >= MIN_REQUEST).then(|| left.min(self.timeout))
    }

    /// Waits `wait` before a retry; `false` when the deadline does not leave time for the wait
    /// and a request after it (checked again whenever a flush is asked for meanwhile).
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        wait_for_retry(self.cx.as_ref(), wait, || self.deadline())
    }
}
