//! The StatsD sink's settings: [`StatsdOptions`] and [`DistributionType`].

use std::fmt;
use std::time::Duration;

use super::address::{self, Address, AddressError};
use super::encode::{Dialect, TagStyle};
use crate::error::BuildError;

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
    pub(super) fn code(self) -> &'static str {
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
    pub(super) address: Address,
    pub(super) dialect: Dialect,
    pub(super) prefix: String,
    pub(super) max_packet: Option<usize>,
    pub(super) distribution_type: DistributionType,
    pub(super) origin_detection: bool,
    pub(super) container_id: Option<String>,
    pub(super) entity_id: Option<String>,
    pub(super) events: bool,
    pub(super) max_events: usize,
    pub(super) telemetry: bool,
    pub(super) resolve_every: Duration,
}

impl StatsdOptions {
    fn new(address: Address, dialect: Dialect) -> Self {
        StatsdOptions {
            address,
            dialect,
            prefix: String::new(),
            max_packet: None,
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
    /// ([`DEFAULT_SOCKET`](super::DEFAULT_SOCKET)) when it exists, else `127.0.0.1:8125`. Also reads `DD_ENTITY_ID`.
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

    /// Kept for compatibility; has no effect. Datagrams no longer wait in a queue of the
    /// sink's own: it writes them as it makes them, and what waits is whole batches in its lane
    /// ([`Builder::sink_queue`](crate::Builder::sink_queue)).
    #[deprecated(
        since = "0.2.0",
        note = "datagrams are written as they are made: see Builder::sink_queue"
    )]
    pub fn queue(self, datagrams: usize) -> Self {
        let _ = datagrams;
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

    pub(super) fn packet_limit(&self) -> usize {
        let (default, max) =
            if self.address.is_unix() { (8_192, MAX_UNIX_PACKET) } else { (1_432, MAX_UDP_PACKET) };
        self.max_packet.unwrap_or(default).clamp(64, max)
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
