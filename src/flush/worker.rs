//! The flusher thread: closes intervals on time, exports on time, answers flush requests.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::flusher::{interval_start, Flusher};
use super::ticket::FlushTicket;

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

/// The flusher thread's body.
pub(crate) fn run(mut flusher: Flusher, commands: Receiver<Command>) {
    // Nothing this thread does may feed events back into the layer.
    crate::layer::local::suppress_this_thread();
    let rollup = flusher.shared.config.rollup_interval;
    let flush_every = flusher.shared.config.flush_interval;
    let mut boundary = interval_start(SystemTime::now(), rollup) + rollup;
    let mut next_flush = Instant::now() + flush_every;
    loop {
        let wake = (Instant::now() + until(boundary)).min(next_flush);
        match commands.recv_deadline(wake) {
            Ok(Command::Flush(ticket)) => {
                flusher.close_interval(interval_start(SystemTime::now(), rollup), false);
                flusher.export(Some(&ticket), false);
                ticket.complete(true);
            }
            Ok(Command::Shutdown(ticket)) => {
                shutdown(&mut flusher, &ticket, rollup);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = SystemTime::now();
                if now >= boundary {
                    // The interval that just ended. If the thread woke late (a suspended
                    // process, a stalled machine), everything drained now is labelled with
                    // the last interval that ended.
                    flusher.close_interval(interval_start(now, rollup) - rollup, true);
                    boundary = interval_start(now, rollup) + rollup;
                }
                if Instant::now() >= next_flush {
                    flusher.export(None, false);
                    next_flush = Instant::now() + flush_every;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The guard is gone without asking for a shutdown; do one anyway.
                let timeout = flusher.shared.config.shutdown_timeout;
                let (ticket, _) = FlushTicket::new(Instant::now() + timeout);
                shutdown(&mut flusher, &Arc::new(ticket), rollup);
                return;
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
