//! Flushing: the flusher thread, the guard that shuts it down, and explicit flushes.
//!
//! The flusher drains every thread's cells at each roll-up boundary (only completed intervals
//! are exported on schedule; a final or explicit flush includes the interval in progress), and
//! hands each sink its part of every batch through the sink's lane ([`lane`]). In manual mode
//! there is no flusher thread: [`FlushGuard::flush`] does the same work on the calling thread,
//! and the sinks run on it too.

mod flusher;
mod lane;
mod ticket;
mod worker;

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;

pub(crate) use self::flusher::Flusher;
pub(crate) use self::lane::Lane;
use self::ticket::FlushTicket;
use self::worker::Command;
use crate::pipeline::{Listing, Shared};
use crate::stats::Stats;
use crate::summary::{Summary, Totals};

/// How the pipeline flushes.
enum Mode {
    /// A flusher thread.
    Threaded { commands: Sender<Command>, thread: Mutex<Option<JoinHandle<()>>> },
    /// No thread: flushes run on the caller (serverless).
    Manual { flusher: Mutex<Option<Box<Flusher>>> },
}

/// The control side of a pipeline: flush, stats, summary, shutdown.
pub(crate) struct Control {
    shared: Arc<Shared>,
    mode: Mode,
    totals: Arc<Mutex<Totals>>,
    /// Keeps the pipeline reachable by id (for outgoing trace headers) while the guard lives.
    _listing: Listing,
}

thread_local! {
    /// Set while this thread runs a manual-mode flush.
    static FLUSHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct ResetOnDrop;

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        FLUSHING.set(false);
    }
}

/// Every pipeline built, newest last: [`crate::flush`] flushes the newest one still alive.
static PIPELINES: Mutex<Vec<Weak<Control>>> = Mutex::new(Vec::new());

impl Control {
    /// Starts the flusher (a thread, unless in manual mode).
    pub(crate) fn start(flusher: Flusher) -> std::io::Result<Arc<Control>> {
        let shared = flusher.shared.clone();
        let totals = flusher.totals.clone();
        let mode = if shared.config.manual {
            Mode::Manual { flusher: Mutex::new(Some(Box::new(flusher))) }
        } else {
            let (commands, inbox) = crossbeam_channel::bounded(16);
            let thread = std::thread::Builder::new()
                .name("tally-flusher".into())
                .spawn(move || worker::run(flusher, inbox))?;
            Mode::Threaded { commands, thread: Mutex::new(Some(thread)) }
        };
        let _listing = Listing::new(&shared);
        let control = Arc::new(Control { shared, mode, totals, _listing });
        let mut pipelines = PIPELINES.lock().unwrap_or_else(PoisonError::into_inner);
        pipelines.retain(|p| p.strong_count() > 0);
        pipelines.push(Arc::downgrade(&control));
        Ok(control)
    }

    /// The pipeline `tracing_tally::flush` acts on.
    pub(crate) fn current() -> Option<Arc<Control>> {
        let pipelines = PIPELINES.lock().unwrap_or_else(PoisonError::into_inner);
        pipelines.iter().rev().filter_map(Weak::upgrade).find(|c| !c.shared.is_closed())
    }

    /// Exports everything recorded so far and waits until every sink has it, or `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.request(timeout, false)
    }

    fn request(&self, timeout: Duration, shutdown: bool) -> bool {
        let deadline = ticket::after(Instant::now(), timeout);
        let (ticket, result) = FlushTicket::new(deadline);
        let ticket = Arc::new(ticket);
        match &self.mode {
            Mode::Threaded { commands, thread } => {
                if self.shared.is_closed() {
                    return false;
                }
                let command =
                    if shutdown { Command::Shutdown(ticket) } else { Command::Flush(ticket) };
                if commands.send_deadline(command, deadline).is_err() {
                    return false;
                }
                let ok = result.recv_deadline(deadline).unwrap_or(false);
                if shutdown {
                    let mut thread = thread.lock().unwrap_or_else(PoisonError::into_inner);
                    // Join only a thread that is done: never wait on a stuck one.
                    if ok || thread.as_ref().is_some_and(JoinHandle::is_finished) {
                        if let Some(handle) = thread.take() {
                            let _ = handle.join();
                        }
                    }
                }
                ok
            }
            Mode::Manual { flusher } => {
                // A flush from inside a flush (a sink that flushes) gives up instead of deadlocking.
                if FLUSHING.get() {
                    return false;
                }
                FLUSHING.set(true);
                let _reset = ResetOnDrop;
                let mut slot = flusher.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(state) = slot.as_mut() else {
                    return false;
                };
                // Not `dispatcher::with_default`: that panics when called from inside a
                // subscriber callback, and a manual flush may be.
                crate::reentry::suppressed(|| {
                    let rollup = state.shared.config.rollup_interval;
                    if shutdown {
                        worker::shutdown(state, &ticket, rollup);
                    } else {
                        let start = flusher::interval_start(SystemTime::now(), rollup);
                        state.close_interval(start, true);
                        state.export(Some(&ticket), false);
                        ticket.complete(true);
                    }
                });
                if shutdown {
                    *slot = None;
                }
                result.try_recv().unwrap_or(false)
            }
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.shared.registry.live())
    }

    pub(crate) fn summary(&self) -> Summary {
        self.totals.lock().unwrap_or_else(PoisonError::into_inner).summary(self.stats())
    }

    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        if self.is_shut_down() {
            return true;
        }
        self.request(timeout, true)
    }

    fn is_shut_down(&self) -> bool {
        match &self.mode {
            Mode::Threaded { thread, .. } => {
                thread.lock().unwrap_or_else(PoisonError::into_inner).is_none()
            }
            Mode::Manual { flusher } => {
                flusher.lock().unwrap_or_else(PoisonError::into_inner).is_none()
            }
        }
    }
}

/// Flushes and stops the pipeline when dropped.
///
/// Keep it alive for as long as the program records telemetry, typically in a variable of
/// `main`. Dropping it exports everything recorded so far (the interval in progress included),
/// waits at most the shutdown timeout (2 s by default) for the sinks, and never longer.
///
/// `let _ = ...` drops the guard at once, which stops the pipeline immediately; bind it to a
/// named variable such as `_guard` instead. To keep the pipeline running until the process ends
/// without a final flush, `std::mem::forget` the guard.
///
/// # How a process can end
///
/// * **Returning from `main`**, or unwinding out of it: the guard drops and flushes.
/// * **A panic on another thread** does not end the process; the pipeline goes on. With
///   [`Builder::panic_hook`](crate::Builder::panic_hook) the panic is also captured as an
///   unhandled error and the pipeline flushes (within the shutdown timeout) before the panic
///   continues, which is what saves the data when the panic then aborts the process
///   (`panic = "abort"`) or takes `main` down.
/// * **`std::process::exit`** (and `abort`, and a signal's default action) runs no
///   destructors: the guard does not drop, and what was recorded since the last flush is lost.
///   Call [`flush`](FlushGuard::flush) (or drop the guard) first; [`crate::flush`] reaches the
///   guard from anywhere.
/// * **`SIGTERM` / Ctrl-C**: handle the signal (for example with `tokio::signal` or the
///   `ctrlc` crate) and return from `main`, so the guard drops.
#[must_use = "dropping the guard flushes and stops the pipeline: bind it to a variable (`let _guard = ...`)"]
pub struct FlushGuard {
    control: Arc<Control>,
}

impl std::fmt::Debug for FlushGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushGuard").field("pipeline", &self.control.shared.id).finish()
    }
}

impl FlushGuard {
    pub(crate) fn new(control: Arc<Control>) -> Self {
        FlushGuard { control }
    }

    /// Exports everything recorded so far, including the interval in progress, and waits until
    /// every sink has flushed it. Returns `true` if that happened within `timeout`.
    ///
    /// In manual mode the work runs on the calling thread.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.control.flush(timeout)
    }

    /// A snapshot of what the pipeline dropped and why, and of its series.
    pub fn stats(&self) -> Stats {
        self.control.stats()
    }

    /// Totals since the pipeline started, as printable tables. Call [`FlushGuard::flush`] first
    /// to include what was recorded since the last scheduled flush.
    pub fn summary(&self) -> Summary {
        self.control.summary()
    }

    /// Flushes and stops the pipeline now, waiting at most `timeout`. Returns `true` if every
    /// sink finished in time. Dropping the guard afterwards does nothing more.
    pub fn shutdown(self, timeout: Duration) -> bool {
        self.control.shutdown(timeout)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let config = &self.control.shared.config;
        let ok = self.control.shutdown(config.shutdown_timeout);
        if config.debug && !ok {
            crate::debug::log(format_args!(
                "final flush did not complete within {:?}",
                config.shutdown_timeout
            ));
        }
        if let Some(output) = config.summary_output {
            self.control.summary().print(output);
        }
    }
}
