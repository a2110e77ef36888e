//! The Sentry sink: errors, transactions, sessions and metrics as envelopes over HTTP.
//!
//! Configure it on the builder with a DSN ([`Builder::sentry`](crate::Builder::sentry)), or with
//! [`SentryOptions`] for more control; `SENTRY_DSN` does the same from the environment.
//!
//! | what | becomes | notes |
//! |---|---|---|
//! | captured error | `event` item | exception chain root cause first, mechanism on the last value; fields, enclosing spans and trace as contexts; breadcrumbs; tags; scrubbed |
//! | recorded trace | `transaction` item | child spans as `spans`; the dynamic sampling context in the envelope header |
//! | process session | `session` items | the first update at the first flush, the last at shutdown; needs a release |
//! | request sessions | `sessions` items | aggregated per minute from the `sessions{mode:request}` counter |
//! | metric records | `trace_metric` items | counter: the interval's sum; gauge: the last value; distribution: up to [`SentryOptions::max_distribution_values`] values rebuilt from the sketch, always with the exact min and max; set: the unique count as a gauge. Legacy `statsd` items with [`SentryOptions::legacy_statsd`] |
//! | drops | `client_report` items | piggybacked on envelopes, or sent on their own by a flush |
//!
//! The sink encodes and sends envelopes on its lane thread; nothing here runs on application
//! threads. The lane keeps separate room for sessions, errors, metrics and transactions, and
//! what a full room refuses is reported as `queue_overflow`. The sink gzips bodies of 1 KiB and more, honours `X-Sentry-Rate-Limits` per
//! category, `Retry-After`, and a bare 429 (60 s), and retries connection failures and 5xx
//! answers with exponential backoff while a pending flush's deadline allows. A request whose
//! answer times out is not retried (Sentry may have it already). Every item dropped is counted in
//! a client report with Sentry's reason, except those answered 429 (Sentry counts those itself).
//!
//! With [`SentryOptions::spool`], an envelope that still fails with a connection failure or a
//! 5xx after its retries is kept in a [durable spool](crate::sink::SpoolOptions) on disk
//! instead of being dropped, like the offline cache of Sentry's mobile SDKs, and sent, oldest
//! first, once an envelope is accepted again, at the next flush, or when the next process
//! starts. 429s and refusals are not spooled; what the spool deletes unsent is reported as
//! `cache_overflow`.

pub(crate) mod client_report;
pub(crate) mod common;
mod dsn;
pub(crate) mod envelope;
pub(crate) mod event;
mod item;
pub(crate) mod metrics;
mod ratelimit;
mod session;
mod spooled;
mod stacktrace;
pub(crate) mod time;
mod transaction;
mod transport;

use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use self::client_report::{ClientReports, DiscardReason};
use self::common::Common;
pub use self::dsn::{Dsn, DsnError};
use self::item::{Item, ItemBody, Outgoing};
use self::metrics::MetricOptions;
use self::ratelimit::Category;
use self::transport::{Transport, TransportOptions};
use super::http::spool::SpoolOptions;
use super::http::tls::ExtraRoots;
use super::http::{HttpTransport, SharedTransport};
use super::{Sink, SinkContext};
use crate::batch::{Batch, ErrorEvent, Transaction};
use crate::error::{ExportError, ExportErrorKind};
use crate::scrub::Scrubber;
use crate::stats::{Carried, DropReason, Stats};

type BeforeSend = Arc<dyn Fn(ErrorEvent) -> Option<ErrorEvent> + Send + Sync>;
type BeforeSendTransaction = Arc<dyn Fn(Transaction) -> Option<Transaction> + Send + Sync>;

/// Settings of the Sentry sink.
///
/// ```
/// use std::time::Duration;
/// use tracing_tally::sink::sentry::SentryOptions;
///
/// let options = SentryOptions::new("https://public@o1.ingest.sentry.io/42")?
///     .send_default_pii(false)
///     .timeout(Duration::from_secs(10))
///     .before_send(|mut event| {
///         event.fields.retain(|(name, _)| *name != "user_email");
///         Some(event)
///     });
/// let (layer, guard) = tracing_tally::Tally::builder().sentry_options(options).build()?;
/// # use tracing_subscriber::prelude::*;
/// # let subscriber = tracing_subscriber::registry().with(layer);
/// # drop((subscriber, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct SentryOptions {
    dsn: Dsn,
    send_default_pii: bool,
    scrub_keys: Vec<String>,
    before_send: Option<BeforeSend>,
    before_send_transaction: Option<BeforeSendTransaction>,
    send_metrics: bool,
    legacy_statsd: bool,
    max_distribution_values: usize,
    connect_timeout: Duration,
    roots: ExtraRoots,
    timeout: Duration,
    queue: usize,
    max_retries: u32,
    compress_min: usize,
    client_reports: bool,
    spool: Option<SpoolOptions>,
    http: Option<SharedTransport>,
}

impl fmt::Debug for SentryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The DSN prints without its keys.
        f.debug_struct("SentryOptions")
            .field("dsn", &self.dsn)
            .field("send_default_pii", &self.send_default_pii)
            .field("send_metrics", &self.send_metrics)
            .field("legacy_statsd", &self.legacy_statsd)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .field("roots", &self.roots)
            .field("spool", &self.spool)
            .field("transport", &self.http.as_ref().map_or("ureq", |_| "custom"))
            .finish_non_exhaustive()
    }
}

impl SentryOptions {
    /// Options for a DSN (`https://<public key>@<host>/<project id>`).
    ///
    /// # Errors
    ///
    /// A [`DsnError`] naming the malformed part (scheme, key, host, port, project id, path).
    pub fn new(dsn: &str) -> Result<Self, DsnError> {
        Ok(SentryOptions::from_dsn(dsn.parse()?))
    }

    /// Options for a parsed DSN.
    pub fn from_dsn(dsn: Dsn) -> Self {
        SentryOptions {
            dsn,
            send_default_pii: false,
            scrub_keys: Vec::new(),
            before_send: None,
            before_send_transaction: None,
            send_metrics: true,
            legacy_statsd: false,
            max_distribution_values: 100,
            connect_timeout: Duration::from_secs(5),
            roots: ExtraRoots::default(),
            timeout: Duration::from_secs(30),
            queue: 30,
            max_retries: 3,
            compress_min: 1024,
            client_reports: true,
            spool: None,
            http: None,
        }
    }

    /// The same options for another DSN.
    pub(crate) fn with_dsn(mut self, dsn: Dsn) -> Self {
        self.dsn = dsn;
        self
    }

    /// The DSN (prints without its keys).
    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// Sends personal data: IP addresses and forwarded-for headers are not scrubbed from the
    /// envelopes. Off by default: values of the keys in Sentry's default deny lists become
    /// `"[Filtered]"`. The pipeline filters fields before any sink sees them, with
    /// [`Builder::send_default_pii`](crate::Builder::send_default_pii) (also off by default):
    /// to send personal data to Sentry, turn both on.
    pub fn send_default_pii(mut self, send: bool) -> Self {
        self.send_default_pii = send;
        self
    }

    /// More field names whose values are scrubbed from the envelopes (case-insensitive, exact),
    /// on top of [`Builder::scrub_keys`](crate::Builder::scrub_keys), which applies to every
    /// sink.
    pub fn scrub_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.scrub_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Inspects or changes every error before it is sent; `None` drops it (counted as
    /// `before_send` in client reports). Runs on the sink's thread; a panic drops the event.
    pub fn before_send(
        mut self,
        hook: impl Fn(ErrorEvent) -> Option<ErrorEvent> + Send + Sync + 'static,
    ) -> Self {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// Inspects or changes every transaction before it is sent; `None` drops it.
    pub fn before_send_transaction(
        mut self,
        hook: impl Fn(Transaction) -> Option<Transaction> + Send + Sync + 'static,
    ) -> Self {
        self.before_send_transaction = Some(Arc::new(hook));
        self
    }

    /// Sends metric records (on by default).
    pub fn send_metrics(mut self, send: bool) -> Self {
        self.send_metrics = send;
        self
    }

    /// Sends metrics as legacy `statsd` items, for self-hosted Sentry from before Application
    /// Metrics (sentry.io rejects them since October 2024).
    pub fn legacy_statsd(mut self, legacy: bool) -> Self {
        self.legacy_statsd = legacy;
        self
    }

    /// Distribution values sent per series and interval (default 100; the rest are counted as
    /// `buffer_overflow`).
    pub fn max_distribution_values(mut self, max: usize) -> Self {
        self.max_distribution_values = max;
        self
    }

    /// Trusts the certificate authorities of `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks) besides Mozilla's root certificates: for a self-hosted Sentry behind a private
    /// CA, or a TLS-inspecting proxy. Certificates are always verified; there is no option to
    /// turn that off.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pem = std::fs::read("/etc/ssl/certs/my-company-ca.pem")?;
    /// let options = tracing_tally::sink::sentry::SentryOptions::new("https://key@sentry.internal/1")?
    ///     .add_root_certificates(&pem)?;
    /// # drop(options); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`CertificateError`](crate::sink::CertificateError) when `pem` holds no certificate or
    /// is not valid PEM.
    pub fn add_root_certificates(mut self, pem: &[u8]) -> Result<Self, super::CertificateError> {
        self.roots = self.roots.add_pem(pem)?;
        Ok(self)
    }

    /// Connection timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total timeout of one request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Kept for compatibility; it has no effect. The sink no longer has a queue of envelopes
    /// of its own: it sends on its lane, whose rooms (one per kind of data, set by
    /// [`Builder::sink_queue`](crate::Builder::sink_queue),
    /// [`Builder::error_queue`](crate::Builder::error_queue) and
    /// [`Builder::transaction_queue`](crate::Builder::transaction_queue)) bound what waits, and
    /// what they refuse is reported as `queue_overflow`.
    #[deprecated(
        since = "0.2.0",
        note = "the lane's rooms bound what waits: see Builder::sink_queue"
    )]
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// Retries of an envelope after a 5xx answer or a connection failure (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Bodies of at least this many bytes are gzipped (default 1024).
    pub fn compress_min(mut self, bytes: usize) -> Self {
        self.compress_min = bytes;
        self
    }

    /// Sends client reports of dropped data (on by default).
    pub fn client_reports(mut self, send: bool) -> Self {
        self.client_reports = send;
        self
    }

    /// Keeps envelopes on disk while Sentry cannot be reached, instead of dropping them: an
    /// envelope that still fails with a connection failure or a 5xx answer after its retries
    /// is written to the spool (under `<dir>/sentry/`) and sent, oldest first, once an envelope
    /// is accepted again, at the next flush, or when the next process starts with the same
    /// directory, like the offline cache of Sentry's mobile SDKs. Rate-limited (429) and
    /// refused envelopes are not spooled. What the spool deletes unsent is reported as
    /// `cache_overflow`. Off by default. See [`SpoolOptions`] for the caps and the file format.
    ///
    /// ```
    /// use tracing_tally::sink::{SpoolOptions, sentry::SentryOptions};
    ///
    /// let options = SentryOptions::new("https://public@o1.ingest.sentry.io/42")?
    ///     .spool(SpoolOptions::new(std::env::temp_dir().join("my-app-spool")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool(mut self, spool: SpoolOptions) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Sends through `transport` instead of the default ureq agent: another HTTP client, or no
    /// network at all in a test or a benchmark. Rate limits, retries, gzip, the spool and
    /// client reports stay the sink's. Clones of these options share the transport.
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.http = Some(SharedTransport::new(transport));
        self
    }

    /// Entries the Sentry project adds to the dynamic sampling context.
    pub(crate) fn dsc_extras(&self) -> Vec<(String, String)> {
        let mut extras = vec![("public_key".to_owned(), self.dsn.public_key().to_owned())];
        if let Some(org_id) = self.dsn.org_id() {
            extras.push(("org_id".to_owned(), org_id.to_string()));
        }
        extras
    }
}

/// The Sentry sink (built by the [`Builder`](crate::Builder)).
pub(crate) struct SentrySink {
    options: SentryOptions,
    /// The sink's context, from [`Sink::start`].
    cx: Option<SinkContext>,
    transport: Transport,
    reports: Arc<ClientReports>,
    scrubber: Scrubber,
    ids: time::Ids,
    process_trace_id: u128,
    /// The pipeline's drop counts when last reported.
    reported: Option<Stats>,
}

impl SentrySink {
    pub(crate) fn new(options: SentryOptions) -> Self {
        let reports = Arc::new(ClientReports::new());
        let transport_options = TransportOptions {
            url: options.dsn.envelope_url(),
            auth: options.dsn.auth_header(&format!("tracing-tally/{}", env!("CARGO_PKG_VERSION"))),
            connect_timeout: options.connect_timeout,
            roots: options.roots.clone(),
            timeout: options.timeout,
            max_retries: options.max_retries,
            compress_min: options.compress_min,
            client_reports: options.client_reports,
            spool: options.spool.clone(),
            http: options.http.clone(),
        };
        let transport = Transport::new(transport_options, reports.clone());
        let scrubber = Scrubber::new(options.send_default_pii, options.scrub_keys.clone());
        let mut ids = time::Ids::new();
        let process_trace_id = (u128::from(ids.next_u64()) << 64) | u128::from(ids.next_u64());
        SentrySink {
            options,
            cx: None,
            transport,
            reports,
            scrubber,
            ids,
            process_trace_id,
            reported: None,
        }
    }

    /// Books `count` records as given up for `reason` in the pipeline's statistics.
    fn lose(&self, reason: DropReason, count: u64) {
        if let Some(cx) = &self.cx {
            cx.lose(reason, count);
        }
    }

    /// Turns the pipeline's own drops, and what the lane refused this sink, since the last
    /// batch into client reports.
    fn report_pipeline_drops(&mut self) {
        let Some(cx) = &self.cx else { return };
        let refused = cx.take_refused();
        let lane = [
            (Category::Session, refused.sessions),
            (Category::Error, refused.errors),
            (Category::TraceMetric, refused.metrics),
            (Category::Transaction, refused.transactions),
            (Category::Span, refused.spans),
        ];
        for (category, quantity) in lane {
            self.reports.record(DiscardReason::QueueOverflow, category, quantity);
        }
        let stats = cx.stats();
        let before = self.reported.replace(stats.clone());
        let delta = |now: u64, then: Option<u64>| now.saturating_sub(then.unwrap_or(0));
        let dropped =
            |reason| delta(stats.dropped(reason), before.as_ref().map(|b| b.dropped(reason)));
        let entries = [
            (DiscardReason::QueueOverflow, Category::Error, dropped(DropReason::QueueFull)),
            (DiscardReason::Backpressure, Category::Error, dropped(DropReason::RateLimited)),
            (
                DiscardReason::QueueOverflow,
                Category::Transaction,
                dropped(DropReason::TransactionQueueFull),
            ),
            (DiscardReason::BufferOverflow, Category::Span, dropped(DropReason::LateSpan)),
        ];
        for (reason, category, quantity) in entries {
            self.reports.record(reason, category, quantity);
        }
        let unsampled = delta(stats.unsampled_traces, before.as_ref().map(|b| b.unsampled_traces));
        let downsampled =
            delta(stats.downsampled_traces, before.as_ref().map(|b| b.downsampled_traces));
        // Roots that only backpressure left out are `backpressure`, the rest `sample_rate`.
        for (reason, quantity) in [
            (DiscardReason::SampleRate, unsampled.saturating_sub(downsampled)),
            (DiscardReason::Backpressure, downsampled),
        ] {
            self.reports.record(reason, Category::Transaction, quantity);
            self.reports.record(reason, Category::Span, quantity);
        }
    }

    fn header(&self, event_id: Option<&str>) -> Map<String, Value> {
        let mut header = Map::new();
        if let Some(event_id) = event_id {
            header.insert("event_id".into(), event_id.into());
        }
        header.insert(
            "sdk".into(),
            json!({ "name": common::SDK_NAME, "version": env!("CARGO_PKG_VERSION") }),
        );
        header
    }

    fn send_error(&mut self, common: &Common<'_>, error: &ErrorEvent) {
        // Without a hook the event is encoded in place: no copy of it.
        let error = match &self.options.before_send {
            None => Some(Cow::Borrowed(error)),
            Some(hook) => match catch_unwind(AssertUnwindSafe(|| hook(error.clone()))) {
                Ok(kept) => kept.map(Cow::Owned),
                Err(_) => {
                    self.reports.record(DiscardReason::InternalSdkError, Category::Error, 1);
                    return;
                }
            },
        };
        let Some(error) = error else {
            self.reports.record(DiscardReason::BeforeSend, Category::Error, 1);
            return;
        };
        let (event_id, payload) = event::encode(common, &error, &mut self.ids);
        let item = Item::new(Category::Error, 1, ItemBody::Plain { item_type: "event", payload });
        self.transport.send(Outgoing { header: self.header(Some(&event_id)), items: vec![item] });
    }

    fn send_transaction(&mut self, common: &Common<'_>, tx: &Transaction) {
        let spans = tx.spans.len() as u64 + 1;
        let tx = match &self.options.before_send_transaction {
            None => Some(Cow::Borrowed(tx)),
            Some(hook) => match catch_unwind(AssertUnwindSafe(|| hook(tx.clone()))) {
                Ok(kept) => kept.map(Cow::Owned),
                Err(_) => {
                    self.reports.record(DiscardReason::InternalSdkError, Category::Transaction, 1);
                    self.reports.record(DiscardReason::InternalSdkError, Category::Span, spans);
                    return;
                }
            },
        };
        let Some(tx) = tx else {
            self.reports.record(DiscardReason::BeforeSend, Category::Transaction, 1);
            self.reports.record(DiscardReason::BeforeSend, Category::Span, spans);
            return;
        };
        if tx.dropped_spans > 0 {
            self.reports.record(
                DiscardReason::BufferOverflow,
                Category::Span,
                u64::from(tx.dropped_spans),
            );
        }
        let (event_id, payload) = transaction::encode(common, &tx, &mut self.ids);
        let mut header = self.header(Some(&event_id));
        let dsc =
            transaction::dsc(common, &tx, self.options.dsn.public_key(), self.options.dsn.org_id());
        header.insert("trace".into(), dsc);
        let mut item = Item::new(
            Category::Transaction,
            1,
            ItemBody::Plain { item_type: "transaction", payload },
        );
        item.also = Some((Category::Span, tx.spans.len() as u64 + 1));
        self.transport.send(Outgoing { header, items: vec![item] });
    }

    fn send_sessions(&mut self, common: &Common<'_>, batch: &Batch) {
        let mut items: Vec<Item> = batch
            .sessions()
            .iter()
            .map(|update| {
                let payload = session::session(update);
                Item::new(Category::Session, 1, ItemBody::Plain { item_type: "session", payload })
            })
            .collect();
        let requests: Vec<_> =
            batch.metrics().iter().filter(|r| session::is_request_session(r)).collect();
        for payload in session::aggregates(common, &requests) {
            items.push(Item::new(
                Category::Session,
                1,
                ItemBody::Plain { item_type: "sessions", payload },
            ));
        }
        // At most 100 session items per envelope.
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<Item> = items.by_ref().take(100).collect();
            self.transport.send(Outgoing { header: self.header(None), items: chunk });
        }
    }

    fn send_metrics(&mut self, common: &Common<'_>, batch: &Batch) {
        if !self.options.send_metrics {
            return;
        }
        let records: Vec<_> = batch.metrics().iter().filter(|r| metrics::is_metric(r)).collect();
        if records.is_empty() {
            return;
        }
        if self.options.legacy_statsd {
            let (payload, invalid) = metrics::statsd(
                batch.global_tags(),
                &records,
                self.options.max_distribution_values,
            );
            self.reports.record(DiscardReason::Invalid, Category::Default, invalid);
            self.lose(DropReason::SinkError, invalid);
            if payload.is_empty() {
                return;
            }
            let mut item = Item::new(
                Category::Default,
                records.len() as u64 - invalid,
                ItemBody::Plain { item_type: "statsd", payload },
            );
            item.carried = Some(records.iter().map(|record| Carried::of(record)).collect());
            self.transport.send(Outgoing { header: self.header(None), items: vec![item] });
            return;
        }
        let options = MetricOptions { max_values: self.options.max_distribution_values };
        let encoded = metrics::trace_metrics(common, batch.global_tags(), &records, options);
        if encoded.overflow > 0 {
            self.reports.record(
                DiscardReason::BufferOverflow,
                Category::TraceMetric,
                encoded.overflow,
            );
        }
        self.reports.record(DiscardReason::Invalid, Category::TraceMetric, encoded.invalid);
        if !encoded.non_finite.is_empty() {
            self.lose(DropReason::SinkError, encoded.non_finite.len() as u64);
            if let Some(cx) = &self.cx {
                cx.lose_carried(&encoded.non_finite);
            }
        }
        for container in encoded.containers {
            let count = container.count;
            let mut item = Item::new(
                Category::TraceMetric,
                count as u64,
                ItemBody::Container {
                    item_type: "trace_metric",
                    content_type: "application/vnd.sentry.items.trace-metric+json",
                    count,
                    payload: container.payload,
                },
            );
            item.carried = Some(container.carried);
            self.transport.send(Outgoing { header: self.header(None), items: vec![item] });
        }
    }
}

impl Sink for SentrySink {
    fn name(&self) -> &str {
        "sentry"
    }

    fn start(&mut self, cx: SinkContext) {
        self.transport.start(cx.clone());
        self.cx = Some(cx);
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.report_pipeline_drops();
        let scrubber = self.scrubber.clone();
        let common = Common::new(batch.global_tags(), &scrubber, self.process_trace_id);
        for error in batch.errors() {
            self.send_error(&common, error);
        }
        for tx in batch.transactions() {
            self.send_transaction(&common, tx);
        }
        self.send_sessions(&common, batch);
        self.send_metrics(&common, batch);
        Ok(())
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.report_pipeline_drops();
        self.transport.flush();
        if Instant::now() <= deadline {
            Ok(())
        } else {
            Err(ExportError::new(
                ExportErrorKind::Timeout,
                "sentry: envelopes still pending at the deadline",
            ))
        }
    }

    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        self.report_pipeline_drops();
        self.transport.shutdown();
        if Instant::now() <= deadline {
            Ok(())
        } else {
            Err(ExportError::new(
                ExportErrorKind::Timeout,
                "sentry: envelopes still pending at shutdown",
            ))
        }
    }
}
