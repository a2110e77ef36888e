//! Settings of the Datadog sink.

use crate::sink::http::tls::ExtraRoots;
use std::fmt;
use std::time::Duration;

use super::api_key::{ApiKey, ApiKeyError};
use super::context::HostSetting;
use super::site::{self, EndpointError};
use crate::sink::http::spool::SpoolOptions;
use crate::sink::http::{HttpTransport, SharedTransport};

/// Where distributions (`histogram.`, `distribution.`, `timing.` metrics and span timings) go.
///
/// The default is [`DistributionMode::Points`]: Datadog distributions are computed from the
/// values themselves, so their percentiles can be aggregated across hosts and tags, which
/// pre-computed aggregates cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DistributionMode {
    /// Distribution points (`POST /api/v1/distribution_points`), with values rebuilt from the
    /// interval's sketch (see [`DatadogOptions::max_distribution_values`]).
    #[default]
    Points,
    /// Agent-style histogram aggregates as series (`<name>.max`, `<name>.median`, ...; see
    /// [`DatadogOptions::histogram_aggregates`]).
    Aggregates,
    /// Both.
    Both,
}

impl DistributionMode {
    pub(crate) fn points(self) -> bool {
        matches!(self, DistributionMode::Points | DistributionMode::Both)
    }

    pub(crate) fn aggregates(self) -> bool {
        matches!(self, DistributionMode::Aggregates | DistributionMode::Both)
    }
}

/// One series computed from a distribution when aggregates are sent, named
/// `<metric>.<suffix>`.
///
/// | aggregate | suffix | type | value |
/// |---|---|---|---|
/// | `Max` | `max` | gauge | the largest value (exact) |
/// | `Min` | `min` | gauge | the smallest value (exact) |
/// | `Median` | `median` | gauge | the 50th percentile (within 1%) |
/// | `Avg` | `avg` | gauge | sum / count (exact) |
/// | `Sum` | `sum` | gauge | the sum of the values (exact) |
/// | `Count` | `count` | **count**, with the interval | the number of values (exact) |
/// | `Percentile(95)` | `95percentile` | gauge | the 95th percentile (within 1%) |
///
/// The Agent sends `.count` as a rate (values per second); this sink sends the exact count of
/// the interval as a count, like its counters. Query it with `.as_count()` (the total) or
/// `.as_rate()` (per second) to compare with Agent histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HistogramAggregate {
    /// `<name>.max`.
    Max,
    /// `<name>.min`.
    Min,
    /// `<name>.median`.
    Median,
    /// `<name>.avg`.
    Avg,
    /// `<name>.sum`.
    Sum,
    /// `<name>.count`.
    Count,
    /// `<name>.<p>percentile` for `p` in 1 to 99 (values outside are clamped to that range).
    Percentile(u8),
}

impl HistogramAggregate {
    /// The Agent's default `histogram_aggregates` and `histogram_percentiles`: `max`, `median`,
    /// `avg`, `count` and `95percentile`.
    pub const AGENT_DEFAULTS: [HistogramAggregate; 5] = [
        HistogramAggregate::Max,
        HistogramAggregate::Median,
        HistogramAggregate::Avg,
        HistogramAggregate::Count,
        HistogramAggregate::Percentile(95),
    ];

    /// The suffix appended to the metric name (after a `.`).
    pub fn suffix(self) -> String {
        match self {
            HistogramAggregate::Max => "max".into(),
            HistogramAggregate::Min => "min".into(),
            HistogramAggregate::Median => "median".into(),
            HistogramAggregate::Avg => "avg".into(),
            HistogramAggregate::Sum => "sum".into(),
            HistogramAggregate::Count => "count".into(),
            HistogramAggregate::Percentile(p) => format!("{}percentile", p.clamp(1, 99)),
        }
    }
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// zlib format (RFC 1950), `Content-Encoding: deflate`: accepted by every metrics endpoint.
    #[default]
    Deflate,
    /// gzip, `Content-Encoding: gzip`, for series (distribution points stay deflate, which is all
    /// that endpoint accepts).
    Gzip,
    /// Uncompressed (for debugging through a proxy); bodies then stay under 460,800 bytes.
    None,
}

impl Compression {
    /// The `Content-Encoding` header value, if any.
    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            Compression::Deflate => Some("deflate"),
            Compression::Gzip => Some("gzip"),
            Compression::None => None,
        }
    }
}

/// Settings of the Datadog sink.
///
/// Only the API key is required. Defaults:
///
/// | setting | default |
/// |---|---|
/// | [`site`](Self::site) | `datadoghq.com` (`https://api.datadoghq.com`) |
/// | [`host`](Self::host) | the pipeline's `host` tag (the machine's name unless the builder changed it) |
/// | [`distributions`](Self::distributions) | [`DistributionMode::Points`] |
/// | [`histogram_aggregates`](Self::histogram_aggregates) | [`HistogramAggregate::AGENT_DEFAULTS`] |
/// | [`max_distribution_values`](Self::max_distribution_values) | 1,000 per point |
/// | [`send_errors`](Self::send_errors) | on |
/// | [`events_per_key`](Self::events_per_key) / [`max_events`](Self::max_events) | 5 / 100 per flush |
/// | [`compression`](Self::compression) | [`Compression::Deflate`] |
/// | [`timeout`](Self::timeout) / [`connect_timeout`](Self::connect_timeout) | 15 s / 5 s |
/// | [`max_retries`](Self::max_retries) | 3 |
/// | [`retry_buffer_bytes`](Self::retry_buffer_bytes) | 8 MiB |
/// | [`spool`](Self::spool) | none: payloads are kept in memory only |
/// | [`transport`](Self::transport) | a ureq agent (TLS with Mozilla's roots and those added) |
///
/// `Debug` never shows the API key.
///
/// ```
/// use std::time::Duration;
/// use tracing_tally::sink::datadog::{DatadogOptions, DistributionMode};
///
/// let options = DatadogOptions::new("0123456789abcdef0123456789abcdef")?
///     .site("datadoghq.eu")?
///     .distributions(DistributionMode::Both)
///     .timeout(Duration::from_secs(10));
/// assert_eq!(options.base_url(), "https://api.datadoghq.eu");
/// assert!(!format!("{options:?}").contains("0123456789abcdef"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct DatadogOptions {
    pub(crate) api_key: ApiKey,
    pub(crate) base_url: String,
    pub(crate) host: HostSetting,
    pub(crate) distributions: DistributionMode,
    pub(crate) aggregates: Vec<HistogramAggregate>,
    pub(crate) max_distribution_values: usize,
    pub(crate) send_errors: bool,
    pub(crate) events_per_key: usize,
    pub(crate) max_events: usize,
    pub(crate) compression: Compression,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) roots: ExtraRoots,
    pub(crate) max_retries: u32,
    pub(crate) retry_buffer_bytes: usize,
    pub(crate) spool: Option<SpoolOptions>,
    /// A transport to use instead of the default ureq agent.
    pub(crate) http: Option<SharedTransport>,
}

impl fmt::Debug for DatadogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatadogOptions")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("host", &self.host)
            .field("distributions", &self.distributions)
            .field("aggregates", &self.aggregates)
            .field("max_distribution_values", &self.max_distribution_values)
            .field("send_errors", &self.send_errors)
            .field("compression", &self.compression)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("roots", &self.roots)
            .field("spool", &self.spool)
            .field("transport", &self.http.as_ref().map_or("ureq", |_| "custom"))
            .finish_non_exhaustive()
    }
}

impl DatadogOptions {
    /// Options for an API key (32 lower-case hexadecimal digits; surrounding whitespace is
    /// ignored).
    ///
    /// # Errors
    ///
    /// An [`ApiKeyError`] saying what is wrong with the key, without repeating it.
    pub fn new(api_key: &str) -> Result<Self, ApiKeyError> {
        let base_url = site::site_url(site::DEFAULT_SITE).unwrap_or_default();
        Ok(DatadogOptions {
            api_key: ApiKey::parse(api_key)?,
            base_url,
            host: HostSetting::FromTags,
            distributions: DistributionMode::Points,
            aggregates: HistogramAggregate::AGENT_DEFAULTS.to_vec(),
            max_distribution_values: 1000,
            send_errors: true,
            events_per_key: 5,
            max_events: 100,
            compression: Compression::Deflate,
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            roots: ExtraRoots::default(),
            max_retries: 3,
            retry_buffer_bytes: 8 << 20,
            spool: None,
            http: None,
        })
    }

    /// The Datadog site (`DD_SITE`): `datadoghq.com`, `us3.datadoghq.com`, `us5.datadoghq.com`,
    /// `datadoghq.eu`, `ap1.datadoghq.com`, `ddog-gov.com`, or another well-formed domain. The
    /// API is then at `https://api.<site>`. Replaces a URL set before.
    ///
    /// # Errors
    ///
    /// [`EndpointError::EmptySite`] or [`EndpointError::InvalidSite`]: a site is two or more
    /// dot-separated labels of letters, digits and `-`, with an optional `:port`.
    pub fn site(mut self, site: &str) -> Result<Self, EndpointError> {
        self.base_url = site::site_url(site)?;
        Ok(self)
    }

    /// A full base URL instead of a site (`DD_URL`): a proxy, or `http://127.0.0.1:<port>` for
    /// tests. Request paths such as `/api/v2/series` are appended to it.
    ///
    /// # Errors
    ///
    /// An [`EndpointError`] naming the malformed part: scheme (`http`/`https` only), host, port,
    /// path; credentials in the URL are refused.
    pub fn url(mut self, url: &str) -> Result<Self, EndpointError> {
        self.base_url = site::base_url(url)?;
        Ok(self)
    }

    /// The API base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The host name series and events are reported under (a v2 `host` resource). `None`
    /// sends no host (serverless). By default, the pipeline's `host` tag (see
    /// [`Builder::host`](crate::Builder::host)). Either way, a metric's own `host` tag wins, as
    /// in DogStatsD.
    pub fn host(mut self, host: Option<String>) -> Self {
        self.host = match host {
            Some(host) if !host.is_empty() => HostSetting::Fixed(host),
            _ => HostSetting::Off,
        };
        self
    }

    /// Where distributions go (default [`DistributionMode::Points`]).
    pub fn distributions(mut self, mode: DistributionMode) -> Self {
        self.distributions = mode;
        self
    }

    /// The series sent for each distribution when aggregates are on (default
    /// [`HistogramAggregate::AGENT_DEFAULTS`]); duplicates are ignored.
    pub fn histogram_aggregates(
        mut self,
        aggregates: impl IntoIterator<Item = HistogramAggregate>,
    ) -> Self {
        self.aggregates.clear();
        for aggregate in aggregates {
            if !self.aggregates.iter().any(|a| a.suffix() == aggregate.suffix()) {
                self.aggregates.push(aggregate);
            }
        }
        self
    }

    /// Values per distribution point (default 1,000; at least 2 and at most 100,000, since a
    /// point must fit in one request). An interval with more values
    /// sends this many, at evenly spaced ranks of the interval's sketch, including the exact
    /// minimum and maximum: percentiles stay right, but Datadog's `count` and `sum` of the
    /// distribution then cover only the values sent. Send [`DistributionMode::Both`] and read
    /// `<name>.count` for exact counts.
    pub fn max_distribution_values(mut self, max: usize) -> Self {
        self.max_distribution_values = max.clamp(2, 100_000);
        self
    }

    /// Sends captured errors as Datadog events (on by default).
    pub fn send_errors(mut self, send: bool) -> Self {
        self.send_errors = send;
        self
    }

    /// Events sent per aggregation key and flush (default 5); the rest are dropped
    /// (`rate_limited`).
    pub fn events_per_key(mut self, max: usize) -> Self {
        self.events_per_key = max;
        self
    }

    /// Events sent per flush in all (default 100; each is one request); the rest are dropped
    /// (`rate_limited`).
    pub fn max_events(mut self, max: usize) -> Self {
        self.max_events = max;
        self
    }

    /// How request bodies are compressed (default [`Compression::Deflate`]).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Total timeout of one request (default 15 s). A pending flush's deadline shortens it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connection timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trusts the certificate authorities of `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks) besides Mozilla's root certificates: for an intake reached through a
    /// TLS-inspecting proxy or a private CA. Certificates are always verified; there is no
    /// option to turn that off.
    ///
    /// # Errors
    ///
    /// A [`CertificateError`](crate::sink::CertificateError) when `pem` holds no certificate or
    /// is not valid PEM.
    pub fn add_root_certificates(
        mut self,
        pem: &[u8],
    ) -> Result<Self, crate::sink::CertificateError> {
        self.roots = self.roots.add_pem(pem)?;
        Ok(self)
    }

    /// Immediate retries of a payload after a 408, 429, 5xx answer or a connection failure
    /// (default 3), with exponential backoff from 0.5 s; after that it waits in the retry
    /// buffer for the next flush.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Bytes of compressed payloads kept for a later retry while Datadog cannot be reached
    /// (default 8 MiB); the oldest are dropped first (`sink_error`).
    pub fn retry_buffer_bytes(mut self, bytes: usize) -> Self {
        self.retry_buffer_bytes = bytes;
        self
    }

    /// Has no effect any more: the sink sends on its lane and keeps no queue of payloads of its
    /// own. Batches wait in the lane's room, set with
    /// [`Builder::sink_queue`](crate::Builder::sink_queue); what does not fit is dropped
    /// (`sink_queue_full`).
    #[deprecated(note = "the Datadog sink has no payload queue: set `Builder::sink_queue`")]
    pub fn queue(self, capacity: usize) -> Self {
        let _ = capacity;
        self
    }

    /// Keeps what the intake could not take on disk instead of dropping it: payloads evicted
    /// from the retry buffer, and those still waiting at shutdown, are written to the spool
    /// (under `<dir>/datadog/`) and sent, oldest first, once a request succeeds again, at the
    /// next flush, or when the next process starts with the same directory. Points that aged
    /// out of the intake's window meanwhile are dropped (`sink_error`) rather than sent. Off by
    /// default. See [`SpoolOptions`] for the caps and the file format.
    ///
    /// ```
    /// use tracing_tally::sink::{SpoolOptions, datadog::DatadogOptions};
    ///
    /// let options = DatadogOptions::new("0123456789abcdef0123456789abcdef")?
    ///     .spool(SpoolOptions::new(std::env::temp_dir().join("my-app-spool")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool(mut self, spool: SpoolOptions) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Sends through `transport` instead of the default ureq agent: another HTTP client, or no
    /// network at all in a test or a benchmark. Retries, backoff, `Retry-After`, the circuit
    /// breaker, the retry buffer and the spool stay the sink's; the transport only moves one
    /// request and its answer. Clones of these options share the transport. The timeouts and
    /// root certificates set here configure the default agent only (a request still carries
    /// its timeout).
    ///
    /// ```
    /// use tracing_tally::sink::datadog::DatadogOptions;
    /// use tracing_tally::sink::http::{HttpError, HttpRequest, HttpResponse, HttpTransport};
    ///
    /// /// Accepts every payload, sending nothing (for a benchmark).
    /// struct Accept;
    ///
    /// impl HttpTransport for Accept {
    ///     fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
    ///         let _ = (request.url, request.body.len());
    ///         Ok(HttpResponse::new(202))
    ///     }
    /// }
    ///
    /// let options = DatadogOptions::new("0123456789abcdef0123456789abcdef")?.transport(Accept);
    /// assert!(format!("{options:?}").contains("custom"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.http = Some(SharedTransport::new(transport));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_follow_the_documented_table() {
        let options = DatadogOptions::new(KEY).unwrap();
        assert_eq!(options.base_url(), "https://api.datadoghq.com");
        assert_eq!(options.host, HostSetting::FromTags);
        assert_eq!(options.distributions, DistributionMode::Points);
        let suffixes: Vec<String> = options.aggregates.iter().map(|a| a.suffix()).collect();
        assert_eq!(suffixes, ["max", "median", "avg", "count", "95percentile"]);
        assert_eq!(options.compression, Compression::Deflate);
        assert_eq!(options.max_retries, 3);
    }

    #[test]
    fn site_and_url_replace_each_other() {
        let options = DatadogOptions::new(KEY).unwrap().url("http://127.0.0.1:9/").unwrap();
        assert_eq!(options.base_url(), "http://127.0.0.1:9");
        let options = options.site("us5.datadoghq.com").unwrap();
        assert_eq!(options.base_url(), "https://api.us5.datadoghq.com");
        assert!(DatadogOptions::new(KEY).unwrap().site("bad site").is_err());
    }

    #[test]
    fn host_none_or_empty_turns_the_host_off() {
        let options = DatadogOptions::new(KEY).unwrap();
        assert_eq!(options.clone().host(None).host, HostSetting::Off);
        assert_eq!(options.clone().host(Some(String::new())).host, HostSetting::Off);
        assert_eq!(options.host(Some("web".into())).host, HostSetting::Fixed("web".into()));
    }

    #[test]
    fn aggregates_are_deduplicated_and_percentiles_clamped() {
        let options = DatadogOptions::new(KEY).unwrap().histogram_aggregates([
            HistogramAggregate::Max,
            HistogramAggregate::Percentile(99),
            HistogramAggregate::Max,
            HistogramAggregate::Percentile(0),
            HistogramAggregate::Percentile(1),
        ]);
        let suffixes: Vec<String> = options.aggregates.iter().map(|a| a.suffix()).collect();
        assert_eq!(suffixes, ["max", "99percentile", "1percentile"]);
    }

    #[test]
    fn debug_hides_the_key() {
        let options = DatadogOptions::new(KEY).unwrap();
        let debug = format!("{options:?}");
        assert!(!debug.contains(KEY) && !debug.contains("0123"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }
}
