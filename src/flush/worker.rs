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

/// The flusher thread's body.
pub(crate) fn run(mut flusher: Flusher, commands: Receiver<Command>) {
    // Nothing this thread does may feed events back into the layer.
    crate::layer::local::suppress_this_thread();
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
                    next_flush = after(Instant::now(), flush_every);
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
