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

/// How the transport talks to Sentry.
#[derive(Debug, Clone)]
pub(crate) struct TransportOptions {
    pub(crate) url: String,
    pub(crate) auth: String,
    pub(crate) user_agent: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) queue: usize,
    pub(crate) max_retries: u32,
    pub(crate) compress_min: usize,
    pub(crate) client_reports: bool,
    pub(crate) debug: bool,
}

/// What an item is, on the wire.
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
    pub(crate) body: ItemBody,
}

/// An envelope before serialization: `sent_at` is added when it is sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) header: Map<String, Value>,
    pub(crate) items: Vec<Item>,
}

impl Outgoing {
    fn record(&self, reports: &ClientReports, reason: DiscardReason) {
        for item in &self.items {
            record_item(reports, reason, item);
        }
    }
}

fn record_item(reports: &ClientReports, reason: DiscardReason, item: &Item) {
    reports.record(reason, item.category, item.quantity);
    if let Some((category, quantity)) = item.also {
        reports.record(reason, category, quantity);
    }
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
    reports: Arc<ClientReports>,
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
        reports: Arc<ClientReports>,
    ) -> std::io::Result<Transport> {
        let (queue, inbox) = crossbeam_channel::bounded(options.queue.max(1));
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let mut worker = Worker {
            agent: agent(&options),
            options,
            limits: RateLimits::new(),
            reports: reports.clone(),
            deadline: deadline.clone(),
            epoch,
            jitter: super::time::Ids::new(),
        };
        let thread = std::thread::Builder::new().name("tally-sentry".into()).spawn(move || {
            crate::layer::local::suppress_this_thread();
            worker.run(&inbox);
        })?;
        Ok(Transport { queue, thread: Some(thread), reports, deadline, epoch })
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
                out.record(&self.reports, DiscardReason::QueueOverflow);
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
        .timeout_global(Some(options.timeout))
        .user_agent(options.user_agent.as_str())
        .max_idle_connections(2)
        .build()
        .into()
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
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    jitter: super::time::Ids,
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Task>) {
        for task in inbox {
            match task {
                Task::Send(outgoing) => self.deliver(outgoing),
                Task::Flush(ack) => {
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

    /// Sends an envelope, retrying what can be retried.
    fn deliver(&mut self, mut outgoing: Outgoing) {
        let mut attempt = 0u32;
        loop {
            // Drop what the server asked us not to send.
            let now = Instant::now();
            let (kept, limited): (Vec<Item>, Vec<Item>) = outgoing
                .items
                .into_iter()
                .partition(|item| !self.limits.is_limited(item.category, now));
            for item in &limited {
                record_item(&self.reports, DiscardReason::RatelimitBackoff, item);
            }
            outgoing.items = kept;
            if outgoing.items.is_empty() {
                return;
            }
            match self.post(&outgoing) {
                Ok(()) => return,
                Err(Failure::Final(reason)) => {
                    if let Some(reason) = reason {
                        outgoing.record(&self.reports, reason);
                    }
                    return;
                }
                Err(Failure::Retryable(reason)) => {
                    attempt += 1;
                    let backoff = self.backoff(attempt);
                    if attempt > self.options.max_retries || !self.fits_deadline(backoff) {
                        outgoing.record(&self.reports, reason);
                        return;
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
        let item = Item { category: Category::Error, quantity: 1, also: None, body };
        Outgoing { header: Map::new(), items: vec![item] }
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
            timeout: Duration::from_secs(30),
            queue: 2,
            max_retries: 0,
            compress_min: usize::MAX,
            client_reports: false,
            debug: false,
        };
        let reports = Arc::new(ClientReports::new());
        let mut transport = Transport::start(options, reports.clone()).unwrap();
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
