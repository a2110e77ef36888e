//! The state one pipeline shares between the layer (the writers) and the flusher (the reader).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::aggregate::cell::Cell;
use crate::aggregate::registry::{Limits, Registry};
use crate::batch::ErrorEvent;
use crate::config::Config;
use crate::stats::{Counters, DropReason};

/// The epoch value that tells writers the pipeline has shut down.
pub(crate) const CLOSED: u64 = u64::MAX;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The process-wide TSC clock (calibrated once).
pub(crate) fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// State shared by every thread that records into one pipeline.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) counters: Counters,
    /// Roll-up epoch: advanced by the flusher at every interval, [`CLOSED`] after shutdown.
    epoch: AtomicU64,
    new_cells: Sender<Arc<Cell>>,
    errors: Sender<ErrorEvent>,
}

/// The flusher's ends of the shared channels.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Cells created by threads since the last drain. Its length is bounded by the series limits:
    /// a cell exists only for an admitted (or overflow) series, and at most one per thread.
    pub(crate) new_cells: Receiver<Arc<Cell>>,
    pub(crate) errors: Receiver<ErrorEvent>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> (Arc<Shared>, Inbox) {
        let (cells_tx, cells_rx) = crossbeam_channel::unbounded();
        let (errors_tx, errors_rx) = crossbeam_channel::bounded(config.error_queue.max(1));
        let registry = Registry::new(Limits {
            per_metric: config.max_series_per_metric,
            total: config.max_series,
        });
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config,
            registry,
            counters: Counters::default(),
            epoch: AtomicU64::new(0),
            new_cells: cells_tx,
            errors: errors_tx,
        };
        (Arc::new(shared), Inbox { new_cells: cells_rx, errors: errors_rx })
    }

    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Starts a new roll-up epoch; returns it.
    pub(crate) fn advance_epoch(&self) -> u64 {
        let _ = self
            .epoch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| (e != CLOSED).then_some(e + 1));
        self.epoch()
    }

    /// Tells writers to stop recording.
    pub(crate) fn close(&self) {
        self.epoch.store(CLOSED, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.epoch() == CLOSED
    }

    /// Hands a new cell to the flusher.
    pub(crate) fn announce(&self, cell: Arc<Cell>) {
        // Fails only when the flusher is gone, after shutdown: nothing will read the cell.
        let _ = self.new_cells.send(cell);
    }

    /// Queues a captured error for the flusher; counts it when the queue is full.
    pub(crate) fn submit_error(&self, event: ErrorEvent) {
        match self.errors.try_send(event) {
            Ok(()) => Counters::bump(&self.counters.errors_captured, 1),
            Err(TrySendError::Full(_)) => self.counters.dropped(DropReason::QueueFull, 1),
            Err(TrySendError::Disconnected(_)) => self.counters.dropped(DropReason::Closed, 1),
        }
    }
}
