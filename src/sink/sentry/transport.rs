//! Sending envelopes: on the sink's lane thread, with rate limits, retries and client reports.
//!
//! There is no queue here: the sink's lane is the queue (with its own room for each kind of
//! data), and envelopes are sent as the lane hands the sink its parts.
//!
//! * Before sending, items of a rate-limited category are dropped (`ratelimit_backoff`).
//!   `X-Sentry-Rate-Limits` is read from every response, `Retry-After` from a 429, and a bare
//!   429 limits everything for 60 s ([`super::ratelimit`]).
//! * A 429 is dropped without a client report (Relay counts it), a 413 or another 4xx is dropped
//!   as `send_error`, a 5xx or a connection failure is retried with exponential backoff and
//!   jitter while the attempts and a pending flush's deadline allow, then dropped as
//!   `send_error` / `network_error`. A timeout while waiting for the response is not retried:
//!   the server may have processed the envelope, and a retry would duplicate it. For the same
//!   reason a request in flight is not cut short by a flush's deadline: the flush reports
//!   failure, and the lane finishes the request on its own.
//! * Pending client reports ride along on every envelope; a flush sends the rest on their own.
//! * Bodies over `compress_min` bytes are gzipped.
//! * With a [spool](crate::sink::http::spool), an envelope that still fails with a connection failure
//!   or a 5xx after its retries is written to disk instead of dropped, as Sentry's mobile SDKs
//!   keep envelopes in their offline cache; a 429 and other refusals are not spooled. Spooled
//!   envelopes are sent, oldest first, after the next envelope is accepted, at every flush,
//!   and when the sink starts; an envelope read back is sent with its original items (minus
//!   rate-limited ones) and a new `sent_at`. What the spool deletes unsent is reported as
//!   `cache_overflow`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::client_report::{self, ClientReports, DiscardReason};
use super::envelope::EnvelopeWriter;
use super::item::{Accounts, Item, ItemBody, Outgoing};
use super::ratelimit::{Category, RateLimits};
use super::spooled::{from_record, to_record};
use super::time::rfc3339;
use crate::sink::http::spool::{self, Spool, SpoolOptions, Ticket};
use crate::sink::http::tls::ExtraRoots;
use crate::sink::http::{
    self, Backoff, HttpErrorKind, HttpRequest, HttpTransport, Jitter, SharedTransport,
    UreqTransport, MIN_REQUEST,
};
use crate::sink::SinkContext;

/// Sentry's backoff: 200 ms, 400 ms, 800 ms, ... (at most 5 s), each plus up to half of it as
/// jitter; that is, a nominal wait of 1.5 times those whose last third is random.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(300),
    max: Duration::from_millis(7500),
    spread: 1.0 / 3.0,
};

/// How the transport talks to Sentry.
pub(crate) struct TransportOptions {
    pub(crate) url: String,
    pub(crate) auth: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) roots: ExtraRoots,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) compress_min: usize,
    pub(crate) client_reports: bool,
    pub(crate) spool: Option<SpoolOptions>,
    /// A transport to use instead of the default ureq agent.
    pub(crate) http: Option<SharedTransport>,
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

/// The sender's state, owned by the sink and driven on its lane thread.
pub(crate) struct Transport {
    http: Box<dyn HttpTransport>,
    options: TransportOptions,
    limits: RateLimits,
    reports: Arc<ClientReports>,
    accounts: Accounts,
    /// The sink's context, once started: the pending flush's deadline and the pause.
    cx: Option<SinkContext>,
    jitter: Jitter,
    /// Envelopes kept on disk.
    spool: Option<Spool>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport; it sends nothing until asked, and books losses in `reports` only until
    /// [`start`](Self::start) gives it the pipeline.
    pub(crate) fn new(mut options: TransportOptions, reports: Arc<ClientReports>) -> Transport {
        Transport {
            http: match options.http.take() {
                Some(http) => Box::new(http),
                None => Box::new(UreqTransport::new(&options.roots, options.connect_timeout)),
            },
            options,
            limits: RateLimits::new(),
            accounts: Accounts::new(reports.clone(), None),
            reports,
            cx: None,
            jitter: Jitter::new(),
            spool: None,
        }
    }

    /// Takes the sink's context; opens the spool (this reads the disk, so it happens on the
    /// lane thread) and sends what a previous run left there.
    pub(crate) fn start(&mut self, cx: SinkContext) {
        self.accounts = Accounts::new(self.reports.clone(), Some(cx.clone()));
        if let Some(options) = self.options.spool.clone() {
            let ledger = self.accounts.clone();
            self.spool = Some(Spool::open(&options, spool::Owner::Sentry, ledger, cx.debug()));
        }
        self.cx = Some(cx);
        self.drain_spool();
    }

    /// Sends what waits in the spool, then the pending client reports.
    pub(crate) fn flush(&mut self) {
        self.drain_spool();
        self.send_reports();
    }

    /// Sends the pending client reports (the last chance before the sink stops).
    pub(crate) fn shutdown(&mut self) {
        self.send_reports();
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if let Some(cx) = &self.cx {
            cx.log(message);
        }
    }

    /// Sends a new envelope; spools it (or drops it) when it still fails after its retries,
    /// and sends what waits in the spool once an envelope was accepted.
    pub(crate) fn send(&mut self, outgoing: Outgoing) {
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
            if limited.iter().any(|item| item.category == Category::Transaction) {
                // Sentry's SDKs count a rate-limited transport as unhealthy: sample less.
                self.report_backpressure();
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
                    let backoff = BACKOFF.wait(attempt, self.jitter.next());
                    if attempt > self.options.max_retries
                        || !http::wait_for_retry(self.cx.as_ref(), backoff, || self.deadline())
                    {
                        return Sent::Failed(outgoing, reason);
                    }
                }
            }
        }
    }

    fn report_backpressure(&self) {
        if let Some(cx) = &self.cx {
            cx.report_backpressure();
        }
    }

    /// The time a request may take: the configured timeout; on the thread that flushes (manual
    /// mode) no more than the time left before the flush's deadline, since the caller waits.
    /// On the sink's own thread a request in flight is never cut short by a flush: its answer
    /// may come after the server took the envelope, and an envelope is never sent twice.
    fn request_timeout(&self) -> Duration {
        match (&self.cx, self.deadline()) {
            (Some(cx), Some(deadline)) if cx.is_inline() => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.options.timeout.min(left.max(MIN_REQUEST))
            }
            _ => self.options.timeout,
        }
    }

    /// The deadline of a pending flush, if one waits.
    fn deadline(&self) -> Option<Instant> {
        self.cx.as_ref().and_then(SinkContext::deadline)
    }

    /// Whether waiting `backoff`, then a request, still ends before a pending flush's deadline.
    fn fits_deadline(&self, backoff: Duration) -> bool {
        self.deadline().is_none_or(|deadline| {
            let needed = backoff.saturating_add(MIN_REQUEST);
            Instant::now().checked_add(needed).is_some_and(|end| end <= deadline)
        })
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
        let compressed =
            if body.len() >= self.options.compress_min { http::gzip(&body) } else { None };
        let mut headers = vec![
            ("Content-Type", "application/x-sentry-envelope"),
            ("X-Sentry-Auth", self.options.auth.as_str()),
        ];
        if compressed.is_some() {
            headers.push(("Content-Encoding", "gzip"));
        }
        let request = HttpRequest {
            method: "POST",
            url: &self.options.url,
            headers: &headers,
            body: compressed.as_deref().unwrap_or(&body),
            timeout: self.request_timeout(),
        };
        match self.http.send(request) {
            Ok(response) => {
                let status = response.status;
                self.limits.update(
                    Instant::now(),
                    status,
                    response.header("x-sentry-rate-limits"),
                    response.header("retry-after"),
                    SystemTime::now(),
                );
                match status {
                    200..=299 => Ok(()),
                    429 => {
                        self.report_backpressure();
                        Err(Failure::Final(None))
                    }
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
                match error.kind() {
                    // The server may have the envelope already: never sent twice.
                    HttpErrorKind::NoAnswer => {
                        Err(Failure::Final(Some(DiscardReason::NetworkError)))
                    }
                    HttpErrorKind::Invalid => Err(Failure::Final(Some(DiscardReason::SendError))),
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
