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
mod options;
mod ratelimit;
mod session;
mod spooled;
mod stacktrace;
pub(crate) mod time;
mod transaction;
mod transport;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use self::client_report::{ClientReports, DiscardReason};
use self::common::Common;
pub use self::dsn::{Dsn, DsnError};
use self::item::{Item, ItemBody, Outgoing};
use self::metrics::MetricOptions;
pub use self::options::SentryOptions;
use self::ratelimit::Category;
use self::transport::{Transport, TransportOptions};
use super::{Sink, SinkContext};
use crate::batch::{Batch, ErrorEvent, Transaction};
use crate::error::{ExportError, ExportErrorKind};
use crate::scrub::Scrubber;
use crate::stats::{Carried, DropReason, Stats};

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
