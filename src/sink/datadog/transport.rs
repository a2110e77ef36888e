//! The sender: one `tally-datadog` thread behind a bounded queue.
//!
//! * [`Transport::send`] never blocks: when the queue is full the payload is dropped and its
//!   items counted (`queue_full`).
//! * Each payload is posted with `DD-API-KEY`, `Content-Type: application/json` and its
//!   `Content-Encoding`; answers are handled as [`super::retry`] describes. Retries wait with
//!   backoff on the sender thread, but never past a pending flush's deadline: a flush or
//!   shutdown wakes the thread, and requests are given at most the time left.
//! * A payload that still fails after its retries (or whose wait would pass the deadline, or
//!   that arrives while sending is paused) goes to the [retry buffer](super::buffer). Once one
//!   payload was parked, the following ones wait in the buffer too instead of each spending its
//!   own retries on an intake that is down; the buffer is tried again, oldest first, at the next
//!   export (before its payloads) and at every flush, stopping at the first payload that still
//!   cannot go.
//! * Sending pauses while the [circuit breaker](super::breaker) is open, and for a
//!   `Retry-After` longer than the longest backoff (10 s; at most 5 minutes).
//! * Before every attempt, items that aged out of the intake's window are dropped (`stale`).
//! * Flush waits until every payload queued before it was sent, dropped or parked, at most
//!   until its deadline, and reports the payloads still waiting. Shutdown does the same, then
//!   drops (and counts) what is still buffered; a stuck thread is never joined past the deadline.
//! * With a [spool](crate::sink::spool), payloads evicted from the retry buffer and those still
//!   buffered at shutdown are written to disk instead of dropped. Spooled payloads are older
//!   than buffered ones: they are tried first, when the buffer is (after a request succeeded,
//!   at the next export, at every flush), and when the thread starts. A spool file is deleted
//!   once its payload was accepted or finally refused; a payload read back that lost stale items
//!   or was split leaves the spool for the retry buffer, so that nothing is counted twice.

use crate::sink::tls::ExtraRoots;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::api_key::ApiKey;
use super::breaker::Breaker;
use super::buffer::{Evicted, RetryBuffer};
use super::losses::{Loss, Losses};
use super::payload::{Kind, Payload};
use super::retry::{self, Jitter, Verdict};
use crate::sink::spool::{self, Discard, Spool, SpoolOptions};

/// The least time left before a deadline worth starting a request in.
const MIN_REQUEST: Duration = Duration::from_millis(50);

/// Bytes of an answer's body read (for diagnostics, and to keep the connection reusable).
const MAX_ANSWER: u64 = 64 * 1024;

/// How the transport talks to Datadog.
#[derive(Debug, Clone)]
pub(crate) struct TransportOptions {
    pub(crate) base_url: String,
    pub(crate) api_key: ApiKey,
    pub(crate) connect_timeout: Duration,
    pub(crate) roots: ExtraRoots,
    pub(crate) timeout: Duration,
    pub(crate) queue: usize,
    pub(crate) max_retries: u32,
    pub(crate) retry_buffer_bytes: usize,
    pub(crate) spool: Option<SpoolOptions>,
    pub(crate) debug: bool,
}

/// Why a flush did not deliver everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushError {
    /// The deadline passed first.
    Timeout,
    /// The sender is idle, but this many payloads wait in the retry buffer or the spool (for a
    /// shutdown: were dropped).
    Pending(usize),
}

enum Task {
    Send(Payload),
    Flush(Sender<usize>),
    Shutdown(Sender<usize>),
}

/// The sender thread's handle.
pub(crate) struct Transport {
    queue: Sender<Task>,
    /// Asks for the retry buffer to be tried (a channel of its own: it never takes a
    /// payload's place in the queue).
    retries: Sender<()>,
    wake: Sender<()>,
    thread: Option<JoinHandle<()>>,
    losses: Losses,
    /// The deadline of a pending flush (nanoseconds after `epoch`), or `u64::MAX`.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("queued", &self.queue.len()).finish_non_exhaustive()
    }
}

impl Transport {
    /// Starts the sender thread.
    pub(crate) fn start(options: TransportOptions, losses: Losses) -> std::io::Result<Transport> {
        let (queue, inbox) = crossbeam_channel::bounded(options.queue.max(1));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let (retries, retry_requests) = crossbeam_channel::bounded(1);
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let mut worker = Worker {
            agent: agent(&options),
            buffer: RetryBuffer::new(options.retry_buffer_bytes),
            options,
            breaker: Breaker::default(),
            paused_until: None,
            parked: false,
            losses: losses.clone(),
            deadline: deadline.clone(),
            epoch,
            woken,
            jitter: Jitter::new(),
            reported: Vec::new(),
            spool: None,
        };
        let thread = std::thread::Builder::new().name("tally-datadog".into()).spawn(move || {
            crate::reentry::suppress_this_thread();
            // On this thread: opening the spool reads the disk.
            if let Some(options) = worker.options.spool.clone() {
                let book = book(worker.losses.clone());
                worker.spool =
                    Some(Spool::open(&options, spool::Owner::Datadog, book, worker.options.debug));
            }
            worker.run(&inbox, &retry_requests);
        })?;
        Ok(Transport { queue, retries, wake, thread: Some(thread), losses, deadline, epoch })
    }

    /// Queues a payload; when the queue is full, drops it and counts its items.
    pub(crate) fn send(&self, payload: Payload) {
        match self.queue.try_send(Task::Send(payload)) {
            Ok(()) => {}
            Err(TrySendError::Full(task) | TrySendError::Disconnected(task)) => {
                if let Task::Send(payload) = task {
                    payload.lose(Loss::QueueFull, &self.losses);
                }
            }
        }
    }

    /// Asks the sender to try its retry buffer again, before the payloads queued after this.
    pub(crate) fn retry(&self) {
        let _ = self.retries.try_send(());
    }

    fn barrier(&self, deadline: Instant, shutdown: bool) -> Result<(), FlushError> {
        let nanos = u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1);
        self.deadline.fetch_min(nanos, Ordering::Relaxed);
        // Cut a backoff short: the sender re-checks whether it still fits the deadline.
        let _ = self.wake.try_send(());
        let (ack, done) = crossbeam_channel::bounded(1);
        let task = if shutdown { Task::Shutdown(ack) } else { Task::Flush(ack) };
        let result = if self.queue.send_deadline(task, deadline).is_err() {
            Err(FlushError::Timeout)
        } else {
            let _ = self.wake.try_send(());
            match done.recv_deadline(deadline) {
                Ok(0) => Ok(()),
                Ok(pending) => Err(FlushError::Pending(pending)),
                Err(_) => Err(FlushError::Timeout),
            }
        };
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        result
    }

    /// Waits until everything queued before was sent, dropped or parked, or `deadline`.
    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        self.barrier(deadline, false)
    }

    /// Flushes, then stops the sender thread; joins it only if it finished in time.
    pub(crate) fn shutdown(&mut self, deadline: Instant) -> Result<(), FlushError> {
        let result = self.barrier(deadline, true);
        if let Some(thread) = self.thread.take() {
            if result != Err(FlushError::Timeout) || thread.is_finished() {
                let _ = thread.join();
            }
        }
        result
    }
}

fn agent(options: &TransportOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(options.connect_timeout))
        .tls_config(options.roots.tls_config())
        .timeout_global(Some(options.timeout))
        .user_agent(format!("tracing-tally/{}", env!("CARGO_PKG_VERSION")))
        // Answer a redirect with the redirect: a POST body is not replayed elsewhere.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .max_idle_connections(2)
        .build()
        .into()
}

/// Books what the spool deletes unsent.
fn book(losses: Losses) -> spool::Book {
    Box::new(move |discard, record| {
        let loss = match discard {
            Discard::Full => Loss::SpoolFull,
            Discard::Expired => Loss::SpoolExpired,
            Discard::Corrupt => Loss::SpoolCorrupt,
        };
        match record {
            Some(record) if discard != Discard::Corrupt => {
                losses.record_items(loss, record.items, &record.points);
            }
            _ => losses.record(Loss::SpoolCorrupt, 1),
        }
    })
}

/// What became of one payload.
enum Outcome {
    /// Delivered or given up (and counted).
    Done,
    /// Split after a 413: send both halves.
    Split(Payload, Payload),
    /// Not now: keep it for a later retry.
    Park(Payload),
}

/// The sender thread's state.
struct Worker {
    agent: ureq::Agent,
    options: TransportOptions,
    buffer: RetryBuffer,
    breaker: Breaker,
    /// Sending is paused until then (a long `Retry-After`).
    paused_until: Option<Instant>,
    /// A payload was parked since the buffer was last tried: new ones wait behind it.
    parked: bool,
    losses: Losses,
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    woken: Receiver<()>,
    jitter: Jitter,
    /// Statuses already logged (0 for transport errors) since the last accepted request.
    reported: Vec<u16>,
    /// Payloads kept on disk, older than those in `buffer`.
    spool: Option<Spool>,
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Task>, retries: &Receiver<()>) {
        // What a previous run left.
        if self.spooled() > 0 {
            self.drain();
        }
        loop {
            let task = crossbeam_channel::select! {
                recv(inbox) -> task => task,
                recv(retries) -> request => match request {
                    Ok(()) => {
                        self.drain();
                        continue;
                    }
                    // The handle is gone: no flush will come.
                    Err(_) => break,
                },
            };
            let Ok(task) = task else { break };
            // Older payloads first: a retry asked for before this task runs before it.
            if retries.try_recv().is_ok() {
                self.drain();
            }
            match task {
                Task::Send(payload) => self.submit(payload),
                Task::Flush(ack) => {
                    self.drain();
                    let _ = ack.send(self.buffer.len() + self.spooled());
                }
                Task::Shutdown(ack) => {
                    self.drain();
                    let left = self.buffer.len();
                    let mut lost = 0;
                    while let Some(payload) = self.buffer.pop_front() {
                        lost += usize::from(!self.spill(payload, Loss::Shutdown));
                    }
                    if left > 0 {
                        self.log(format_args!(
                            "{left} payloads still waiting for a retry at shutdown: {} spooled, \
                             {lost} dropped",
                            left - lost
                        ));
                    }
                    let _ = ack.send(lost);
                    return;
                }
            }
        }
        // The sink was dropped without a shutdown: what is left is spooled, or lost.
        let mut left: Vec<Payload> = std::iter::from_fn(|| self.buffer.pop_front()).collect();
        left.extend(inbox.try_iter().filter_map(|task| match task {
            Task::Send(payload) => Some(payload),
            _ => None,
        }));
        for payload in left {
            self.spill(payload, Loss::Shutdown);
        }
    }

    /// Payloads waiting in the spool.
    fn spooled(&self) -> usize {
        self.spool.as_ref().map_or(0, Spool::len)
    }

    /// Writes `payload` to the spool; without one, or when it cannot be written, counts it as
    /// lost to `loss`. Whether it was spooled.
    fn spill(&mut self, payload: Payload, loss: Loss) -> bool {
        if let Some(spool) = &mut self.spool {
            if spool.write(&payload.to_record()).is_ok() {
                return true;
            }
        }
        payload.lose(loss, &self.losses);
        false
    }

    /// Spools (or counts as `buffer_full`) what the retry buffer evicted.
    fn overflow(&mut self, evicted: Evicted) {
        for payload in evicted {
            self.spill(payload, Loss::BufferFull);
        }
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.options.debug {
            crate::debug::log(format_args!("datadog: {message}"));
        }
    }

    /// Whether sending is paused at `now` (circuit breaker, `Retry-After`).
    fn paused(&self, now: Instant) -> bool {
        self.breaker.is_open(now) || self.paused_until.is_some_and(|until| now < until)
    }

    /// A new payload: send it, or queue it behind the parked ones.
    fn submit(&mut self, payload: Payload) {
        if self.parked || self.paused(Instant::now()) {
            let evicted = self.buffer.push_back(payload);
            self.overflow(evicted);
            return;
        }
        let parked = self.deliver(payload);
        if parked.is_empty() && self.spooled() > 0 {
            // The intake is back: send what waits on disk.
            self.drain();
        }
        for parked in parked {
            let evicted = self.buffer.push_back(parked);
            self.overflow(evicted);
        }
    }

    /// Tries the spool, then the retry buffer, oldest first, until a payload still cannot go.
    fn drain(&mut self) {
        self.parked = false;
        if !self.drain_spool() {
            return;
        }
        while !self.buffer.is_empty() {
            if self.paused(Instant::now()) || self.request_timeout().is_none() {
                return;
            }
            let Some(payload) = self.buffer.pop_front() else { return };
            let parked = self.deliver(payload);
            if !parked.is_empty() {
                self.unpark(parked);
                return;
            }
        }
    }

    /// Puts payloads that still cannot go back at the front of the retry buffer, in order.
    fn unpark(&mut self, parked: Vec<Payload>) {
        for payload in parked.into_iter().rev() {
            let evicted = self.buffer.push_front(payload);
            self.overflow(evicted);
        }
    }

    /// Tries the spool, oldest first; `false` when a payload still cannot go.
    fn drain_spool(&mut self) -> bool {
        loop {
            if self.paused(Instant::now()) || self.request_timeout().is_none() {
                return self.spooled() == 0;
            }
            let Some(spool) = self.spool.as_mut() else { return true };
            let Some((ticket, record)) = spool.front() else { return true };
            let Some(payload) = Payload::from_record(record) else {
                spool.discard(&ticket);
                continue;
            };
            let items = payload.items();
            let parked = self.deliver(payload);
            match parked.as_slice() {
                [] => {
                    // Accepted, or refused and counted.
                    if let Some(spool) = self.spool.as_mut() {
                        spool.remove(&ticket);
                    }
                }
                // Unchanged: it stays on disk for the next try.
                [same] if same.items() == items => return false,
                _ => {
                    // Part of it was settled (stale items dropped, a half sent): the rest
                    // leaves the spool, so that the settled part is not counted again.
                    if let Some(spool) = self.spool.as_mut() {
                        spool.remove(&ticket);
                    }
                    self.unpark(parked);
                    return false;
                }
            }
        }
    }

    /// Sends a payload (and its halves after a 413); returns what must wait for a retry.
    fn deliver(&mut self, payload: Payload) -> Vec<Payload> {
        let mut work = vec![payload];
        let mut parked = Vec::new();
        while let Some(payload) = work.pop() {
            if !parked.is_empty() {
                parked.push(payload);
                continue;
            }
            match self.attempt(payload) {
                Outcome::Done => {}
                Outcome::Split(first, second) => {
                    work.push(second);
                    work.push(first);
                }
                Outcome::Park(payload) => {
                    self.parked = true;
                    parked.push(payload);
                }
            }
        }
        parked
    }

    /// Sends one payload, retrying what may be retried now.
    fn attempt(&mut self, mut payload: Payload) -> Outcome {
        let mut attempt = 0u32;
        loop {
            let window = payload.kind.window(SystemTime::now());
            payload = match payload.retain(&window, &self.losses) {
                Some(payload) => payload,
                None => return Outcome::Done,
            };
            let now = Instant::now();
            if self.paused(now) {
                return Outcome::Park(payload);
            }
            let Some(timeout) = self.request_timeout() else { return Outcome::Park(payload) };
            match self.post(&payload, timeout) {
                Verdict::Delivered => {
                    self.breaker.success();
                    self.reported.clear();
                    return Outcome::Done;
                }
                Verdict::Split => {
                    return match payload.split() {
                        Ok((first, second)) => Outcome::Split(first, second),
                        Err(single) => {
                            self.log(format_args!(
                                "a single {} is too large (413), dropped",
                                single.kind.name()
                            ));
                            single.lose(Loss::TooLarge, &self.losses);
                            Outcome::Done
                        }
                    };
                }
                Verdict::Unauthorized => {
                    payload.lose(Loss::Unauthorized, &self.losses);
                    if let Some(pause) = self.breaker.refused(Instant::now()) {
                        self.log(format_args!(
                            "the API key was refused repeatedly: sending paused for {}s",
                            pause.as_secs()
                        ));
                    }
                    return Outcome::Done;
                }
                Verdict::Drop(loss) => {
                    payload.lose(loss, &self.losses);
                    return Outcome::Done;
                }
                Verdict::Retry { after } => {
                    attempt += 1;
                    if attempt > self.options.max_retries {
                        return Outcome::Park(payload);
                    }
                    let wait = after.unwrap_or_else(|| retry::backoff(attempt, self.jitter.next()));
                    if wait > retry::MAX_BACKOFF {
                        self.log(format_args!(
                            "asked to retry after {}s: sending paused",
                            wait.as_secs()
                        ));
                        self.paused_until = Some(Instant::now() + wait);
                        return Outcome::Park(payload);
                    }
                    if !self.sleep(wait) {
                        return Outcome::Park(payload);
                    }
                }
            }
        }
    }

    /// The time a request may take now: the configured timeout, shortened by a pending
    /// flush's deadline; `None` when too little is left.
    fn request_timeout(&self) -> Option<Duration> {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline == u64::MAX {
            return Some(self.options.timeout);
        }
        let elapsed = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let left = Duration::from_nanos(deadline.saturating_sub(elapsed));
        (left >= MIN_REQUEST).then(|| left.min(self.options.timeout))
    }

    /// Waits `wait` before a retry; `false` when a pending flush's deadline does not leave time
    /// for the wait and a request after it.
    fn sleep(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            let deadline = self.deadline.load(Ordering::Relaxed);
            if deadline != u64::MAX {
                let needed = until.saturating_duration_since(self.epoch) + MIN_REQUEST;
                if u64::try_from(needed.as_nanos()).unwrap_or(u64::MAX) > deadline {
                    return false;
                }
            }
            match self.woken.recv_deadline(until) {
                // A flush arrived: check its deadline.
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn url(&self, kind: Kind) -> String {
        format!("{}{}", self.options.base_url, kind.path())
    }

    /// One request.
    fn post(&mut self, payload: &Payload, timeout: Duration) -> Verdict {
        let mut request = self
            .agent
            .post(&self.url(payload.kind))
            .header("DD-API-KEY", self.options.api_key.expose())
            .header("Content-Type", "application/json");
        if let Some(encoding) = payload.compression.header() {
            request = request.header("Content-Encoding", encoding);
        }
        let request = request.config().timeout_global(Some(timeout)).build();
        match request.send(payload.body.as_slice()) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                let answer = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER)
                    .read_to_vec()
                    .unwrap_or_default();
                let verdict = retry::classify_status(status, retry_after);
                self.report(payload, status, verdict, &answer);
                verdict
            }
            Err(error) => {
                let verdict = retry::classify_error(&error, payload.kind.idempotent());
                if self.first_report(0) {
                    self.log(format_args!("sending {} failed: {error}", payload.kind.name()));
                }
                verdict
            }
        }
    }

    /// Whether `status` was not reported since the last accepted request (and marks it).
    fn first_report(&mut self, status: u16) -> bool {
        if self.reported.contains(&status) {
            return false;
        }
        self.reported.push(status);
        true
    }

    /// Logs a refused payload (once per status until a request is accepted) and a partly
    /// refused one (2xx with errors).
    fn report(&mut self, payload: &Payload, status: u16, verdict: Verdict, answer: &[u8]) {
        if !self.options.debug {
            return;
        }
        let answer = String::from_utf8_lossy(answer.get(..512).unwrap_or(answer))
            .replace(self.options.api_key.expose(), "<redacted>");
        match verdict {
            Verdict::Delivered => {
                // `{"errors": []}` when all is well.
                let errors = serde_json::from_str::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| v.get("errors").and_then(|e| e.as_array()).map(Vec::len));
                if errors.is_some_and(|n| n > 0) {
                    self.log(format_args!(
                        "{} accepted with errors ({status}): {answer}",
                        payload.kind.name()
                    ));
                }
            }
            _ if !self.first_report(status) => {}
            Verdict::Split => {
                self.log(format_args!("{} too large (413), splitting", payload.kind.name()));
            }
            Verdict::Unauthorized => self.log(format_args!(
                "the API key was refused ({status}), {} dropped: {answer}",
                payload.kind.name()
            )),
            Verdict::Drop(_) => self
                .log(format_args!("{} refused ({status}), dropped: {answer}", payload.kind.name())),
            Verdict::Retry { .. } => self.log(format_args!(
                "{} not accepted ({status}), will retry: {answer}",
                payload.kind.name()
            )),
        }
    }
}

#[cfg(test)]
mod tests;
