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
//! Sending happens on one `tally-statsd` thread behind a bounded queue; a full queue or socket
//! buffer drops datagrams, counted in [`Stats`](crate::Stats) (`sink_queue_full`, `sink_error`; set
//! members past the synthetic cap as `sink_sampled`)
//! and in the client telemetry.

mod address;
pub(crate) mod encode;
mod origin;
pub(crate) mod packet;
mod telemetry;
mod transport;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::address::{Address, AddressError, DEFAULT_PORT, DEFAULT_SOCKET};
pub use self::encode::TagStyle;
use self::encode::{Dialect, Encoding};
use self::origin::Origin;
use self::packet::Packer;
use self::telemetry::Telemetry;
use self::transport::Transport;
use super::Sink;
use crate::batch::Batch;
use crate::error::{BuildError, ExportError, ExportErrorKind};
use crate::pipeline::Shared;
use crate::stats::{Carried, DropReason};

/// Largest UDP payload (65,535 less the UDP and largest IP headers).
const MAX_UDP_PACKET: usize = 65_467;
/// Largest Unix datagram payload the Agent reads by default (`dogstatsd_buffer_size`) — larger
/// sizes must be configured on the Agent too.
const MAX_UNIX_PACKET: usize = 8_192 * 8;

/// How distributions are sent to DogStatsD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DistributionType {
    /// `d`: global percentiles computed by Datadog from every host's values (the default).
    #[default]
    Distribution,
    /// `h`: the Agent computes `avg`, `count`, `median`, `95percentile` and `max` per host.
    Histogram,
    /// `ms`: as `h`, for timings.
    Timing,
}

impl DistributionType {
    fn code(self) -> &'static str {
        match self {
            DistributionType::Distribution => "d",
            DistributionType::Histogram => "h",
            DistributionType::Timing => "ms",
        }
    }
}

/// Settings of the StatsD sink.
///
/// ```
/// use tracing_tally::sink::statsd::{StatsdOptions, TagStyle};
///
/// // The Datadog Agent, found as the official clients find it (DD_DOGSTATSD_URL,
/// // DD_AGENT_HOST and DD_DOGSTATSD_PORT, the Agent's socket, else 127.0.0.1:8125).
/// let dogstatsd = StatsdOptions::dogstatsd()?.prefix("checkout.");
/// // A plain StatsD server, tags in Graphite's syntax.
/// let statsd = StatsdOptions::statsd("udp://127.0.0.1:8125")?.tag_style(TagStyle::Graphite);
/// let (layer, guard) = tracing_tally::Tally::builder().statsd(statsd).build()?;
/// # use tracing_subscriber::prelude::*;
/// # drop((tracing_subscriber::registry().with(layer), guard, dogstatsd));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct StatsdOptions {
    address: Address,
    dialect: Dialect,
    prefix: String,
    max_packet: Option<usize>,
    queue: Option<usize>,
    distribution_type: DistributionType,
    origin_detection: bool,
    container_id: Option<String>,
    entity_id: Option<String>,
    events: bool,
    max_events: usize,
    telemetry: bool,
    resolve_every: Duration,
}

impl StatsdOptions {
    fn new(address: Address, dialect: Dialect) -> Self {
        StatsdOptions {
            address,
            dialect,
            prefix: String::new(),
            max_packet: None,
            queue: None,
            distribution_type: DistributionType::default(),
            origin_detection: true,
            container_id: None,
            entity_id: None,
            events: true,
            max_events: 100,
            telemetry: true,
            resolve_every: Duration::from_secs(30),
        }
    }

    /// DogStatsD at the address the environment gives, in the official clients' order:
    /// `DD_DOGSTATSD_URL`, else `DD_AGENT_HOST` and `DD_DOGSTATSD_PORT`, else the Agent's socket
    /// ([`DEFAULT_SOCKET`]) when it exists, else `127.0.0.1:8125`. Also reads `DD_ENTITY_ID`.
    ///
    /// # Errors
    ///
    /// An [`AddressError`] naming the variable whose value cannot be used.
    pub fn dogstatsd() -> Result<Self, AddressError> {
        Self::dogstatsd_from(|name| std::env::var(name).ok())
    }

    /// DogStatsD at `address` (`udp://host:port`, `host:port`, `unix:///path`,
    /// `unixgram:///path`, `unixstream:///path`). Also reads `DD_ENTITY_ID`.
    ///
    /// # Errors
    ///
    /// An [`AddressError`] saying what is wrong with the address.
    pub fn dogstatsd_at(address: &str) -> Result<Self, AddressError> {
        Self::dogstatsd_at_from(address, |name| std::env::var(name).ok())
    }

    pub(crate) fn dogstatsd_at_from(
        address: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AddressError> {
        let mut options = StatsdOptions::new(address.parse()?, Dialect::DogStatsd);
        options.entity_id = entity_id(get);
        Ok(options)
    }

    pub(crate) fn dogstatsd_from(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AddressError> {
        let address = address::from_environment(&get, std::path::Path::exists)
            .map_err(|(variable, error)| error.in_variable(variable))?;
        let mut options = StatsdOptions::new(address, Dialect::DogStatsd);
        options.entity_id = entity_id(&get);
        Ok(options)
    }

    /// Plain StatsD at `address`, tags in Graphite's syntax (see [`TagStyle`]).
    ///
    /// # Errors
    ///
    /// An [`AddressError`] saying what is wrong with the address.
    pub fn statsd(address: &str) -> Result<Self, AddressError> {
        Ok(StatsdOptions::new(address.parse()?, Dialect::Plain(TagStyle::default())))
    }

    /// The address datagrams go to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// How tags reach a plain StatsD server (ignored for DogStatsD, which has tags).
    pub fn tag_style(mut self, style: TagStyle) -> Self {
        if let Dialect::Plain(_) = self.dialect {
            self.dialect = Dialect::Plain(style);
        }
        self
    }

    /// Prepended to every metric name, for example `"checkout."`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Largest datagram, in bytes (default 1,432 over UDP, 8,192 over Unix sockets; at most
    /// 65,467 over UDP, and over Unix sockets no more than the Agent's `dogstatsd_buffer_size`).
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet = Some(bytes);
        self
    }

    /// Datagrams waiting to be sent (default 2,048 over UDP, 512 over Unix sockets); more are
    /// dropped and counted.
    pub fn queue(mut self, datagrams: usize) -> Self {
        self.queue = Some(datagrams);
        self
    }

    /// The DogStatsD type distributions are sent as (default `d`).
    pub fn distribution_type(mut self, kind: DistributionType) -> Self {
        self.distribution_type = kind;
        self
    }

    /// Detects the container the process runs in, for the Agent's origin detection (on by
    /// default; `DD_ORIGIN_DETECTION_ENABLED=false` also turns it off).
    pub fn origin_detection(mut self, enabled: bool) -> Self {
        self.origin_detection = enabled;
        self
    }

    /// The container id to send (`|c:`), instead of the detected one.
    pub fn container_id(mut self, id: impl Into<String>) -> Self {
        self.container_id = Some(id.into());
        self
    }

    /// Sends captured errors as DogStatsD events (on by default; DogStatsD only).
    pub fn events(mut self, enabled: bool) -> Self {
        self.events = enabled;
        self
    }

    /// Events sent per flush at most (default 100); the rest are counted as dropped.
    pub fn max_events_per_flush(mut self, max: usize) -> Self {
        self.max_events = max;
        self
    }

    /// Sends the `datadog.dogstatsd.client.*` telemetry (on by default; DogStatsD only).
    pub fn telemetry(mut self, enabled: bool) -> Self {
        self.telemetry = enabled;
        self
    }

    /// How often a UDP host name is resolved again (default 30 s).
    pub fn resolve_every(mut self, period: Duration) -> Self {
        self.resolve_every = period;
        self
    }

    fn packet_limit(&self) -> usize {
        let (default, max) =
            if self.address.is_unix() { (8_192, MAX_UNIX_PACKET) } else { (1_432, MAX_UDP_PACKET) };
        self.max_packet.unwrap_or(default).clamp(64, max)
    }

    fn queue_limit(&self) -> usize {
        self.queue.unwrap_or(if self.address.is_unix() { 512 } else { 2_048 })
    }

    /// Checks the options against the pipeline's roll-up interval.
    pub(crate) fn validate(&self, rollup: Duration) -> Result<(), BuildError> {
        let invalid = |reason: String| BuildError::InvalidConfig { setting: "statsd", reason };
        if let Some(bytes) = self.max_packet {
            if bytes < 64
                || bytes > if self.address.is_unix() { MAX_UNIX_PACKET } else { MAX_UDP_PACKET }
            {
                return Err(invalid(format!("max_packet_size {bytes} is outside 64..={MAX_UDP_PACKET} (UDP) or 64..={MAX_UNIX_PACKET} (Unix)")));
            }
        }
        if self.queue == Some(0) {
            return Err(invalid("the queue must hold at least one datagram".to_owned()));
        }
        // The Agent aggregates DogStatsD in 10 s buckets: intervals that do not divide them
        // would put two of our intervals' values in one bucket, or split one.
        if self.dialect == Dialect::DogStatsd {
            let ten = Duration::from_secs(10).as_nanos();
            let interval = rollup.as_nanos();
            if interval == 0 || !ten.is_multiple_of(interval) {
                return Err(invalid(format!(
                    "the roll-up interval ({rollup:?}) must divide 10 s for DogStatsD (1 s, 2 s, 5 s, 10 s...)"
                )));
            }
        }
        Ok(())
    }
}

fn entity_id(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get("DD_ENTITY_ID").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl fmt::Display for StatsdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dialect = if self.dialect == Dialect::DogStatsd { "dogstatsd" } else { "statsd" };
        write!(f, "{dialect} {}", self.address)
    }
}

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
    shared: Arc<Shared>,
    /// Transport drops already added to the pipeline's counters.
    reported_queue: u64,
    reported_writer: u64,
}

impl StatsdSink {
    pub(crate) fn new(options: StatsdOptions, shared: Arc<Shared>) -> std::io::Result<Self> {
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
        let name = if dogstatsd { "dogstatsd" } else { "statsd" };
        let ledger = shared.clone();
        let transport = Transport::start(
            options.address.clone(),
            options.queue_limit(),
            options.resolve_every,
            shared.config.debug,
            Arc::new(move |carried| ledger.counters.metric_losses.lose(name, carried)),
        )?;
        let telemetry = (dogstatsd && options.telemetry)
            .then(|| Telemetry::new(options.address.transport(), options.distribution_type.code()));
        Ok(StatsdSink {
            name,
            encoding,
            max_packet: options.packet_limit(),
            entity_id: options.entity_id.filter(|_| dogstatsd),
            events: dogstatsd && options.events,
            max_events: options.max_events,
            telemetry,
            transport,
            shared,
            reported_queue: 0,
            reported_writer: 0,
        })
    }

    /// Adds the transport's drops since the last call to the pipeline's counters.
    fn report_drops(&mut self) {
        let counts = &self.transport.counts;
        let queue = counts.messages_dropped_queue.load(Ordering::Relaxed);
        let writer = counts.messages_dropped_writer.load(Ordering::Relaxed);
        self.shared.counters.dropped(DropReason::SinkQueueFull, queue - self.reported_queue);
        self.shared.counters.dropped(DropReason::SinkError, writer - self.reported_writer);
        self.reported_queue = queue;
        self.reported_writer = writer;
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

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.report_drops();
        let global = self.global_tags(batch);
        let mut packer = Packer::new(self.max_packet);
        let (mut dropped, mut sampled) = (0u64, 0u64);
        for record in batch.metrics() {
            let tags = merge(&global, record.tags());
            packer.carry(Carried::of(record));
            let produced = self.encoding.record(record, &tags, &mut packer);
            // No message took the record: lost if its messages were dropped.
            if let Some(unsent) = packer.take_pending().filter(|_| produced.dropped > 0) {
                self.shared.counters.metric_losses.lose(self.name, [&unsent]);
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
                    self.shared.counters.dropped(DropReason::RateLimited, 1);
                    continue;
                }
                let tags = merge(&global, &error.tags);
                let Some(event) = self.encoding.event(error, &tags) else {
                    // Over the Agent's 8 KiB even without its text.
                    self.shared.counters.dropped(DropReason::SinkError, 1);
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
        self.shared.counters.metric_losses.lose(self.name, &lost);
        for datagram in datagrams {
            self.transport.send(datagram);
        }
        if sampled > 0 {
            self.shared.counters.dropped(DropReason::SinkSampled, sampled);
        }
        if dropped + oversized > 0 {
            self.shared.counters.dropped(DropReason::SinkError, dropped + oversized);
        }
        Ok(())
    }

    fn flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        let done = self.transport.flush(deadline);
        self.report_drops();
        if done {
            Ok(())
        } else {
            Err(ExportError::new(
                ExportErrorKind::Timeout,
                "statsd: datagrams still queued at the deadline",
            ))
        }
    }

    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        let done = self.transport.shutdown(deadline);
        self.report_drops();
        if done {
            Ok(())
        } else {
            Err(ExportError::new(
                ExportErrorKind::Timeout,
                "statsd: datagrams still queued at shutdown",
            ))
        }
    }
}
