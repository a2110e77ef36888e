//! Flush tickets: how a flush learns that every sink has taken everything.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// `now + delay`, saturating a year ahead instead of overflowing (a huge timeout or interval
/// means "not on a schedule", never a panic).
pub(crate) fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// One flush in flight: each sink completes it once; the waiter hears the overall result.
#[derive(Debug)]
pub(crate) struct FlushTicket {
    pub(crate) deadline: Instant,
    remaining: AtomicUsize,
    ok: AtomicBool,
    done: Sender<bool>,
}

impl FlushTicket {
    /// A ticket and the receiver its result arrives on.
    pub(crate) fn new(deadline: Instant) -> (FlushTicket, Receiver<bool>) {
        let (done, result) = crossbeam_channel::bounded(1);
        let ticket = FlushTicket {
            deadline,
            remaining: AtomicUsize::new(1),
            ok: AtomicBool::new(true),
            done,
        };
        (ticket, result)
    }

    /// Adds `n` parts that must complete (one per sink).
    pub(crate) fn expect(&self, n: usize) {
        self.remaining.fetch_add(n, Ordering::AcqRel);
    }

    /// Completes one part.
    pub(crate) fn complete(&self, ok: bool) {
        if !ok {
            self.ok.store(false, Ordering::Release);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.done.try_send(self.ok.load(Ordering::Acquire));
        }
    }
}
