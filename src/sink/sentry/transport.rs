//! The HTTP transport: one sender thread, a bounded queue, rate limits, retries, client reports.
//!
//! * The queue holds at most `queue` envelopes; a full queue drops the newest and records
//!   `queue_overflow` for each of its items.
//! * Before sending, items of a rate-limited category are dropped (`ratelimit_backoff`).
//!   `X-Sentry-Rate-Limits` is read from every response, `Retry-After` from a 429, and a bare
//!   429 limits everything for 60 s ([`super::ratelimit`]).
//! * A 429 is dropped without a client report (Relay counts it), a 413 or another 4xx is dropped
//!   as `send_error`, a 5xx or a connection failure is retried with exponential backoff and
//!   jitter while the attempts and the pending flush's deadline allow, then dropped as
//!   `send_error` / `network_error`. A timeout while waiting for the response is not retried:
//!   the server may have processed the envelope, and a retry would duplicate it.
//! * Pending client reports ride along on every envelope; a flush sends the rest on their own.
//! * Bodies over `compress_min` bytes are gzipped.
//! * Flush and shutdown wait at most until their deadline; a stuck sender thread is left to
//!   finish on its own, never joined past the deadline.
//! * With a [spool](crate::sink::spool), an envelope that still fails with a connection failure
//!   or a 5xx after its retries is written to disk instead of dropped, as Sentry's mobile SDKs
//!   keep envelopes in their offline cache; a 429 and other refusals are not spooled. Spooled
//!   envelopes are sent, oldest first, after the next envelope is accepted, at every flush,
//!   and when the thread starts; an envelope read back is sent with its original items (minus
//!   rate-limited ones) and a new `sent_at`. What the spool deletes unsent is reported as
//!   `cache_overflow`.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{Map, Value};

use super::client_report::{self, ClientReports, DiscardReason};
use super::envelope::EnvelopeWriter;
use super::ratelimit::{Category, RateLimits};
use super::time::rfc3339;
use crate::pipeline::Shared;
use crate::sink::spool::{self, Discard, Record, Spool, SpoolOptions, Ticket};
use crate::sink::tls::ExtraRoots;
use crate::stats::{Carried, DropReason};

/// How the transport talks to Sentry.
#[derive(Debug, Clone)]
pub(crate) struct TransportOptions {
    pub(crate) url: String,
    pub(crate) auth: String,
    pub(crate) user_agent: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) roots: ExtraRoots,
    pub(crate) timeout: Duration,
    pub(crate) queue: usize,
    pub(crate) max_retries: u32,
    pub(crate) compress_min: usize,
    pub(crate) client_reports: bool,
    pub(crate) spool: Option<SpoolOptions>,
    pub(crate) debug: bool,
}

/// What an item is, on the wire. (Item and content types read back from the spool must be in
/// [`WIRE_NAMES`].)
#[derive(Debug)]
pub(crate) enum ItemBody {
    Plain {
        item_type: &'static str,
        payload: Vec<u8>,
    },
    Container {
        item_type: &'static str,
        content_type: &'static str,
        count: usize,
        payload: Vec<u8>,
    },
}

/// An item waiting to be sent, with what it counts for in rate limits and client reports.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) category: Category,
    pub(crate) quantity: u64,
    /// Further categories the item counts in when dropped (a transaction: its spans).
    pub(crate) also: Option<(Category, u64)>,
    /// The metric points the item stands for (`None`: not metrics, one record).
    pub(crate) carried: Option<Vec<Carried>>,
    pub(crate) body: ItemBody,
}

impl Item {
    /// An item of `quantity` in `category`, counting in no further category, not metrics.
    pub(crate) fn new(category: Category, quantity: u64, body: ItemBody) -> Item {
        Item { category, quantity, also: None, carried: None, body }
    }

    /// Pipeline records the item stands for.
    fn records(&self) -> u64 {
        self.carried.as_ref().map_or(1, |carried| carried.len() as u64)
    }
}

/// An envelope before serialization: `sent_at` is added when it is sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) header: Map<String, Value>,
    pub(crate) items: Vec<Item>,
}

/// Where the transport books what it gives up: Sentry's client reports, and the pipeline's
/// drop counters and per-metric ledger.
#[derive(Clone)]
pub(crate) struct Accounts {
    pub(crate) reports: Arc<ClientReports>,
    pipeline: Option<Arc<Shared>>,
}

impl Accounts {
    /// Books into `reports` and, when given, into `pipeline`'s statistics.
    pub(crate) fn new(reports: Arc<ClientReports>, pipeline: Option<Arc<Shared>>) -> Accounts {
        Accounts { reports, pipeline }
    }

    /// Books `item` as lost: reported to Sentry for `reason` when there is one (Relay counts
    /// what it refused with a 429 itself), counted in the pipeline's statistics either way.
    fn lose(&self, item: &Item, reason: Option<DiscardReason>) {
        let dropped = match reason {
            Some(DiscardReason::QueueOverflow) => DropReason::SinkQueueFull,
            _ => DropReason::SinkError,
        };
        self.book(item, reason, dropped);
    }

    /// Books `item` as lost: reported to Sentry for `reason`, counted as `dropped`.
    fn book(&self, item: &Item, reason: Option<DiscardReason>, dropped: DropReason) {
        if let Some(reason) = reason {
            self.reports.record(reason, item.category, item.quantity);
            if let Some((category, quantity)) = item.also {
                self.reports.record(reason, category, quantity);
            }
        }
        if let Some(shared) = &self.pipeline {
            shared.counters.dropped(dropped, item.records());
            if let Some(carried) = &item.carried {
                shared.counters.metric_losses.lose("sentry", carried);
            }
        }
    }

    fn lose_all(&self, outgoing: &Outgoing, reason: Option<DiscardReason>) {
        for item in &outgoing.items {
            self.lose(item, reason);
        }
    }

    /// Books what the spool deletes unsent.
    fn spool_book(self) -> spool::Book {
        Box::new(move |discard, record| {
            let dropped = match discard {
                Discard::Full => DropReason::SpoolFull,
                Discard::Expired => DropReason::SpoolExpired,
                Discard::Corrupt => DropReason::SpoolCorrupt,
            };
            let outgoing = record.filter(|_| discard != Discard::Corrupt).and_then(from_record);
            match outgoing {
                Some(outgoing) => {
                    for item in &outgoing.items {
                        self.book(item, Some(DiscardReason::CacheOverflow), dropped);
                    }
                }
                None => {
                    if let Some(shared) = &self.pipeline {
                        shared.counters.dropped(DropReason::SpoolCorrupt, 1);
                    }
                }
            }
        })
    }
}

// === spooling ===

/// Every item and content type the sink sends, for envelopes read back from the spool.
const WIRE_NAMES: [&str; 7] = [
    "event",
    "transaction",
    "session",
    "sessions",
    "statsd",
    "trace_metric",
    "application/vnd.sentry.items.trace-metric+json",
];

fn wire_name(name: &str) -> Option<&'static str> {
    WIRE_NAMES.into_iter().find(|known| *known == name)
}

/// An envelope as a spool record. The metadata holds the envelope header (JSON), then per item
/// its category, quantity, further category, range of metric points in the manifest, type and
/// payload length; the body holds the payloads back to back.
fn to_record(outgoing: &Outgoing) -> Record {
    let mut meta = Vec::new();
    let mut points = Vec::new();
    let mut body = Vec::new();
    let header = serde_json::to_vec(&outgoing.header).unwrap_or_else(|_| b"{}".to_vec());
    spool::put_bytes(&mut meta, &header);
    spool::put_u32(&mut meta, outgoing.items.len());
    for item in &outgoing.items {
        spool::put_bytes(&mut meta, item.category.as_str().as_bytes());
        meta.extend_from_slice(&item.quantity.to_le_bytes());
        match item.also {
            Some((category, quantity)) => {
                meta.push(1);
                spool::put_bytes(&mut meta, category.as_str().as_bytes());
                meta.extend_from_slice(&quantity.to_le_bytes());
            }
            None => meta.push(0),
        }
        match &item.carried {
            Some(carried) => {
                meta.push(1);
                spool::put_u32(&mut meta, points.len());
                spool::put_u32(&mut meta, carried.len());
                points.extend(carried.iter().cloned());
            }
            None => meta.push(0),
        }
        let payload = match &item.body {
            ItemBody::Plain { item_type, payload } => {
                meta.push(0);
                spool::put_bytes(&mut meta, item_type.as_bytes());
                payload
            }
            ItemBody::Container { item_type, content_type, count, payload } => {
                meta.push(1);
                spool::put_bytes(&mut meta, item_type.as_bytes());
                spool::put_bytes(&mut meta, content_type.as_bytes());
                spool::put_u32(&mut meta, *count);
                payload
            }
        };
        spool::put_u32(&mut meta, payload.len());
        body.extend_from_slice(payload);
    }
    let items = outgoing.items.iter().map(Item::records).sum();
    Record { kind: 0, compression: 0, items, meta, points, body }
}

/// The envelope a spool record holds; `None` when the record does not make sense.
fn from_record(record: &Record) -> Option<Outgoing> {
    if record.kind != 0 || record.compression != 0 {
        return None;
    }
    let mut meta = spool::Reader::new(&record.meta);
    let mut body = spool::Reader::new(&record.body);
    let header = match serde_json::from_slice::<Value>(meta.bytes()?).ok()? {
        Value::Object(header) => header,
        _ => return None,
    };
    let category = |meta: &mut spool::Reader<'_>| Category::from_name(meta.str()?);
    let count = meta.u32()?;
    let mut items = Vec::with_capacity(count.min(record.meta.len()));
    for _ in 0..count {
        let item_category = category(&mut meta)?;
        let quantity = meta.u64()?;
        let also = match meta.u8()? {
            0 => None,
            1 => Some((category(&mut meta)?, meta.u64()?)),
            _ => return None,
        };
        let carried = match meta.u8()? {
            0 => None,
            1 => {
                let start = meta.u32()?;
                let len = meta.u32()?;
                Some(record.points.get(start..start.checked_add(len)?)?.to_vec())
            }
            _ => return None,
        };
        let tag = meta.u8()?;
        let item_type = wire_name(meta.str()?)?;
        let container = match tag {
            0 => None,
            1 => Some((wire_name(meta.str()?)?, meta.u32()?)),
            _ => return None,
        };
        let payload = body.take(meta.u32()?)?.to_vec();
        let body = match container {
            None => ItemBody::Plain { item_type, payload },
            Some((content_type, count)) => {
                ItemBody::Container { item_type, content_type, count, payload }
            }
        };
        items.push(Item { category: item_category, quantity, also, carried, body });
    }
    if !meta.rest().is_empty() || !body.rest().is_empty() {
        return None;
    }
    Some(Outgoing { header, items })
}

enum Task {
    Send(Outgoing),
    Flush(Sender<()>),
    Shutdown(Sender<()>),
}

/// The sender thread's handle.
pub(crate) struct Transport {
    queue: Sender<Task>,
    thread: Option<JoinHandle<()>>,
    accounts: Accounts,
    /// The earliest deadline of a pending flush (nanoseconds after `epoch`), or `u64::MAX`.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// Starts the sender thread.
    pub(crate) fn start(
        options: TransportOptions,
        accounts: Accounts,
    ) -> std::io::Result<Transport> {
        let (queue, inbox) = crossbeam_channel::bounded(options.queue.max(1));
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let mut worker = Worker {
            agent: agent(&options),
            options,
            limits: RateLimits::new(),
            reports: accounts.reports.clone(),
            accounts: accounts.clone(),
            deadline: deadline.clone(),
            epoch,
            jitter: super::time::Ids::new(),
            spool: None,
        };
        let thread = std::thread::Builder::new().name("tally-sentry".into()).spawn(move || {
            crate::reentry::suppress_this_thread();
            // On this thread: opening the spool reads the disk.
            if let Some(options) = worker.options.spool.clone() {
                let book = worker.accounts.clone().spool_book();
                let debug = worker.options.debug;
                worker.spool = Some(Spool::open(&options, spool::Owner::Sentry, book, debug));
            }
            worker.run(&inbox);
        })?;
        Ok(Transport { queue, thread: Some(thread), accounts, deadline, epoch })
    }

    /// Whether the queue is full, so that an envelope sent now would be dropped: the sink then
    /// records the drop without encoding the envelope (when the server is slow or down,
    /// encoding what is dropped anyway was most of the sink's work).
    pub(crate) fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// Queues an envelope; when the queue is full, drops it and records `queue_overflow`.
    pub(crate) fn send(&self, outgoing: Outgoing) {
        match self.queue.try_send(Task::Send(outgoing)) {
            Ok(()) => {}
            Err(
                TrySendError::Full(Task::Send(out)) | TrySendError::Disconnected(Task::Send(out)),
            ) => {
                self.accounts.lose_all(&out, Some(DiscardReason::QueueOverflow));
            }
            Err(_) => {}
        }
    }

    fn barrier(&self, deadline: Instant, shutdown: bool) -> bool {
        let nanos = u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX);
        self.deadline.fetch_min(nanos, Ordering::Relaxed);
        let (ack, done) = crossbeam_channel::bounded(1);
        let task = if shutdown { Task::Shutdown(ack) } else { Task::Flush(ack) };
        let ok = self.queue.send_deadline(task, deadline).is_ok()
            && done.recv_deadline(deadline).is_ok();
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        ok
    }

    /// Waits until everything queued before has been sent (or dropped), or `deadline`.
    pub(crate) fn flush(&self, deadline: Instant) -> bool {
        self.barrier(deadline, false)
    }

    /// Flushes, then stops the sender thread; joins it only if it finished in time.
    pub(crate) fn shutdown(&mut self, deadline: Instant) -> bool {
        let ok = self.barrier(deadline, true);
        if let Some(thread) = self.thread.take() {
            if ok || thread.is_finished() {
                let _ = thread.join();
            }
        }
        ok
    }
}

fn agent(options: &TransportOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(options.connect_timeout))
        .tls_config(options.roots.tls_config())
        .timeout_global(Some(options.timeout))
        .user_agent(options.user_agent.as_str())
        .max_idle_connections(2)
        .build()
        .into()
}

/// What became of an envelope.
enum Sent {
    /// Accepted (2xx).
    Delivered,
    /// Refused, or dropped before sending: counted.
    Settled,
    /// Still failing after its retries (connection failures, 5xx): not counted yet.
    Failed(Outgoing, DiscardReason),
}

/// Why a send did not succeed.
enum Failure {
    /// Retry may help (5xx, connection failures).
    Retryable(DiscardReason),
    /// Final (4xx, or a failure after the request was sent).
    Final(Option<DiscardReason>),
}

/// The sender thread's state.
struct Worker {
    agent: ureq::Agent,
    options: TransportOptions,
    limits: RateLimits,
    reports: Arc<ClientReports>,
    accounts: Accounts,
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    jitter: super::time::Ids,
    /// Envelopes kept on disk.
    spool: Option<Spool>,
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Task>) {
        // What a previous run left.
        self.drain_spool();
        for task in inbox {
            match task {
                Task::Send(outgoing) => self.send(outgoing),
                Task::Flush(ack) => {
                    self.drain_spool();
                    self.send_reports();
                    let _ = ack.send(());
                }
                Task::Shutdown(ack) => {
                    self.send_reports();
                    let _ = ack.send(());
                    return;
                }
            }
        }
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.options.debug {
            crate::debug::log(format_args!("sentry: {message}"));
        }
    }

    /// Sends a new envelope; spools it (or drops it) when it still fails after its retries,
    /// and sends what waits in the spool once an envelope was accepted.
    fn send(&mut self, outgoing: Outgoing) {
        match self.deliver(outgoing) {
            Sent::Delivered => self.drain_spool(),
            Sent::Settled => {}
            Sent::Failed(outgoing, reason) => self.spill(&outgoing, reason),
        }
    }

    /// Writes `outgoing` to the spool; without one, or when it cannot be written, drops it for
    /// `reason`.
    fn spill(&mut self, outgoing: &Outgoing, reason: DiscardReason) {
        if let Some(spool) = &mut self.spool {
            if spool.write(&to_record(outgoing)).is_ok() {
                return;
            }
        }
        self.accounts.lose_all(outgoing, Some(reason));
    }

    /// Sends the spooled envelopes, oldest first, until one still fails or a pending flush's
    /// deadline is near.
    fn drain_spool(&mut self) {
        while self.fits_deadline(Duration::ZERO) {
            let Some(spool) = self.spool.as_mut() else { return };
            let Some((ticket, record)) = spool.front() else { return };
            let Some(outgoing) = from_record(&record) else {
                spool.discard(&ticket);
                continue;
            };
            let items = outgoing.items.len();
            match self.deliver(outgoing) {
                Sent::Delivered | Sent::Settled => self.unspool(&ticket),
                Sent::Failed(outgoing, reason) => {
                    if outgoing.items.len() != items {
                        // Rate-limited items were dropped (and counted): spool what is left.
                        self.unspool(&ticket);
                        self.spill(&outgoing, reason);
                    }
                    return;
                }
            }
        }
    }

    fn unspool(&mut self, ticket: &Ticket) {
        if let Some(spool) = self.spool.as_mut() {
            spool.remove(ticket);
        }
    }

    /// Sends an envelope, retrying what can be retried.
    fn deliver(&mut self, mut outgoing: Outgoing) -> Sent {
        let mut attempt = 0u32;
        loop {
            // Drop what the server asked us not to send.
            let now = Instant::now();
            let (kept, limited): (Vec<Item>, Vec<Item>) = outgoing
                .items
                .into_iter()
                .partition(|item| !self.limits.is_limited(item.category, now));
            for item in &limited {
                self.accounts.lose(item, Some(DiscardReason::RatelimitBackoff));
            }
            outgoing.items = kept;
            if outgoing.items.is_empty() {
                return Sent::Settled;
            }
            match self.post(&outgoing) {
                Ok(()) => return Sent::Delivered,
                Err(Failure::Final(reason)) => {
                    self.accounts.lose_all(&outgoing, reason);
                    return Sent::Settled;
                }
                Err(Failure::Retryable(reason)) => {
                    attempt += 1;
                    let backoff = self.backoff(attempt);
                    if attempt > self.options.max_retries || !self.fits_deadline(backoff) {
                        return Sent::Failed(outgoing, reason);
                    }
                    std::thread::sleep(backoff);
                }
            }
        }
    }

    /// 100 ms, 200 ms, 400 ms... (at most 5 s), each plus up to 50% jitter.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = Duration::from_millis(100)
            .saturating_mul(1 << attempt.min(6))
            .min(Duration::from_secs(5));
        let jitter = (self.jitter.next_u64() % 1000) as f64 / 2000.0;
        base.mul_f64(1.0 + jitter)
    }

    /// Whether waiting `backoff` (and a request) still ends before a pending flush's deadline.
    fn fits_deadline(&self, backoff: Duration) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline == u64::MAX {
            return true;
        }
        let after = self
            .epoch
            .elapsed()
            .saturating_add(backoff)
            .saturating_add(self.options.connect_timeout);
        u64::try_from(after.as_nanos()).unwrap_or(u64::MAX) < deadline
    }

    fn body(&self, outgoing: &Outgoing, report: Option<&[u8]>) -> Vec<u8> {
        let mut header = outgoing.header.clone();
        header.insert("sent_at".into(), rfc3339(SystemTime::now()).into());
        let mut writer = EnvelopeWriter::new(&Value::Object(header));
        for item in &outgoing.items {
            match &item.body {
                ItemBody::Plain { item_type, payload } => writer.item(item_type, payload),
                ItemBody::Container { item_type, content_type, count, payload } => {
                    writer.container(item_type, content_type, *count, payload);
                }
            }
        }
        if let Some(report) = report {
            writer.item("client_report", report);
        }
        writer.finish()
    }

    /// Pending client reports, encoded (entries over the size limit go back in the table).
    fn take_report(&self) -> Option<Vec<u8>> {
        if !self.options.client_reports
            || self.limits.is_limited(Category::Internal, Instant::now())
        {
            return None;
        }
        let entries = self.reports.take();
        if entries.is_empty() {
            return None;
        }
        let (payload, rest) = client_report::encode_partial(&entries, SystemTime::now());
        for (reason, category, quantity) in rest {
            self.reports.record(reason, category, quantity);
        }
        Some(payload)
    }

    fn send_reports(&mut self) {
        let Some(report) = self.take_report() else { return };
        let outgoing = Outgoing { header: Map::new(), items: Vec::new() };
        let body = self.body(&outgoing, Some(&report));
        // Not retried now; when the server could not be reached, the counts wait for the next
        // envelope. A report the server refused is not sent again.
        if let Err(Failure::Retryable(_)) = self.request(body) {
            requeue(&self.reports, &report);
        }
    }

    fn post(&mut self, outgoing: &Outgoing) -> Result<(), Failure> {
        let report = self.take_report();
        let body = self.body(outgoing, report.as_deref());
        let result = self.request(body);
        if result.is_err() {
            if let Some(report) = report {
                // Put the piggybacked report's counts back, so they are not lost with the envelope.
                requeue(&self.reports, &report);
            }
        }
        result
    }

    fn request(&mut self, body: Vec<u8>) -> Result<(), Failure> {
        let (body, gzip) =
            if body.len() >= self.options.compress_min { gzip(&body) } else { (body, false) };
        let mut request = self
            .agent
            .post(&self.options.url)
            .header("Content-Type", "application/x-sentry-envelope")
            .header("X-Sentry-Auth", &self.options.auth);
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        match request.send(&body[..]) {
            Ok(response) => {
                let status = response.status().as_u16();
                let header =
                    |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
                self.limits.update(
                    Instant::now(),
                    status,
                    header("x-sentry-rate-limits"),
                    header("retry-after"),
                    SystemTime::now(),
                );
                match status {
                    200..=299 => Ok(()),
                    429 => Err(Failure::Final(None)),
                    413 => {
                        self.log(format_args!("envelope too large (413), dropped"));
                        Err(Failure::Final(Some(DiscardReason::SendError)))
                    }
                    500..=599 => Err(Failure::Retryable(DiscardReason::SendError)),
                    _ => {
                        self.log(format_args!("server answered {status}, envelope dropped"));
                        Err(Failure::Final(Some(DiscardReason::SendError)))
                    }
                }
            }
            Err(error) => {
                self.log(format_args!("request failed: {error}"));
                match error {
                    // Waiting for (or reading) the answer timed out: the server may have the
                    // envelope already.
                    ureq::Error::Timeout(
                        ureq::Timeout::RecvResponse
                        | ureq::Timeout::RecvBody
                        | ureq::Timeout::Global,
                    ) => Err(Failure::Final(Some(DiscardReason::NetworkError))),
                    _ => Err(Failure::Retryable(DiscardReason::NetworkError)),
                }
            }
        }
    }
}

/// Records the entries of an encoded client report again.
fn requeue(reports: &ClientReports, report: &[u8]) {
    let Ok(Value::Object(report)) = serde_json::from_slice::<Value>(report) else { return };
    let Some(Value::Array(entries)) = report.get("discarded_events") else { return };
    for entry in entries {
        let reason = entry.get("reason").and_then(Value::as_str);
        let reason = DiscardReason::ALL.into_iter().find(|r| Some(r.as_str()) == reason);
        let category = entry.get("category").and_then(Value::as_str).and_then(Category::from_name);
        let quantity = entry.get("quantity").and_then(Value::as_u64);
        if let (Some(reason), Some(category), Some(quantity)) = (reason, category, quantity) {
            reports.record(reason, category, quantity);
        }
    }
}

/// Gzips `body`; on failure (it cannot fail writing to memory) sends it as is.
fn gzip(body: &[u8]) -> (Vec<u8>, bool) {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3),
        flate2::Compression::new(6),
    );
    match encoder.write_all(body).and_then(|()| encoder.finish()) {
        Ok(compressed) => (compressed, true),
        Err(_) => (body.to_vec(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Outgoing {
        let body = ItemBody::Plain { item_type: "event", payload: b"{}".to_vec() };
        Outgoing { header: Map::new(), items: vec![Item::new(Category::Error, 1, body)] }
    }

    #[test]
    fn a_queue_behind_a_server_that_never_answers_reads_full() {
        // Accepts connections (the kernel's backlog) and never answers: the sender waits on
        // its first envelope while the others queue.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = TransportOptions {
            url: format!("http://127.0.0.1:{port}/api/1/envelope/"),
            auth: String::new(),
            user_agent: "test".into(),
            connect_timeout: Duration::from_secs(5),
            roots: ExtraRoots::default(),
            timeout: Duration::from_secs(30),
            queue: 2,
            max_retries: 0,
            compress_min: usize::MAX,
            client_reports: false,
            spool: None,
            debug: false,
        };
        let reports = Arc::new(ClientReports::new());
        let accounts = Accounts::new(reports.clone(), None);
        let mut transport = Transport::start(options, accounts).unwrap();
        assert!(!transport.is_full());
        // One in flight (or still queued) and two queued: the third is dropped if the sender
        // has not taken the first yet. Either way the queue is full now.
        for _ in 0..3 {
            transport.send(envelope());
        }
        assert!(transport.is_full());
        let _ = transport.shutdown(Instant::now());
        drop(listener);
    }
}
