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
//! Encoding and compression run on the pipeline's side; one `tally-datadog` thread sends,
//! behind a queue of [`DatadogOptions::queue`] payloads that drops the newest when full.
//! Payloads stay under 90% of the intake's limits (1,000 series, 460,800 bytes compressed,
//! 4,718,592 uncompressed). Answers are handled like this:
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
//! queue, `rate_limited` for events over their limits, `sink_error` for everything else
//! (refused, too old, evicted from the retry buffer, still waiting at shutdown), and
//! `spool_full`, `spool_expired`, `spool_corrupt` for what the spool deletes unsent. With
//! [`Builder::debug`](crate::Builder::debug), refusals are logged to standard error, once per
//! status until a request succeeds. The API key never appears in `Debug` output, errors or logs.

mod api_key;
mod breaker;
mod buffer;
mod context;
pub(crate) mod distribution;
pub(crate) mod event;
mod json;
pub(crate) mod losses;
pub(crate) mod options;
pub(crate) mod payload;
mod retry;
pub(crate) mod series;
mod site;
mod transport;
pub(crate) mod window;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use self::api_key::ApiKeyError;
use self::losses::Losses;
pub use self::options::{Compression, DatadogOptions, DistributionMode, HistogramAggregate};
use self::payload::{Items, Kind};
pub use self::site::EndpointError;
use self::transport::{FlushError, Transport, TransportOptions};
use super::Sink;
use crate::batch::Batch;
use crate::error::{ExportError, ExportErrorKind};
use crate::pipeline::Shared;

/// The Datadog sink (built by the [`Builder`](crate::Builder)).
pub(crate) struct DatadogSink {
    options: DatadogOptions,
    transport: Transport,
    losses: Losses,
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
    /// Starts the sender thread; drops are counted in `shared`'s statistics.
    pub(crate) fn new(options: DatadogOptions, shared: Arc<Shared>) -> std::io::Result<Self> {
        let debug = shared.config.debug;
        let ledger = shared.clone();
        let losses = Losses::new(
            move |reason, n| shared.counters.dropped(reason, n),
            move |carried| ledger.counters.metric_losses.lose("datadog", carried.iter().copied()),
        );
        DatadogSink::start(options, debug, losses)
    }

    fn start(options: DatadogOptions, debug: bool, losses: Losses) -> std::io::Result<Self> {
        let transport = Transport::start(
            TransportOptions {
                base_url: options.base_url.clone(),
                api_key: options.api_key.clone(),
                connect_timeout: options.connect_timeout,
                roots: options.roots.clone(),
                timeout: options.timeout,
                queue: options.queue,
                max_retries: options.max_retries,
                retry_buffer_bytes: options.retry_buffer_bytes,
                spool: options.spool.clone(),
                debug,
            },
            losses.clone(),
        )?;
        Ok(DatadogSink { options, transport, losses })
    }

    fn send(&self, kind: Kind, items: &Items) {
        if items.is_empty() {
            return;
        }
        let compression = kind.compression(self.options.compression);
        for payload in payload::chunk(kind, compression, items, &kind.limits(), &self.losses) {
            self.transport.send(payload);
        }
    }

    fn flush_error(error: FlushError, shutdown: bool) -> ExportError {
        match (error, shutdown) {
            (FlushError::Timeout, _) => ExportError::new(
                ExportErrorKind::Timeout,
                "datadog: payloads still being sent at the deadline",
            ),
            (FlushError::Pending(n), false) => ExportError::new(
                ExportErrorKind::Io,
                format!("datadog: {n} payloads could not be delivered yet, kept for a retry"),
            ),
            (FlushError::Pending(n), true) => ExportError::new(
                ExportErrorKind::Io,
                format!("datadog: {n} payloads could not be delivered before shutdown, dropped"),
            ),
        }
    }
}

impl Sink for DatadogSink {
    fn name(&self) -> &str {
        "datadog"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let now = SystemTime::now();
        // What waits for a retry is older: it goes first.
        self.transport.retry();
        let metrics = Kind::Series.window(now);
        let series = series::encode(batch, &self.options, &metrics, &self.losses);
        self.send(Kind::Series, &series);
        let points = distribution::encode(batch, &self.options, &metrics, &self.losses);
        self.send(Kind::Distribution, &points);
        let events = event::encode(batch, &self.options, &Kind::Event.window(now), &self.losses);
        self.send(Kind::Event, &events);
        // Drops are counted per item above; the flusher must not count the batch again.
        Ok(())
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.transport.flush(deadline).map_err(|e| DatadogSink::flush_error(e, false))
    }

    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.transport.shutdown(deadline).map_err(|e| DatadogSink::flush_error(e, true))
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
