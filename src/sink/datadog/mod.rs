//! The Datadog sink: metrics as series and distribution points, errors as events, over
//! Datadog's HTTP API (no Agent needed).
//!
//! Configure it with [`DatadogOptions`]: an API key, and a site (`datadoghq.com` by default)
//! or a full URL.
//!
//! | what | endpoint | becomes |
//! |---|---|---|
//! | counter | `POST /api/v2/series` | a count (`type: 1`) of the interval's sum, with `interval` |
//! | gauge | `POST /api/v2/series` | a gauge (`type: 3`) of the last value |
//! | set | `POST /api/v2/series` | a gauge of the interval's unique count |
//! | distribution | `POST /api/v1/distribution_points` | the values, rebuilt from the sketch (at most [`DatadogOptions::max_distribution_values`]; see [`DistributionMode`]) |
//! | distribution, aggregates on | `POST /api/v2/series` | `<name>.max`, `.median`, `.avg`, `.count`, `.95percentile` (see [`HistogramAggregate`]) |
//! | captured error | `POST /api/v1/events` | an event with `alert_type: error`, grouped by callsite or `fingerprint` |
//!
//! Every series and event carries the pipeline's global tags merged with its own, as
//! `key:value`; `environment` and `release` become Datadog's `env` and `version`, and the
//! `host` tag becomes the series' host (see [`DatadogOptions::host`]). Points are stamped with
//! the start of their roll-up interval; those outside the intake's window (older than 55
//! minutes, more than 10 minutes ahead) are dropped and counted.
//!
//! The sink encodes, compresses and sends on its lane thread, like every sink: it has no
//! thread or queue of its own, and batches its lane cannot take while the sink waits on the
//! intake are dropped and counted there (`sink_queue_full`). A flush waiting on the lane
//! bounds the sink's retries and requests by its deadline. Payloads stay under 90% of the
//! intake's limits (1,000 series, 460,800 bytes compressed, 4,718,592 uncompressed). Answers
//! are handled like this:
//!
//! * 2xx: delivered.
//! * 413: the payload is split in half and both halves are sent.
//! * 408, 429, 5xx, connection failures: retried with exponential backoff and jitter
//!   (honouring `Retry-After`) while [`DatadogOptions::max_retries`] and a pending flush's
//!   deadline allow, then kept in a bounded retry buffer ([`DatadogOptions::retry_buffer_bytes`])
//!   that is tried again at the next export and at every flush.
//!   With [`DatadogOptions::spool`], payloads evicted from that buffer and those still
//!   waiting at shutdown go to a [durable spool](crate::sink::SpoolOptions) on disk instead of
//!   being dropped, and are sent, oldest first, once a request succeeds again, at the next
//!   export or flush, or when the next process starts (points that aged out of the intake's
//!   window meanwhile are dropped and counted).
//! * 400 and other refusals: dropped.
//! * 401, 403: dropped; after 3 in a row a circuit breaker pauses sending for 30 s, doubling
//!   up to 5 minutes while the key keeps being refused.
//!
//! Whatever is given up is counted in the pipeline's statistics: `sink_queue_full` for the
//! lane, `rate_limited` for events over their limits, `sink_error` for everything else
//! (refused, too old, evicted from the retry buffer, still waiting at shutdown), and
//! `spool_full`, `spool_expired`, `spool_corrupt` for what the spool deletes unsent. With
//! [`Builder::debug`](crate::Builder::debug), refusals are logged to standard error, once per
//! status until a request succeeds. The API key never appears in `Debug` output, errors or logs.

mod api_key;
mod buffer;
mod context;
pub(crate) mod distribution;
pub(crate) mod event;
pub(crate) mod losses;
pub(crate) mod options;
pub(crate) mod payload;
mod retry;
pub(crate) mod series;
mod site;
mod transport;
pub(crate) mod window;

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

pub use self::api_key::ApiKeyError;
use self::losses::{DropCause, Losses};
pub use self::options::{Compression, DatadogOptions, DistributionMode, HistogramAggregate};
use self::payload::{Input, Items, Kind};
pub use self::site::EndpointError;
use self::transport::{Pending, Transport, TransportOptions};
use super::{Sink, SinkContext};
use crate::batch::Batch;
use crate::error::{ExportError, ExportErrorKind};

/// The Datadog sink (built by the [`Builder`](crate::Builder)).
pub(crate) struct DatadogSink {
    options: DatadogOptions,
    transport: Transport,
    losses: Losses,
    /// The sink's view of its pipeline, from [`Sink::start`]; the losses are booked through it.
    context: Arc<OnceLock<SinkContext>>,
}

impl std::fmt::Debug for DatadogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatadogSink")
            .field("options", &self.options)
            .field("transport", &self.transport)
            .field("losses", &self.losses)
            .finish()
    }
}

impl DatadogSink {
    /// A sink for `options`; it books its losses, logs and keeps deadlines through the context
    /// [`Sink::start`] gives it.
    pub(crate) fn new(options: DatadogOptions) -> Self {
        let context = Arc::new(OnceLock::<SinkContext>::new());
        let (forward, book) = (context.clone(), context.clone());
        // Before `start` (a sink that is never started) losses are counted here only.
        let losses = Losses::new(
            move |reason, n| {
                if let Some(cx) = forward.get() {
                    cx.lose(reason, n);
                }
            },
            move |carried| {
                if let Some(cx) = book.get() {
                    cx.lose_carried(carried.iter().copied());
                }
            },
        );
        DatadogSink { context, ..DatadogSink::with_losses(options, losses) }
    }

    /// A sink that books its losses in `losses` only (the tests read them back there).
    fn with_losses(options: DatadogOptions, losses: Losses) -> Self {
        let transport = Transport::new(
            TransportOptions {
                base_url: options.base_url.clone(),
                api_key: options.api_key.clone(),
                connect_timeout: options.connect_timeout,
                roots: options.roots.clone(),
                timeout: options.timeout,
                max_retries: options.max_retries,
                retry_buffer_bytes: options.retry_buffer_bytes,
                spool: options.spool.clone(),
                http: options.http.clone(),
            },
            losses.clone(),
        );
        DatadogSink { options, transport, losses, context: Arc::default() }
    }

    fn send(&mut self, kind: Kind, items: &Items) {
        if items.is_empty() {
            return;
        }
        let compression = kind.compression(self.options.compression);
        for payload in payload::chunk(kind, compression, items, &kind.limits(), &self.losses) {
            self.transport.send(payload);
        }
    }

    /// Notes what the lane refused for this sink as `queue_full`, for the sink's own counts:
    /// the lane booked it in the pipeline's statistics already.
    fn note_refused(&self) {
        let Some(cx) = self.context.get() else { return };
        let refused = cx.take_refused();
        let errors = if self.options.send_errors { refused.errors } else { 0 };
        self.losses.note(DropCause::QueueFull, refused.metrics.saturating_add(errors));
    }

    fn flush_error(pending: Pending, shutdown: bool) -> ExportError {
        let Pending { payloads: n, out_of_time } = pending;
        let kind = if out_of_time { ExportErrorKind::Timeout } else { ExportErrorKind::Io };
        let message = if shutdown {
            format!("datadog: {n} payloads could not be delivered before shutdown, dropped")
        } else {
            format!("datadog: {n} payloads could not be delivered yet, kept for a retry")
        };
        ExportError::new(kind, message)
    }
}

impl Sink for DatadogSink {
    fn name(&self) -> &str {
        "datadog"
    }

    fn start(&mut self, cx: SinkContext) {
        if self.context.set(cx.clone()).is_ok() {
            self.transport.start(cx);
        }
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.note_refused();
        let now = SystemTime::now();
        // What waits for a retry is older: it goes first.
        self.transport.retry();
        let metrics = Kind::Series.window(now);
        let series = series::encode(Input {
            batch,
            options: &self.options,
            window: &metrics,
            losses: &self.losses,
        });
        self.send(Kind::Series, &series);
        let points = distribution::encode(Input {
            batch,
            options: &self.options,
            window: &metrics,
            losses: &self.losses,
        });
        self.send(Kind::Distribution, &points);
        let events = event::encode(Input {
            batch,
            options: &self.options,
            window: &Kind::Event.window(now),
            losses: &self.losses,
        });
        self.send(Kind::Event, &events);
        // Drops are counted per item above; the lane must not count the batch again.
        Ok(())
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.note_refused();
        self.transport.flush(deadline).map_err(|p| DatadogSink::flush_error(p, false))
    }

    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.note_refused();
        self.transport.shutdown(deadline).map_err(|p| DatadogSink::flush_error(p, true))
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
