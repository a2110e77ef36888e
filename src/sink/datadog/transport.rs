//! The sender: moves payloads to the intake on the sink's lane thread. It has no thread or
//! queue of its own: the lane's queue is the only one, and its thread does the I/O.
//!
//! * [`Transport::send`] posts a payload at once with `DD-API-KEY`, `Content-Type:
//!   application/json` and its `Content-Encoding`; answers are handled as [`super::retry`]
//!   describes. Retries wait with backoff ([`SinkContext::pause`]), but never past a pending
//!   flush's deadline ([`SinkContext::deadline`], or the deadline of the flush being run): a
//!   flush or shutdown asked for cuts the wait short, and requests are given at most the time
//!   left, never less than
//!   [`MIN_REQUEST`](crate::sink::http::MIN_REQUEST) (less is not worth starting). Requests go
//!   through the sink's [`HttpTransport`] (a ureq agent unless `DatadogOptions::transport`
//!   gave another).
//! * A payload that still fails after its retries (or whose wait would pass the deadline, or
//!   that comes while sending is paused) goes to the [retry buffer](super::buffer). Once one
//!   payload was parked, the following ones wait in the buffer too instead of each spending its
//!   own retries on an intake that is down; the buffer is tried again, oldest first, by
//!   [`Transport::retry`] (the sink calls it before each export's payloads) and at every flush,
//!   stopping at the first payload that still cannot go.
//! * Sending pauses while the [circuit breaker](crate::sink::http::Breaker) is open, and for a
//!   `Retry-After` longer than the longest backoff (10 s; at most 5 minutes).
//! * Before every attempt, items that aged out of the intake's window are dropped (`stale`).
//! * [`Transport::flush`] tries the spool and the buffer until its deadline and reports the
//!   payloads still waiting. [`Transport::shutdown`] does the same, then spools or drops (and
//!   counts) what is still buffered. A request in flight when a flush is asked for keeps the
//!   timeout it started with: the lane's barrier gives up waiting at the deadline, and the lane
//!   is not joined while the request runs. (In manual mode the flushing thread exports before
//!   it asks for the flush, so those exports see no deadline.)
//! * With a [spool](crate::sink::http::spool), payloads evicted from the retry buffer and those still
//!   buffered at shutdown (or when the sink is dropped without one) are written to disk instead
//!   of dropped. Spooled payloads are older than buffered ones: they are tried first, when the
//!   buffer is (after a request succeeded, at the next export, at every flush). The spool is
//!   opened by [`Transport::start`], on the lane thread, since it reads the disk; what a
//!   previous process left is sent at the first export or flush. A spool file is deleted once
//!   its payload was accepted or finally refused; a payload read back that lost stale items or
//!   was split leaves the spool for the retry buffer, so that nothing is counted twice.
//!
//! The parts: `clock` keeps the deadlines of requests and waits on the lane; `deliver` holds
//! Datadog's rules for one payload (verdicts, 413 splits, stale items, the breaker,
//! diagnostics); `backlog` the retry buffer and the spool. Backoff, `Retry-After`, the breaker
//! and the transport itself are the shared HTTP stack's ([`crate::sink::http`]).

mod backlog;
mod clock;
mod deliver;

use std::time::{Duration, Instant};

use super::api_key::ApiKey;
use super::buffer::RetryBuffer;
use super::losses::Losses;
use super::payload::Payload;
use crate::sink::http::spool::{self, Spool, SpoolOptions};
use crate::sink::http::tls::ExtraRoots;
use crate::sink::http::{Backoff, Breaker, HttpTransport, Jitter, SharedTransport, UreqTransport};
use crate::sink::SinkContext;

use self::clock::Clock;

/// Datadog's backoff: 0.5 s, 1 s, 2 s, 4 s, ... (at most 10 s), each between half and all of
/// that ("equal jitter").
const BACKOFF: Backoff =
    Backoff { first: Duration::from_millis(500), max: Duration::from_secs(10), spread: 0.5 };

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How the transport talks to Datadog.
#[derive(Debug, Clone)]
pub(crate) struct TransportOptions {
    pub(crate) base_url: String,
    pub(crate) api_key: ApiKey,
    pub(crate) connect_timeout: Duration,
    pub(crate) roots: ExtraRoots,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_buffer_bytes: usize,
    pub(crate) spool: Option<SpoolOptions>,
    /// A transport to use instead of the default ureq agent.
    pub(crate) http: Option<SharedTransport>,
}

/// What a flush could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Payloads still waiting in the retry buffer or the spool (for a shutdown: dropped).
    pub(crate) payloads: usize,
    /// Whether the deadline cut the flush short (rather than the intake refusing, or sending
    /// being paused).
    pub(crate) out_of_time: bool,
}

/// The sender's state, owned by the sink.
pub(crate) struct Transport {
    http: Box<dyn HttpTransport>,
    options: TransportOptions,
    clock: Clock,
    buffer: RetryBuffer,
    /// Payloads kept on disk, older than those in `buffer` (opened by [`Transport::start`]).
    spool: Option<Spool>,
    breaker: Breaker,
    /// Sending is paused until then (a long `Retry-After`).
    paused_until: Option<Instant>,
    /// A payload was parked since the buffer was last tried: new ones wait behind it.
    parked: bool,
    losses: Losses,
    jitter: Jitter,
    /// Statuses already logged (0 for transport errors) since the last accepted request.
    reported: Vec<u16>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("buffered", &self.buffer.len())
            .field("spooled", &self.spooled())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A sender with nothing sent yet. It works without [`start`](Self::start) too, without
    /// a spool, diagnostics, or any deadline but its flushes' own.
    pub(crate) fn new(mut options: TransportOptions, losses: Losses) -> Transport {
        Transport {
            http: match options.http.take() {
                Some(http) => Box::new(http),
                None => Box::new(UreqTransport::new(&options.roots, options.connect_timeout)),
            },
            clock: Clock::new(options.timeout),
            buffer: RetryBuffer::new(options.retry_buffer_bytes),
            options,
            spool: None,
            breaker: Breaker::default(),
            paused_until: None,
            parked: false,
            losses,
            jitter: Jitter::new(),
            reported: Vec::new(),
        }
    }

    /// Takes the sink's context (deadlines, pauses, diagnostics) and opens the spool, if
    /// configured; on the lane thread, since that reads the disk.
    pub(crate) fn start(&mut self, cx: SinkContext) {
        if let (Some(options), None) = (&self.options.spool, &self.spool) {
            let ledger = self.losses.clone();
            self.spool = Some(Spool::open(options, spool::Owner::Datadog, ledger, cx.debug()));
        }
        self.clock.start(cx);
    }

    /// Sends a payload now, or parks it behind those that wait.
    pub(crate) fn send(&mut self, payload: Payload) {
        self.submit(payload);
    }

    /// Tries the spool and the retry buffer again, oldest first (before newer payloads).
    pub(crate) fn retry(&mut self) {
        self.drain();
    }

    /// Tries everything that waits, until `deadline`; reports what still waits.
    pub(crate) fn flush(&mut self, deadline: Instant) -> Result<(), Pending> {
        let out_of_time = self.drain_until(deadline);
        match self.buffer.len() + self.spooled() {
            0 => Ok(()),
            payloads => Err(Pending { payloads, out_of_time }),
        }
    }

    /// Flushes, then spools (or drops, counted) what is still buffered; reports what was
    /// dropped. The lane hands the sink nothing afterwards.
    pub(crate) fn shutdown(&mut self, deadline: Instant) -> Result<(), Pending> {
        let out_of_time = self.drain_until(deadline);
        let left = self.buffer.len();
        let lost = self.spill_all();
        if left > 0 {
            self.log(format_args!(
                "{left} payloads still waiting for a retry at shutdown: {} spooled, {lost} dropped",
                left - lost
            ));
        }
        match lost {
            0 => Ok(()),
            payloads => Err(Pending { payloads, out_of_time }),
        }
    }

    /// Tries everything that waits, until `deadline`; whether too little time was left at the
    /// end to try more.
    fn drain_until(&mut self, deadline: Instant) -> bool {
        self.clock.flushing = Some(deadline);
        self.drain();
        let out_of_time = self.clock.request_timeout().is_none();
        self.clock.flushing = None;
        out_of_time
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if let Some(cx) = self.clock.context() {
            cx.log(message);
        }
    }

    /// Whether diagnostics are on (worth preparing).
    fn debug(&self) -> bool {
        self.clock.context().is_some_and(SinkContext::debug)
    }

    /// Whether sending is paused at `now` (circuit breaker, `Retry-After`).
    fn paused(&self, now: Instant) -> bool {
        self.breaker.is_open(now) || self.paused_until.is_some_and(|until| now < until)
    }
}

impl Drop for Transport {
    /// A sink dropped without a shutdown (its lane was abandoned): what waits is spooled, or
    /// counted as lost, never silently gone.
    fn drop(&mut self) {
        self.spill_all();
    }
}

#[cfg(test)]
mod tests;
