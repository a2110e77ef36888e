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

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use super::ticket::FlushTicket;
use crate::batch::Batch;
use crate::error::ExportError;
use crate::pipeline::Shared;
use crate::sink::{Refused, Sink, SinkContext};
use crate::stats::{Counters, DropReason};

/// At most this many errors or transactions in one part: the lane looks at its other rooms
/// between parts, so a long run of one kind delays the others by one part at most.
const PART_RECORDS: usize = 16;

/// Flushes waiting at one lane at most; more fail at once (a lane that far behind is stuck).
const MAX_BARRIERS: usize = 16;

/// The kinds of data, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sessions = 0,
    Errors = 1,
    Metrics = 2,
    Transactions = 3,
}

const KINDS: usize = 4;

/// One kind of data out of a batch, shared by every lane.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    kind: Kind,
    batch: Arc<Batch>,
}

impl Part {
    /// Records the part holds (metric records, errors, transactions or session updates).
    fn records(&self) -> usize {
        match self.kind {
            Kind::Sessions => self.batch.sessions.len(),
            Kind::Errors => self.batch.errors.len(),
            Kind::Metrics => self.batch.metrics.len(),
            Kind::Transactions => self.batch.transactions.len(),
        }
    }

    /// How much of its room the part takes: metrics count in batches, the rest in records.
    fn weight(&self) -> usize {
        match self.kind {
            Kind::Metrics => 1,
            _ => self.records(),
        }
    }

    /// What refusing the part gives up.
    fn refused(&self) -> Refused {
        let records = self.records() as u64;
        let mut refused = Refused::default();
        match self.kind {
            Kind::Sessions => refused.sessions = records,
            Kind::Errors => refused.errors = records,
            Kind::Metrics => refused.metrics = records,
            Kind::Transactions => {
                refused.transactions = records;
                refused.spans =
                    self.batch.transactions.iter().map(|tx| tx.spans.len() as u64 + 1).sum();
            }
        }
        refused
    }
}

/// Splits a batch into parts of one kind each (errors and transactions in parts of at most
/// [`PART_RECORDS`]). Every part carries the batch's global tags.
pub(crate) fn split(batch: Batch) -> Vec<Part> {
    let Batch { metrics, errors, transactions, sessions, global_tags } = batch;
    let mut parts = Vec::new();
    let mut push = |kind, batch: Batch| {
        if !batch.is_empty() {
            parts.push(Part { kind, batch: Arc::new(batch) });
        }
    };
    let empty = || Batch { global_tags: global_tags.clone(), ..Batch::default() };
    push(Kind::Sessions, Batch { sessions, ..empty() });
    for chunk in chunks(errors) {
        push(Kind::Errors, Batch { errors: chunk, ..empty() });
    }
    push(Kind::Metrics, Batch { metrics, ..empty() });
    for chunk in chunks(transactions) {
        push(Kind::Transactions, Batch { transactions: chunk, ..empty() });
    }
    parts
}

/// `items` in runs of at most [`PART_RECORDS`], in order, without copying them.
fn chunks<T>(mut items: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::with_capacity(items.len().div_ceil(PART_RECORDS));
    while items.len() > PART_RECORDS {
        let rest = items.split_off(PART_RECORDS);
        chunks.push(std::mem::replace(&mut items, rest));
    }
    chunks.push(items);
    chunks
}

/// The bounds of a lane's rooms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rooms {
    /// Session updates.
    pub(crate) sessions: usize,
    /// Captured errors.
    pub(crate) errors: usize,
    /// Batches of metric records.
    pub(crate) metrics: usize,
    /// Transactions.
    pub(crate) transactions: usize,
}

impl Rooms {
    /// The rooms a pipeline's configuration gives each lane.
    pub(crate) fn of(shared: &Shared) -> Rooms {
        let config = &shared.config;
        Rooms {
            // A process session sends two updates; request sessions travel as metrics.
            sessions: 64,
            errors: config.error_queue.max(1),
            metrics: config.sink_queue.max(1),
            transactions: config.traces.as_ref().map_or(1, |t| t.queue.max(1)),
        }
    }

    fn capacity(&self, kind: Kind) -> usize {
        match kind {
            Kind::Sessions => self.sessions,
            Kind::Errors => self.errors,
            Kind::Metrics => self.metrics,
            Kind::Transactions => self.transactions,
        }
    }
}

/// Runs sink calls with accounting: errors and panics are counted, never propagated.
pub(crate) struct Runner {
    sink: Box<dyn Sink>,
    cx: SinkContext,
}

impl Runner {
    /// Asks the sink its name once, and makes its context.
    fn new(sink: Box<dyn Sink>, shared: Arc<Shared>) -> Runner {
        let name = catch_unwind(AssertUnwindSafe(|| Box::<str>::from(sink.name())));
        let name = name.unwrap_or_else(|_| "(unnamed)".into());
        Runner { cx: SinkContext::new(&name, shared), sink }
    }

    /// Gives the sink its context (on the thread that will run it).
    fn start(&mut self) {
        let cx = self.cx.clone();
        if catch_unwind(AssertUnwindSafe(|| self.sink.start(cx))).is_err() {
            self.cx.lose(DropReason::SinkPanic, 0);
        }
    }

    fn export(&mut self, part: &Part) {
        let batch = &part.batch;
        let lost = match catch_unwind(AssertUnwindSafe(|| self.sink.export(batch))) {
            Ok(Ok(())) => return,
            Ok(Err(error)) => {
                Counters::bump(&self.cx.shared().counters.export_failures, 1);
                self.report(&error);
                DropReason::SinkError
            }
            Err(_) => DropReason::SinkPanic,
        };
        self.cx.lose(lost, (part.records() - batch.metrics.len()) as u64);
        self.cx.lose_records(lost, &batch.metrics);
    }

    fn flush(&mut self, deadline: Instant, shutdown: bool) -> bool {
        let result = catch_unwind(AssertUnwindSafe(|| {
            if shutdown {
                self.sink.shutdown(deadline)
            } else {
                self.sink.flush(deadline)
            }
        }));
        match result {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                self.report(&error);
                false
            }
            Err(_) => {
                self.cx.lose(DropReason::SinkPanic, 0);
                false
            }
        }
    }

    fn report(&self, error: &ExportError) {
        self.cx.log(format_args!("failed: {error}"));
    }

    /// Books a part the lane could not take.
    fn refuse(cx: &SinkContext, part: &Part, reason: DropReason) {
        cx.lose(reason, (part.records() - part.batch.metrics.len()) as u64);
        cx.lose_records(reason, &part.batch.metrics);
        if reason == DropReason::SinkQueueFull {
            cx.signals().refused.add(part.refused());
            if part.kind == Kind::Transactions {
                cx.report_backpressure();
            }
        }
    }
}

/// A flush waiting for what was queued before it.
struct Barrier {
    seq: u64,
    ticket: Arc<FlushTicket>,
    shutdown: bool,
}

/// What the lane thread does next.
enum Next {
    Export(Part),
    Barrier(Barrier),
    Stop,
}

/// The queue between the flusher and a lane thread.
struct Queue {
    rooms: [VecDeque<(u64, Part)>; KINDS],
    /// Room used per kind (see [`Part::weight`]).
    used: [usize; KINDS],
    barriers: VecDeque<Barrier>,
    next_seq: u64,
    /// A shutdown was queued: nothing more is taken.
    closing: bool,
    /// The handle is gone without a shutdown: finish what is queued, then stop.
    orphaned: bool,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            rooms: Default::default(),
            used: [0; KINDS],
            barriers: VecDeque::new(),
            next_seq: 0,
            closing: false,
            orphaned: false,
        }
    }

    fn next(&mut self) -> Option<Next> {
        // The most urgent part queued before the first barrier, or before none.
        let limit = self.barriers.front().map_or(u64::MAX, |b| b.seq);
        let room = self.rooms.iter().position(|room| room.front().is_some_and(|(s, _)| *s < limit));
        if let Some(room) = room {
            let (_, part) = self.rooms[room].pop_front()?;
            self.used[room] = self.used[room].saturating_sub(part.weight());
            return Some(Next::Export(part));
        }
        if let Some(barrier) = self.barriers.pop_front() {
            return Some(Next::Barrier(barrier));
        }
        self.orphaned.then_some(Next::Stop)
    }
}

/// What the flusher and a lane thread share.
pub(crate) struct Channel {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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
        let mut runner = Runner::new(sink, shared);
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
        let mut runner = Runner::new(sink, shared);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_item_in_order_in_runs_of_at_most_part_records() {
        let runs = chunks((0..40).collect::<Vec<u32>>());
        let sizes: Vec<usize> = runs.iter().map(Vec::len).collect();
        assert_eq!(sizes, [16, 16, 8]);
        assert_eq!(runs.concat(), (0..40).collect::<Vec<u32>>());
        assert_eq!(chunks(Vec::<u32>::new()), vec![Vec::<u32>::new()]);
    }

    fn part(kind: Kind) -> Part {
        Part { kind, batch: Arc::new(Batch::default()) }
    }

    fn push(queue: &mut Queue, kind: Kind) {
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.rooms[kind as usize].push_back((seq, part(kind)));
    }

    fn kind_of(next: Option<Next>) -> Option<Kind> {
        match next {
            Some(Next::Export(part)) => Some(part.kind),
            _ => None,
        }
    }

    #[test]
    fn the_most_urgent_kind_goes_first_and_a_barrier_waits_for_what_came_before_it() {
        let mut queue = Queue::new();
        push(&mut queue, Kind::Transactions);
        push(&mut queue, Kind::Metrics);
        let (ticket, _) = FlushTicket::new(Instant::now());
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.barriers.push_back(Barrier { seq, ticket: Arc::new(ticket), shutdown: false });
        push(&mut queue, Kind::Sessions);
        // Before the barrier: metrics before transactions; the session queued after the barrier
        // waits for it, urgent as it is.
        assert_eq!(kind_of(queue.next()), Some(Kind::Metrics));
        assert_eq!(kind_of(queue.next()), Some(Kind::Transactions));
        assert!(matches!(queue.next(), Some(Next::Barrier(_))));
        assert_eq!(kind_of(queue.next()), Some(Kind::Sessions));
        assert!(queue.next().is_none());
        queue.orphaned = true;
        assert!(matches!(queue.next(), Some(Next::Stop)));
    }
}
