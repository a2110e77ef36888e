//! The lane: how every sink runs. One named thread per sink (or, in manual mode, the flushing
//! thread), with tracing suppressed for itself, fed by a bounded queue that keeps separate room
//! for each kind of data.
//!
//! * **Rooms.** The flusher hands a lane [`Part`]s, each holding one kind of data: sessions,
//!   errors, metrics or transactions. Each kind has a room of its own with its own bound, and a
//!   full room refuses the newest part of its kind only, booked as a loss (`sink_queue_full`,
//!   the per-metric ledger, and [`Refused`] for the sink to report to its backend). A burst of
//!   transactions therefore never costs a session, an error or a metric.
//! * **Order.** The lane takes the most urgent kind first (sessions, errors, metrics, then
//!   transactions, which come in small parts so that nothing waits long behind them); within a
//!   kind, oldest first.
//! * **Barriers.** A flush is a barrier: it runs once everything queued before it is exported,
//!   then calls the sink's `flush` (or `shutdown`) with the deadline, and completes the flush's
//!   ticket. While a barrier waits, the sink sees its deadline ([`SinkContext::deadline`]) and
//!   a pause in progress is cut short, so retries never outlast a flush.
//! * **Faults.** Errors and panics of the sink are caught and booked; the thread goes on. A
//!   shutdown joins the thread only if it finished: a sink stuck past the deadline is left to
//!   end on its own.
//!
//! A network sink does its I/O on this thread: there is no second thread and queue behind it.

mod part;
mod queue;
mod runner;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

pub(crate) use self::part::{split, Part};
use self::part::{Kind, Rooms};
use self::queue::{Barrier, Channel, Next, Queue, MAX_BARRIERS};
use self::runner::Runner;
use super::ticket::FlushTicket;
use crate::pipeline::Shared;
use crate::sink::{Sink, SinkContext};
use crate::stats::DropReason;

/// A sink as the flusher sees it.
pub(crate) enum Lane {
    Threaded {
        channel: Arc<Channel>,
        rooms: Rooms,
        cx: SinkContext,
        thread: Option<JoinHandle<()>>,
    },
    Inline(Runner),
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cx = match self {
            Lane::Threaded { cx, .. } => cx,
            Lane::Inline(runner) => &runner.cx,
        };
        f.debug_struct("Lane").field("sink", &cx.sink_name()).finish_non_exhaustive()
    }
}

impl Lane {
    /// Starts the lane thread of `sink`.
    pub(crate) fn spawn(sink: Box<dyn Sink>, shared: Arc<Shared>) -> std::io::Result<Lane> {
        let rooms = Rooms::of(&shared);
        let mut runner = Runner::new(sink, shared, false);
        let cx = runner.cx.clone();
        let channel = Arc::new(Channel { queue: Mutex::new(Queue::new()), ready: Condvar::new() });
        let thread = {
            let channel = channel.clone();
            std::thread::Builder::new().name(format!("tally-sink-{}", cx.sink_name())).spawn(
                move || {
                    // Nothing this thread does may feed events back into the layer.
                    crate::reentry::suppress_this_thread();
                    runner.start();
                    run(&mut runner, &channel);
                },
            )?
        };
        Ok(Lane::Threaded { channel, rooms, cx, thread: Some(thread) })
    }

    /// Runs `sink` on the flushing thread (manual mode).
    pub(crate) fn inline(sink: Box<dyn Sink>, shared: Arc<Shared>) -> Lane {
        let mut runner = Runner::new(sink, shared, true);
        runner.start();
        Lane::Inline(runner)
    }

    /// Hands a part over; books it as lost if its room is full.
    pub(crate) fn offer(&mut self, part: &Part) {
        match self {
            Lane::Inline(runner) => runner.export(part),
            Lane::Threaded { channel, rooms, cx, .. } => {
                let mut queue = channel.lock();
                let room = part.kind as usize;
                let refused = if queue.closing || queue.orphaned {
                    Some(DropReason::Closed)
                } else if queue.used[room] + part.weight() > rooms.capacity(part.kind) {
                    Some(DropReason::SinkQueueFull)
                } else {
                    None
                };
                match refused {
                    Some(reason) => {
                        drop(queue);
                        Runner::refuse(cx, part, reason);
                    }
                    None => {
                        let seq = queue.next_seq;
                        queue.next_seq += 1;
                        queue.used[room] += part.weight();
                        queue.rooms[room].push_back((seq, part.clone()));
                        drop(queue);
                        channel.ready.notify_one();
                    }
                }
            }
        }
    }

    /// Asks the sink to flush (or shut down) once what was queued before is exported; the
    /// ticket completes when it has.
    pub(crate) fn flush(&mut self, ticket: &Arc<FlushTicket>, shutdown: bool) {
        ticket.expect(1);
        match self {
            Lane::Inline(runner) => {
                runner.cx.signals().request(ticket.deadline);
                let ok = runner.flush(ticket.deadline, shutdown);
                runner.cx.signals().clear();
                ticket.complete(ok);
            }
            Lane::Threaded { channel, cx, .. } => {
                let mut queue = channel.lock();
                if queue.closing || queue.barriers.len() >= MAX_BARRIERS {
                    drop(queue);
                    ticket.complete(false);
                    return;
                }
                let seq = queue.next_seq;
                queue.next_seq += 1;
                queue.closing |= shutdown;
                queue.barriers.push_back(Barrier { seq, ticket: ticket.clone(), shutdown });
                drop(queue);
                cx.signals().request(ticket.deadline);
                channel.ready.notify_one();
            }
        }
    }

    /// Whether the room for transactions is more than half full: the sink is not keeping up
    /// with traces.
    pub(crate) fn is_strained(&self) -> bool {
        match self {
            Lane::Inline(_) => false,
            Lane::Threaded { channel, rooms, .. } => {
                let room = Kind::Transactions as usize;
                channel.lock().used[room] * 2 > rooms.capacity(Kind::Transactions)
            }
        }
    }

    /// Tells an inline sink the deadline of the flush that follows the parts offered next: it
    /// exports them on the flushing thread, so it must keep that deadline already. (A lane
    /// thread learns it from the flush's barrier.)
    pub(crate) fn announce(&self, deadline: std::time::Instant) {
        if let Lane::Inline(runner) = self {
            runner.cx.signals().request(deadline);
        }
    }

    /// Joins the lane thread if it has finished; otherwise leaves it to finish on its own.
    pub(crate) fn join_if_finished(&mut self) {
        if let Lane::Threaded { thread, .. } = self {
            if thread.as_ref().is_some_and(JoinHandle::is_finished) {
                if let Some(handle) = thread.take() {
                    let _ = handle.join();
                }
            }
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Lane::Threaded { channel, .. } = self {
            channel.lock().orphaned = true;
            channel.ready.notify_one();
        }
    }
}

/// The lane thread's body.
fn run(runner: &mut Runner, channel: &Channel) {
    loop {
        let next = {
            let mut queue = channel.lock();
            loop {
                if let Some(next) = queue.next() {
                    break next;
                }
                queue = channel.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        match next {
            Next::Export(part) => runner.export(&part),
            Next::Barrier(barrier) => {
                let ok = runner.flush(barrier.ticket.deadline, barrier.shutdown);
                // The next barrier's deadline (if any) is the one a sink must keep now.
                let pending = channel.lock().barriers.iter().map(|b| b.ticket.deadline).min();
                runner.cx.signals().clear();
                if let Some(deadline) = pending {
                    runner.cx.signals().request(deadline);
                }
                barrier.ticket.complete(ok);
                if barrier.shutdown {
                    return;
                }
            }
            Next::Stop => return,
        }
    }
}
