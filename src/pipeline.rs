//! The state one pipeline shares between the layer (the writers) and the flusher (the reader).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::aggregate::cell::Cell;
use crate::aggregate::hash::{hash_str, hash_value_text, series_hash, tag_hash};
use crate::aggregate::registry::{Limits, Registry};
use crate::aggregate::series::{MetricDesc, SeriesEntry, SeriesTags};
use crate::aggregate::tag::Tag;
use crate::backpressure::Backpressure;
use crate::batch::session_counter::{MODE_TAG, SESSIONS_METRIC, STATUS_TAG};
use crate::batch::{ErrorEvent, FieldValue, SessionStatus, SessionUpdate, TraceSpan, Transaction};
use crate::config::Config;
use crate::fields::MetricKind;
use crate::stats::{Counters, DropReason};

/// The epoch value that tells writers the pipeline has shut down.
pub(crate) const CLOSED: u64 = u64::MAX;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The process-wide TSC clock (calibrated once).
pub(crate) fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Converts clock readings to wall-clock time: a reading and the wall time taken together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockBase {
    raw: u64,
    wall: SystemTime,
}

impl ClockBase {
    fn now() -> Self {
        ClockBase { raw: clock().raw(), wall: SystemTime::now() }
    }

    /// The wall time of a clock reading taken after this base.
    pub(crate) fn wall(&self, raw: u64) -> SystemTime {
        let elapsed = if raw > self.raw { clock().delta(self.raw, raw) } else { Duration::ZERO };
        self.wall.checked_add(elapsed).unwrap_or(self.wall)
    }
}

/// The process session (release health, application mode).
#[derive(Debug)]
pub(crate) struct ProcessSession {
    sid: u128,
    started: SystemTime,
    errors: AtomicU64,
    crashed: AtomicBool,
    init_sent: AtomicBool,
    release: String,
    environment: Option<String>,
}

impl ProcessSession {
    fn new(release: String, environment: Option<String>) -> Self {
        // A v4 UUID from the clock and the address space: unique enough for a session id.
        let seed = crate::aggregate::hash::mix(clock().raw() ^ (std::process::id() as u64) << 32);
        let random = (u128::from(seed) << 64) | u128::from(crate::aggregate::hash::mix(!seed));
        let sid = (random & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        ProcessSession {
            sid,
            started: SystemTime::now(),
            errors: AtomicU64::new(0),
            crashed: AtomicBool::new(false),
            init_sent: AtomicBool::new(false),
            release,
            environment,
        }
    }

    /// Marks the session crashed (a panic).
    pub(crate) fn crash(&self) {
        self.crashed.store(true, Ordering::Relaxed);
    }

    /// The update to send now: the first one is `init`; `ending` gives the final status.
    pub(crate) fn update(&self, ending: bool) -> SessionUpdate {
        let crashed = self.crashed.load(Ordering::Relaxed);
        let status = match (ending, crashed) {
            (_, true) => SessionStatus::Crashed,
            (true, false) => SessionStatus::Exited,
            (false, false) => SessionStatus::Ok,
        };
        SessionUpdate {
            sid: self.sid,
            init: !self.init_sent.swap(true, Ordering::Relaxed),
            started: self.started,
            timestamp: SystemTime::now(),
            status,
            errors: self.errors.load(Ordering::Relaxed),
            release: self.release.clone(),
            environment: self.environment.clone(),
        }
    }

    /// Whether the first update is still to be sent.
    pub(crate) fn needs_init(&self) -> bool {
        !self.init_sent.load(Ordering::Relaxed)
    }
}

// The `sessions` counter's series: the layer counts request sessions into them and the flusher
// the process session's end, so they are named here, below both.

/// Whether a session is the whole process or one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionMode {
    Application,
    Request,
}

impl SessionMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SessionMode::Application => "application",
            SessionMode::Request => "request",
        }
    }
}

/// The tags of the session counter with this mode and status, and their hash.
pub(crate) fn session_tags(mode: SessionMode, status: &str) -> (u64, SeriesTags) {
    let hash = tag_hash(hash_str(MODE_TAG), hash_value_text(mode.as_str().as_bytes()))
        .wrapping_add(tag_hash(hash_str(STATUS_TAG), hash_value_text(status.as_bytes())));
    (hash, SeriesTags::from_iter([Tag::new(MODE_TAG, mode.as_str()), Tag::new(STATUS_TAG, status)]))
}

/// The series of the session counter with this mode and status (outside the series limits).
pub(crate) fn session_entry(shared: &Shared, mode: SessionMode, status: &str) -> Arc<SeriesEntry> {
    let metric = sessions_metric(shared);
    let (tags_hash, tags) = session_tags(mode, status);
    Arc::new(SeriesEntry::new(series_hash(metric.hash, tags_hash), metric, tags, false, 0))
}

/// The session counter's metric (also held by the plans, for the hot path).
fn sessions_metric(shared: &Shared) -> Arc<MetricDesc> {
    shared.registry.metric(SESSIONS_METRIC, MetricKind::Counter, true, None)
}

/// State shared by every thread that records into one pipeline.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) counters: Counters,
    /// Converts span clock readings to wall time.
    pub(crate) clock_base: ClockBase,
    /// The process session, when release health is on.
    pub(crate) session: Option<ProcessSession>,
    /// How much root spans are downsampled while traces cannot keep up.
    pub(crate) backpressure: Backpressure,
    /// Approximate bytes of the transactions waiting for the flusher.
    transaction_bytes: AtomicUsize,
    /// Roll-up epoch: advanced by the flusher at every interval, [`CLOSED`] after shutdown.
    epoch: AtomicU64,
    new_cells: Sender<Arc<Cell>>,
    errors: Sender<ErrorEvent>,
    transactions: Sender<Transaction>,
}

/// The flusher's ends of the shared channels.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Cells created by threads since the last drain. Its length is bounded by the series limits:
    /// a cell exists only for an admitted (or overflow) series, and at most one per thread.
    pub(crate) new_cells: Receiver<Arc<Cell>>,
    pub(crate) errors: Receiver<ErrorEvent>,
    pub(crate) transactions: Receiver<Transaction>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> (Arc<Shared>, Inbox) {
        let (cells_tx, cells_rx) = crossbeam_channel::unbounded();
        let (errors_tx, errors_rx) = crossbeam_channel::bounded(config.error_queue.max(1));
        let transaction_queue = config.traces.as_ref().map_or(1, |t| t.queue.max(1));
        let (transactions_tx, transactions_rx) = crossbeam_channel::bounded(transaction_queue);
        let session = match (&config.release, config.process_session) {
            (Some(release), true) => {
                Some(ProcessSession::new(release.clone(), config.environment.clone()))
            }
            _ => None,
        };
        let registry = Registry::new(Limits {
            per_metric: config.max_series_per_metric,
            total: config.max_series,
        });
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config,
            registry,
            counters: Counters::default(),
            clock_base: ClockBase::now(),
            session,
            backpressure: Backpressure::default(),
            transaction_bytes: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            new_cells: cells_tx,
            errors: errors_tx,
            transactions: transactions_tx,
        };
        let inbox = Inbox { new_cells: cells_rx, errors: errors_rx, transactions: transactions_rx };
        (Arc::new(shared), inbox)
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
        if let Some(session) = &self.session {
            session.errors.fetch_add(1, Ordering::Relaxed);
        }
        match self.errors.try_send(event) {
            Ok(()) => Counters::bump(&self.counters.errors_captured, 1),
            Err(TrySendError::Full(_)) => self.counters.dropped(DropReason::QueueFull, 1),
            Err(TrySendError::Disconnected(_)) => self.counters.dropped(DropReason::Closed, 1),
        }
    }

    /// Queues a finished transaction for the flusher; counts it when the queue is full (in
    /// transactions, or in bytes: [`MAX_TRANSACTION_BYTES`]), and tells the backpressure
    /// monitor.
    pub(crate) fn submit_transaction(&self, transaction: Transaction) {
        let bytes = transaction_bytes(&transaction);
        let queued = self.transaction_bytes.fetch_add(bytes, Ordering::Relaxed);
        let result = if queued.saturating_add(bytes) > MAX_TRANSACTION_BYTES {
            Err(TrySendError::Full(transaction))
        } else {
            self.transactions.try_send(transaction)
        };
        if result.is_err() {
            self.transaction_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped(DropReason::TransactionQueueFull, 1);
                self.backpressure.strain();
            }
            Err(TrySendError::Disconnected(_)) => self.counters.dropped(DropReason::Closed, 1),
        }
    }

    /// Takes the transactions waiting for the flusher.
    pub(crate) fn take_transactions(&self, inbox: &Inbox) -> Vec<Transaction> {
        let taken: Vec<Transaction> = inbox.transactions.try_iter().collect();
        let bytes = taken.iter().map(transaction_bytes).sum();
        self.transaction_bytes.fetch_sub(bytes, Ordering::Relaxed);
        taken
    }
}

/// The most the queue of finished transactions holds, in approximate bytes, whatever its
/// capacity in transactions: a burst of large traces is bounded in memory too.
pub(crate) const MAX_TRANSACTION_BYTES: usize = 16 << 20;

/// What a transaction takes in memory, approximately: its spans, their names and fields.
fn transaction_bytes(transaction: &Transaction) -> usize {
    let span = |span: &TraceSpan| {
        std::mem::size_of::<TraceSpan>()
            + span.name.len()
            + span.op.len()
            + span.description.as_ref().map_or(0, String::len)
            + span.fields.len() * (std::mem::size_of::<(&str, FieldValue)>() + 16)
    };
    std::mem::size_of::<Transaction>()
        + span(&transaction.root)
        + transaction.spans.iter().map(span).sum::<usize>()
}

/// Every pipeline whose guard is alive: how code that holds only a span (outgoing trace
/// headers) reaches its pipeline's state. Kept here, below the layer and the flusher, so
/// neither has to import the other for it.
static LISTED: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// A pipeline's place among the live ones ([`listed`]). Its owner is the flusher's control,
/// which the guard holds: dropping it takes the pipeline off the list.
pub(crate) struct Listing {
    id: u64,
}

impl Listing {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        let mut listed = LISTED.lock().unwrap_or_else(PoisonError::into_inner);
        listed.retain(|s| s.strong_count() > 0);
        listed.push(Arc::downgrade(shared));
        Listing { id: shared.id }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        let mut listed = LISTED.lock().unwrap_or_else(PoisonError::into_inner);
        listed.retain(|s| s.upgrade().is_some_and(|s| s.id != self.id));
    }
}

/// The shared state of the live pipeline with this id.
pub(crate) fn listed(id: u64) -> Option<Arc<Shared>> {
    let listed = LISTED.lock().unwrap_or_else(PoisonError::into_inner);
    listed.iter().filter_map(Weak::upgrade).find(|s| s.id == id)
}
