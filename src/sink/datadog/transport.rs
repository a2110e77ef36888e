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

use crate::sink::tls::ExtraRoots;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::api_key::ApiKey;
use super::breaker::Breaker;
use super::buffer::RetryBuffer;
use super::losses::{Loss, Losses};
use super::payload::{Kind, Payload};
use super::retry::{self, Jitter, Verdict};

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
    pub(crate) debug: bool,
}

/// Why a flush did not deliver everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushError {
    /// The deadline passed first.
    Timeout,
    /// The sender is idle, but this many payloads wait in the retry buffer (for a shutdown:
    /// were dropped).
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
        };
        let thread = std::thread::Builder::new().name("tally-datadog".into()).spawn(move || {
            crate::layer::local::suppress_this_thread();
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
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Task>, retries: &Receiver<()>) {
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
                    let _ = ack.send(self.buffer.len());
                }
                Task::Shutdown(ack) => {
                    self.drain();
                    let left = self.buffer.len();
                    if left > 0 {
                        self.log(format_args!(
                            "{left} payloads still waiting for a retry at shutdown, dropped"
                        ));
                    }
                    self.buffer.clear(Loss::Shutdown, &self.losses);
                    let _ = ack.send(left);
                    return;
                }
            }
        }
        // The sink was dropped without a shutdown: what is left is lost.
        for task in inbox.try_iter() {
            if let Task::Send(payload) = task {
                payload.lose(Loss::Shutdown, &self.losses);
            }
        }
        self.buffer.clear(Loss::Shutdown, &self.losses);
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
            self.buffer.push_back(payload, &self.losses);
            return;
        }
        for parked in self.deliver(payload) {
            self.buffer.push_back(parked, &self.losses);
        }
    }

    /// Tries the retry buffer, oldest first, until a payload still cannot go.
    fn drain(&mut self) {
        self.parked = false;
        while !self.buffer.is_empty() {
            if self.paused(Instant::now()) || self.request_timeout().is_none() {
                return;
            }
            let Some(payload) = self.buffer.pop_front() else { return };
            let parked = self.deliver(payload);
            if !parked.is_empty() {
                for payload in parked.into_iter().rev() {
                    self.buffer.push_front(payload, &self.losses);
                }
                return;
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
