//! Parts: a batch cut by kind of data, and the room each kind has in a lane.

use std::sync::Arc;

use crate::batch::Batch;
use crate::pipeline::Shared;
use crate::sink::Refused;

/// At most this many errors or transactions in one part: the lane looks at its other rooms
/// between parts, so a long run of one kind delays the others by one part at most.
pub(super) const PART_RECORDS: usize = 16;

/// The kinds of data, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sessions = 0,
    Errors = 1,
    Metrics = 2,
    Transactions = 3,
}

pub(crate) const KINDS: usize = 4;

/// One kind of data out of a batch, shared by every lane.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(super) kind: Kind,
    pub(super) batch: Arc<Batch>,
}

impl Part {
    /// Records the part holds (metric records, errors, transactions or session updates).
    pub(super) fn records(&self) -> usize {
        match self.kind {
            Kind::Sessions => self.batch.sessions.len(),
            Kind::Errors => self.batch.errors.len(),
            Kind::Metrics => self.batch.metrics.len(),
            Kind::Transactions => self.batch.transactions.len(),
        }
    }

    /// How much of its room the part takes: metrics count in batches, the rest in records.
    pub(super) fn weight(&self) -> usize {
        match self.kind {
            Kind::Metrics => 1,
            _ => self.records(),
        }
    }

    /// What refusing the part gives up.
    pub(super) fn refused(&self) -> Refused {
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

/// `items` in runs of at most [`PART_RECORDS`], in order; an empty list gives one empty run.
/// Each item is moved once, into a run of its own capacity: cutting the list with `split_off`
/// would copy the rest at every cut (quadratic in a large batch) and leave every run holding
/// the whole list's capacity.
pub(super) fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::with_capacity(items.len().div_ceil(PART_RECORDS).max(1));
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(PART_RECORDS).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
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

    pub(super) fn capacity(&self, kind: Kind) -> usize {
        match kind {
            Kind::Sessions => self.sessions,
            Kind::Errors => self.errors,
            Kind::Metrics => self.metrics,
            Kind::Transactions => self.transactions,
        }
    }
}
