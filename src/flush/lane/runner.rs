//! Calls into a sink, with accounting: errors and panics are booked, never propagated.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::part::{Kind, Part};
use crate::error::ExportError;
use crate::pipeline::Shared;
use crate::sink::{Sink, SinkContext};
use crate::stats::{Counters, DropReason};

/// Runs sink calls with accounting: errors and panics are counted, never propagated.
pub(crate) struct Runner {
    pub(super) sink: Box<dyn Sink>,
    pub(super) cx: SinkContext,
}

impl Runner {
    /// Asks the sink its name once, and makes its context.
    pub(super) fn new(sink: Box<dyn Sink>, shared: Arc<Shared>, inline: bool) -> Runner {
        let name = catch_unwind(AssertUnwindSafe(|| Box::<str>::from(sink.name())));
        let name = name.unwrap_or_else(|_| "(unnamed)".into());
        Runner { cx: SinkContext::new(&name, shared, inline), sink }
    }

    /// Gives the sink its context (on the thread that will run it).
    pub(super) fn start(&mut self) {
        let cx = self.cx.clone();
        if catch_unwind(AssertUnwindSafe(|| self.sink.start(cx))).is_err() {
            self.cx.lose(DropReason::SinkPanic, 0);
        }
    }

    pub(super) fn export(&mut self, part: &Part) {
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

    pub(super) fn flush(&mut self, deadline: Instant, shutdown: bool) -> bool {
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

    pub(super) fn report(&self, error: &ExportError) {
        self.cx.log(format_args!("failed: {error}"));
    }

    /// Books a part the lane could not take.
    pub(super) fn refuse(cx: &SinkContext, part: &Part, reason: DropReason) {
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
