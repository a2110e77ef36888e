//! The flusher thread: closes intervals on time, exports on time, answers flush requests.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::flusher::{interval_start, Flusher};
use super::ticket::{after, FlushTicket};
use crate::stats::DropReason;

/// A request to the flusher thread.
pub(crate) enum Command {
    /// Export everything recorded so far, then flush every sink.
    Flush(Arc<FlushTicket>),
    /// As `Flush`, then shut the sinks down and exit.
    Shutdown(Arc<FlushTicket>),
}

/// The time left until `at`, from a wall-clock target.
fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// The start of the interval before the one that contains `now` (never before the epoch).
fn previous_interval(now: SystemTime, rollup: Duration) -> SystemTime {
    interval_start(now, rollup).checked_sub(rollup).unwrap_or(UNIX_EPOCH)
}

/// The end of the interval that contains `now` (a day ahead if that cannot be represented).
fn next_boundary(now: SystemTime, rollup: Duration) -> SystemTime {
    let day = Duration::from_secs(24 * 3600);
    interval_start(now, rollup).checked_add(rollup).or_else(|| now.checked_add(day)).unwrap_or(now)
}

/// When the flush after the one scheduled at `scheduled` is due: one interval later, so that
/// the time a flush takes, or a late wake-up under load, does not push every later flush back
/// (flushes then drift and one batch carries two roll-up intervals). A flusher that fell a
/// whole interval behind (a stalled machine) waits one interval from `now` instead of flushing
/// back to back.
fn next_flush_after(scheduled: Instant, now: Instant, every: Duration) -> Instant {
    let next = after(scheduled, every);
    if next > now {
        next
    } else {
        after(now, every)
    }
}

/// The flusher thread's body.
pub(crate) fn run(mut flusher: Flusher, commands: Receiver<Command>) {
    // Nothing this thread does may feed events back into the layer.
    crate::reentry::suppress_this_thread();
    let rollup = flusher.shared.config.rollup_interval;
    let flush_every = flusher.shared.config.flush_interval;
    let mut boundary = next_boundary(SystemTime::now(), rollup);
    let mut next_flush = after(Instant::now(), flush_every);
    loop {
        let wake = after(Instant::now(), until(boundary)).min(next_flush);
        let command = commands.recv_deadline(wake);
        // A bug in aggregation or encoding must not stop the flusher for good: each step is
        // guarded, a panic counted, and the loop goes on.
        let step = catch_unwind(AssertUnwindSafe(|| match command {
            Ok(Command::Flush(ticket)) => {
                flusher.close_interval(interval_start(SystemTime::now(), rollup), false);
                flusher.export(Some(&ticket), false);
                ticket.complete(true);
                true
            }
            Ok(Command::Shutdown(ticket)) => {
                shutdown(&mut flusher, &ticket, rollup);
                false
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = SystemTime::now();
                if now >= boundary {
                    // The interval that just ended. If the thread woke late (a suspended
                    // process, a stalled machine), everything drained now is labelled with
                    // the last interval that ended.
                    flusher.close_interval(previous_interval(now, rollup), true);
                    boundary = next_boundary(now, rollup);
                }
                if Instant::now() >= next_flush {
                    flusher.export(None, false);
                    next_flush = next_flush_after(next_flush, Instant::now(), flush_every);
                }
                true
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The guard is gone without asking for a shutdown; do one anyway.
                let timeout = flusher.shared.config.shutdown_timeout;
                let (ticket, _) = FlushTicket::new(after(Instant::now(), timeout));
                shutdown(&mut flusher, &Arc::new(ticket), rollup);
                false
            }
        }));
        match step {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                flusher.shared.counters.dropped(DropReason::Panic, 1);
                if flusher.shared.is_closed() {
                    return;
                }
            }
        }
    }
}

/// The final flush: stop the writers, drain everything, shut the sinks down. The ticket
/// completes when every sink has finished; sink threads that do not finish by the deadline are
/// left to end on their own.
pub(crate) fn shutdown(flusher: &mut Flusher, ticket: &Arc<FlushTicket>, rollup: Duration) {
    flusher.shared.close();
    flusher.close_interval(interval_start(SystemTime::now(), rollup), false);
    flusher.export(Some(ticket), true);
    ticket.complete(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_keep_their_rate_whatever_a_flush_takes() {
        let every = Duration::from_secs(1);
        let start = Instant::now();
        let mut scheduled = start;
        // Each flush ends 150 ms after it was due: the schedule does not drift.
        for n in 1..=10u32 {
            let ended = scheduled + Duration::from_millis(150);
            scheduled = next_flush_after(scheduled, ended, every);
            assert_eq!(scheduled, start + every * n);
        }
        // A flusher stalled past the next flush waits a whole interval from now.
        let now = scheduled + Duration::from_millis(2500);
        assert_eq!(next_flush_after(scheduled, now, every), now + every);
    }
}
