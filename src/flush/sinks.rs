//! Sink handles: each sink behind a bounded queue on its own thread, or inline in manual mode.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use super::ticket::FlushTicket;
use crate::batch::Batch;
use crate::error::ExportError;
use crate::pipeline::Shared;
use crate::sink::Sink;
use crate::stats::{Counters, DropReason};

pub(crate) enum Message {
    Export(Arc<Batch>),
    Flush(Arc<FlushTicket>),
    Shutdown(Arc<FlushTicket>),
}

/// Runs sink calls with accounting: errors and panics are counted, never propagated.
pub(crate) struct Runner {
    sink: Box<dyn Sink>,
    /// The sink's name, asked once.
    name: Box<str>,
    shared: Arc<Shared>,
}

impl Runner {
    fn new(sink: Box<dyn Sink>, shared: Arc<Shared>) -> Runner {
        let name = catch_unwind(AssertUnwindSafe(|| Box::<str>::from(sink.name())));
        Runner { name: name.unwrap_or_else(|_| "(unnamed)".into()), sink, shared }
    }

    fn export(&mut self, batch: &Batch) {
        let records = (batch.metrics().len() + batch.errors().len()) as u64;
        let lost = match catch_unwind(AssertUnwindSafe(|| self.sink.export(batch))) {
            Ok(Ok(())) => return,
            Ok(Err(error)) => {
                Counters::bump(&self.shared.counters.export_failures, 1);
                self.report(&error);
                DropReason::SinkError
            }
            Err(_) => DropReason::SinkPanic,
        };
        self.shared.counters.dropped(lost, records);
        self.shared.counters.metric_losses.lose_records(&self.name, batch.metrics());
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
                self.shared.counters.dropped(DropReason::SinkPanic, 0);
                false
            }
        }
    }

    fn report(&self, error: &ExportError) {
        if self.shared.config.debug {
            crate::debug::log(format_args!("sink {} failed: {error}", self.name));
        }
    }
}

/// A sink as the flusher sees it.
pub(crate) enum SinkHandle {
    Threaded { name: Box<str>, queue: Sender<Message>, thread: Option<JoinHandle<()>> },
    Inline(Runner),
}

impl SinkHandle {
    /// Starts a worker thread for `sink` with a queue of `capacity` batches.
    pub(crate) fn spawn(
        sink: Box<dyn Sink>,
        shared: Arc<Shared>,
        capacity: usize,
    ) -> std::io::Result<SinkHandle> {
        let (queue, inbox) = crossbeam_channel::bounded::<Message>(capacity.max(1));
        let mut runner = Runner::new(sink, shared);
        let name = runner.name.clone();
        let thread =
            std::thread::Builder::new().name(format!("tally-sink-{name}")).spawn(move || {
                // Nothing this thread does may feed events back into the layer.
                crate::reentry::suppress_this_thread();
                for message in inbox {
                    match message {
                        Message::Export(batch) => runner.export(&batch),
                        Message::Flush(ticket) => {
                            let ok = runner.flush(ticket.deadline, false);
                            ticket.complete(ok);
                        }
                        Message::Shutdown(ticket) => {
                            let ok = runner.flush(ticket.deadline, true);
                            ticket.complete(ok);
                            return;
                        }
                    }
                }
            })?;
        Ok(SinkHandle::Threaded { name, queue, thread: Some(thread) })
    }

    /// Runs `sink` on the flushing thread (manual mode).
    pub(crate) fn inline(sink: Box<dyn Sink>, shared: Arc<Shared>) -> SinkHandle {
        SinkHandle::Inline(Runner::new(sink, shared))
    }

    /// Hands a batch over; counts its records as dropped if the queue is full.
    pub(crate) fn export(&mut self, batch: &Arc<Batch>, shared: &Shared) {
        match self {
            SinkHandle::Inline(runner) => runner.export(batch),
            SinkHandle::Threaded { name, queue, .. } => {
                if let Err(error) = queue.try_send(Message::Export(batch.clone())) {
                    let records = (batch.metrics().len() + batch.errors().len()) as u64;
                    let reason = match error {
                        TrySendError::Full(_) => DropReason::SinkQueueFull,
                        TrySendError::Disconnected(_) => DropReason::Closed,
                    };
                    shared.counters.dropped(reason, records);
                    shared.counters.metric_losses.lose_records(name, batch.metrics());
                }
            }
        }
    }

    /// Asks the sink to flush; the ticket completes when it has (or fails at once if the sink's
    /// queue is full).
    pub(crate) fn flush(&mut self, ticket: &Arc<FlushTicket>, shutdown: bool) {
        ticket.expect(1);
        match self {
            SinkHandle::Inline(runner) => {
                let ok = runner.flush(ticket.deadline, shutdown);
                ticket.complete(ok);
            }
            SinkHandle::Threaded { queue, .. } => {
                let message = if shutdown {
                    Message::Shutdown(ticket.clone())
                } else {
                    Message::Flush(ticket.clone())
                };
                let sent = if shutdown {
                    // A shutdown must get through: wait for room, but only until the deadline.
                    queue.send_deadline(message, ticket.deadline).is_ok()
                } else {
                    queue.try_send(message).is_ok()
                };
                if !sent {
                    ticket.complete(false);
                }
            }
        }
    }

    /// Joins the worker thread if it has finished; otherwise leaves it to finish on its own.
    pub(crate) fn join_if_finished(&mut self) {
        if let SinkHandle::Threaded { thread, .. } = self {
            if thread.as_ref().is_some_and(JoinHandle::is_finished) {
                if let Some(handle) = thread.take() {
                    let _ = handle.join();
                }
            }
        }
    }
}
