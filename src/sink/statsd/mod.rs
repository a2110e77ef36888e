//! The StatsD sink: DogStatsD (the Datadog Agent) or plain StatsD (Etsy statsd, Graphite,
//! Telegraf), over UDP or Unix sockets.
//!
//! Records are aggregated in-process first, so each interval sends one message per counter,
//! gauge and set member, and the values of a distribution packed with their weights: the server
//! aggregates them back to the same counts. Messages
//! are packed into datagrams of at most 1,432 bytes over UDP and 8,192 over Unix sockets
//! ([`StatsdOptions::max_packet_size`]); a message is never split.
//!
//! | record | DogStatsD | plain StatsD |
//! |---|---|---|
//! | counter | `name:sum\|c` | `name:sum\|c` |
//! | gauge | `name:last\|g` | `name:last\|g` (a negative value as `name:0\|g` then `name:-5\|g`) |
//! | set | `name:<member hash>\|s`, one per member | the same |
//! | distribution | `name:v1:v2…\|d` (or `h`, `ms`), values rebuilt from the sketch, `\|@1/n` for a value seen `n` times | `name:v\|ms:v\|ms…`, values repeated as often as seen up to 1,000, rate-weighted above |
//! | captured error | an event, `_e{…}:title\|text\|d:…\|k:…\|t:error` | — |
//!
//! DogStatsD messages carry the tags (`|#`, with `environment` sent as `env` and `release` as
//! `version`; the Agent adds the host), the origin fields (`|c:` container, `|e:` from
//! `DD_EXTERNAL_ENV`, `|card:` from `DD_CARDINALITY`) and, with `DD_ENTITY_ID`, the tag
//! `dd.internal.entity_id`. Every interval it also sends the official client telemetry
//! (`datadog.dogstatsd.client.*`, tagged `client:rust`), so Datadog's dashboards for client
//! drops work.
//!
//! Plain StatsD has no tags: [`TagStyle`] chooses how they are folded into the name or dropped.
//!
//! The sink writes its datagrams itself, on its lane's thread, as it makes them: the lane is its
//! one thread and one queue. Every socket is non-blocking or, for a Unix stream, waits at most
//! 100 ms and never past the deadline of a pending flush, so a stuck Agent never holds a flush
//! or a shutdown up. Batches the lane cannot take and datagrams the socket does not take are
//! counted in [`Stats`](crate::Stats) (`sink_queue_full`, `sink_error`; set members past the
//! synthetic cap as `sink_sampled`), in the per-metric ledger (with what each datagram carried)
//! and in the client telemetry.

mod address;
pub(crate) mod encode;
mod options;
mod origin;
pub(crate) mod packet;
#[cfg(test)]
mod sink_tests;
mod telemetry;
mod transport;

use std::time::Instant;

pub use self::address::{Address, AddressError, DEFAULT_PORT, DEFAULT_SOCKET};
pub use self::encode::TagStyle;
use self::encode::{Dialect, Encoding};
pub use self::options::{DistributionType, StatsdOptions};
use self::origin::Origin;
use self::packet::Packer;
use self::telemetry::Telemetry;
use self::transport::Transport;
use super::{Sink, SinkContext};
use crate::batch::Batch;
use crate::error::{ExportError, ExportErrorKind};
use crate::stats::{Carried, DropReason};

/// The StatsD sink (built by the [`Builder`](crate::Builder)).
pub(crate) struct StatsdSink {
    name: &'static str,
    encoding: Encoding,
    max_packet: usize,
    entity_id: Option<String>,
    events: bool,
    max_events: usize,
    telemetry: Option<Telemetry>,
    transport: Transport,
    /// Given by the lane before anything else ([`Sink::start`]).
    cx: Option<SinkContext>,
}

impl StatsdSink {
    /// A sink for `options`. Nothing is connected yet: the first write connects.
    pub(crate) fn new(options: StatsdOptions) -> Self {
        let dogstatsd = options.dialect == Dialect::DogStatsd;
        let mut origin = if dogstatsd {
            origin::detect(|name| std::env::var(name).ok(), options.origin_detection)
        } else {
            Origin::default()
        };
        if let Some(id) = &options.container_id {
            origin.container = Some(id.clone());
        }
        let encoding = Encoding {
            dialect: options.dialect,
            prefix: options.prefix.clone(),
            distribution_type: options.distribution_type.code(),
            origin_suffix: origin.suffix(),
            max_plain_values: 1_000,
        };
        let telemetry = (dogstatsd && options.telemetry)
            .then(|| Telemetry::new(options.address.transport(), options.distribution_type.code()));
        StatsdSink {
            name: if dogstatsd { "dogstatsd" } else { "statsd" },
            encoding,
            max_packet: options.packet_limit(),
            entity_id: options.entity_id.clone().filter(|_| dogstatsd),
            events: dogstatsd && options.events,
            max_events: options.max_events,
            telemetry,
            transport: Transport::new(options.address, options.resolve_every),
            cx: None,
        }
    }

    /// The batch's global tags in the dialect's naming.
    fn global_tags(&self, batch: &Batch) -> Vec<(String, String)> {
        let mut tags = match self.encoding.dialect {
            Dialect::DogStatsd => encode::dogstatsd_global_tags(batch.global_tags()),
            Dialect::Plain(_) => batch
                .global_tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        };
        if let Some(id) = &self.entity_id {
            tags.push(("dd.internal.entity_id".to_owned(), id.clone()));
        }
        tags
    }
}

/// Global tags then the record's own, a record's tag replacing a global one with its key.
pub(crate) fn merge<'a>(
    global: &'a [(String, String)],
    own: &'a [crate::batch::Tag],
) -> Vec<(&'a str, &'a str)> {
    let mut tags: Vec<(&str, &str)> = global
        .iter()
        .filter(|(k, _)| !own.iter().any(|t| t.key() == k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tags.extend(own.iter().map(|t| (t.key(), t.value())));
    tags
}

impl Sink for StatsdSink {
    fn name(&self) -> &str {
        self.name
    }

    fn start(&mut self, cx: SinkContext) {
        self.cx = Some(cx);
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        // Without its context the sink could not book what it gives up: the lane books the
        // whole batch instead.
        // The lane hands over one kind of data at a time: transactions and sessions have no
        // StatsD form, and a part of them must not cost a telemetry datagram.
        if batch.metrics().is_empty() && (!self.events || batch.errors().is_empty()) {
            return Ok(());
        }
        let Some(cx) = self.cx.clone() else {
            return Err(ExportError::new(ExportErrorKind::Other, "statsd: sink not started"));
        };
        if let Some(telemetry) = &mut self.telemetry {
            // Already counted by the lane; only reported to Datadog.
            telemetry.refused(cx.take_refused().metrics);
        }
        let global = self.global_tags(batch);
        let mut packer = Packer::new(self.max_packet);
        let (mut dropped, mut sampled) = (0u64, 0u64);
        for record in batch.metrics() {
            let tags = merge(&global, record.tags());
            packer.carry(Carried::of(record));
            let produced = self.encoding.record(record, &tags, &mut packer);
            // What no message took: lost if values were left out.
            if let Some(unsent) = packer.take_pending().filter(|_| produced.dropped > 0) {
                cx.lose_carried([&unsent]);
            }
            dropped += produced.dropped;
            sampled += produced.sampled;
            if let Some(telemetry) = &mut self.telemetry {
                telemetry.metric(record.kind(), produced.messages);
            }
        }
        if self.events {
            for (i, error) in batch.errors().iter().enumerate() {
                if i >= self.max_events {
                    cx.lose(DropReason::RateLimited, 1);
                    continue;
                }
                let tags = merge(&global, &error.tags);
                let Some(event) = self.encoding.event(error, &tags) else {
                    // Over the Agent's 8 KiB even without its text.
                    cx.lose(DropReason::SinkError, 1);
                    continue;
                };
                packer.push(event.as_bytes());
                if let Some(telemetry) = &mut self.telemetry {
                    telemetry.event();
                }
            }
        }
        if let Some(telemetry) = &mut self.telemetry {
            let tags = merge(&global, &[]);
            for line in telemetry.lines(&self.transport.counts, &tags) {
                packer.push(line.as_bytes());
            }
        }
        let (datagrams, oversized, lost) = packer.finish();
        cx.lose_carried(&lost);
        let mut unwritten = 0u64;
        for datagram in &datagrams {
            // Read per datagram: a flush asked for meanwhile shortens the writes that follow.
            if !self.transport.send(&datagram.bytes, cx.deadline()) {
                unwritten += u64::from(datagram.messages);
                cx.lose_carried(&datagram.carried);
            }
        }
        if let Some(failure) = self.transport.take_failure() {
            cx.log(format_args!("{failure}"));
        }
        if sampled > 0 {
            cx.lose(DropReason::SinkSampled, sampled);
        }
        if dropped + oversized + unwritten > 0 {
            cx.lose(DropReason::SinkError, dropped + oversized + unwritten);
        }
        Ok(())
    }

    /// Every datagram was written (or booked as lost) by `export` already.
    fn flush(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        Ok(())
    }

    fn shutdown(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        self.transport.close();
        Ok(())
    }
}
