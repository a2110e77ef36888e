//! The builder: explicit configuration, validated at [`Builder::build`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_core::{Level, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use crate::batch::Tag;
use crate::config::*;
use crate::error::BuildError;
use crate::fields;
use crate::flush::{Control, FlushGuard, Flusher, Lane};
use crate::layer::TallyLayer;
use crate::pipeline::Shared;
use crate::sink::summary::Totals;
use crate::sink::{JsonlSink, Sink};

/// The entry point of explicit configuration: [`Tally::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Tally;

impl Tally {
    /// A builder with every setting at its default (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Where the JSON-lines sink writes.
#[derive(Debug, Clone)]
enum JsonlTarget {
    Stdout,
    File(PathBuf),
}

/// Configures and builds a pipeline: a [`TallyLayer`] and its [`FlushGuard`].
///
/// Every setting has an environment variable, applied by [`Builder::from_env`] (see the README's
/// configuration table). Settings are applied in call order, so a setter called after
/// `from_env` overrides the environment.
///
/// # Default values
///
/// | setting | default | environment |
/// |---|---|---|
/// | [`rollup_interval`](Builder::rollup_interval) | 10 s | `TALLY_ROLLUP_INTERVAL` |
/// | [`flush_interval`](Builder::flush_interval) | 10 s | `TALLY_FLUSH_INTERVAL` |
/// | [`shutdown_timeout`](Builder::shutdown_timeout) | 2 s | `TALLY_SHUTDOWN_TIMEOUT` |
/// | [`manual`](Builder::manual) | off | `TALLY_MANUAL` |
/// | [`max_series_per_metric`](Builder::max_series_per_metric) | 2000 | `TALLY_MAX_SERIES_PER_METRIC` |
/// | [`max_series`](Builder::max_series) | 50,000 | `TALLY_MAX_SERIES` |
/// | [`idle_intervals`](Builder::idle_intervals) | 6 | `TALLY_IDLE_INTERVALS` |
/// | [`span_level`](Builder::span_level) | `INFO` | `TALLY_SPAN_LEVEL` |
/// | [`span_metric`](Builder::span_metric) | `span.duration` | `TALLY_SPAN_METRIC` |
/// | [`span_tags`](Builder::span_tags) | none | `TALLY_SPAN_TAGS` |
/// | [`busy_idle`](Builder::busy_idle) | off | `TALLY_BUSY_IDLE` |
/// | [`capture_span_fields`](Builder::capture_span_fields) | on | `TALLY_CAPTURE_SPAN_FIELDS` |
/// | [`send_default_pii`](Builder::send_default_pii) | off | `TALLY_SEND_DEFAULT_PII` |
/// | [`scrub_keys`](Builder::scrub_keys) | Sentry's default denylist | |
/// | [`error_level`](Builder::error_level) | `ERROR` | `TALLY_ERROR_LEVEL` |
/// | [`error_rate_limit`](Builder::error_rate_limit) | 10/s, burst 50, per callsite | `TALLY_ERROR_RATE`, `TALLY_ERROR_BURST` |
/// | [`error_queue`](Builder::error_queue) | 1024 | `TALLY_ERROR_QUEUE` |
/// | [`breadcrumbs`](Builder::breadcrumbs) | 20 per thread, `INFO` and above | `TALLY_BREADCRUMBS`, `TALLY_BREADCRUMB_LEVEL` |
/// | [`sink_queue`](Builder::sink_queue) | 64 batches | `TALLY_SINK_QUEUE` |
/// | [`self_metrics`](Builder::self_metrics) | on | `TALLY_SELF_METRICS` |
/// | sinks | JSON lines to stdout if none is set | `TALLY_JSONL` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tracing_subscriber::prelude::*;
///
/// let (tally, guard) = tracing_tally::Tally::builder()
///     .service("checkout")
///     .environment("prod")
///     .release("checkout@1.4.2")
///     .span_tags(["route"])
///     .rollup_interval(Duration::from_secs(10))
///     .jsonl_path(std::env::temp_dir().join("checkout-telemetry.jsonl"))
///     .build()?;
/// let subscriber = tracing_subscriber::registry().with(tally).with(tracing_subscriber::fmt::layer());
/// # drop((subscriber, guard));
/// # Ok::<(), tracing_tally::BuildError>(())
/// ```
#[must_use]
pub struct Builder {
    service: Option<String>,
    environment: Option<String>,
    release: Option<String>,
    host: Option<Option<String>>,
    tags: Vec<(String, String)>,
    rollup_interval: Duration,
    flush_interval: Duration,
    shutdown_timeout: Duration,
    manual: bool,
    span_level: LevelFilter,
    span_filter: Option<SpanFilter>,
    span_metric: String,
    span_tags: Vec<String>,
    busy_idle: bool,
    capture_span_fields: bool,
    send_default_pii: bool,
    scrub_keys: Vec<String>,
    error_level: LevelFilter,
    error_rate: u32,
    error_burst: u32,
    error_queue: usize,
    breadcrumbs: usize,
    breadcrumb_level: LevelFilter,
    max_series_per_metric: usize,
    max_series: usize,
    idle_intervals: u32,
    sink_queue: usize,
    self_metrics: bool,
    summary_output: Option<SummaryOutput>,
    debug: bool,
    traces_sample_rate: Option<f64>,
    traces_sampler: Option<Sampler>,
    max_spans: usize,
    min_span_duration: Duration,
    transaction_queue: usize,
    sessions: bool,
    request_sessions: Vec<String>,
    panic_hook: bool,
    attach_stacktrace: bool,
    pub(crate) dsc_extras: Vec<(String, String)>,
    #[cfg(feature = "sentry")]
    sentry: Option<crate::sink::SentryOptions>,
    #[cfg(feature = "statsd")]
    statsd: Vec<crate::sink::StatsdOptions>,
    #[cfg(feature = "datadog")]
    datadog: Option<crate::sink::DatadogOptions>,
    sinks: Vec<Box<dyn Sink>>,
    jsonl: Option<JsonlTarget>,
    pub(crate) env_errors: Vec<BuildError>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            service: None,
            environment: None,
            release: None,
            host: None,
            tags: Vec::new(),
            rollup_interval: DEFAULT_ROLLUP_INTERVAL,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            manual: false,
            span_level: LevelFilter::INFO,
            span_filter: None,
            span_metric: DEFAULT_SPAN_METRIC.to_owned(),
            span_tags: Vec::new(),
            busy_idle: false,
            capture_span_fields: true,
            send_default_pii: false,
            scrub_keys: Vec::new(),
            error_level: LevelFilter::ERROR,
            error_rate: DEFAULT_ERROR_RATE,
            error_burst: DEFAULT_ERROR_BURST,
            error_queue: DEFAULT_ERROR_QUEUE,
            breadcrumbs: DEFAULT_BREADCRUMBS,
            breadcrumb_level: LevelFilter::INFO,
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            max_series: DEFAULT_MAX_SERIES,
            idle_intervals: DEFAULT_IDLE_INTERVALS,
            sink_queue: DEFAULT_SINK_QUEUE,
            self_metrics: true,
            summary_output: None,
            debug: false,
            traces_sample_rate: None,
            traces_sampler: None,
            max_spans: DEFAULT_MAX_SPANS,
            min_span_duration: Duration::ZERO,
            transaction_queue: DEFAULT_TRANSACTION_QUEUE,
            sessions: true,
            request_sessions: Vec::new(),
            panic_hook: false,
            attach_stacktrace: false,
            dsc_extras: Vec::new(),
            #[cfg(feature = "sentry")]
            sentry: None,
            #[cfg(feature = "statsd")]
            statsd: Vec::new(),
            #[cfg(feature = "datadog")]
            datadog: None,
            sinks: Vec::new(),
            jsonl: None,
            env_errors: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Builder");
        debug
            .field("service", &self.service)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("rollup_interval", &self.rollup_interval)
            .field("flush_interval", &self.flush_interval)
            .field("manual", &self.manual)
            .field("sinks", &self.sinks.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>());
        #[cfg(feature = "sentry")]
        debug.field("sentry", &self.sentry);
        #[cfg(feature = "statsd")]
        debug.field("statsd", &self.statsd);
        #[cfg(feature = "datadog")]
        debug.field("datadog", &self.datadog);
        debug.finish_non_exhaustive()
    }
}

impl Builder {
    /// The service name, a global tag (`service:<name>`).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// The deployment environment, a global tag (`environment:<name>`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The release or version, a global tag (`release:<name>`).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The host name, a global tag (`host:<name>`); `None` leaves it out. By default the
    /// machine's host name.
    pub fn host(mut self, host: Option<String>) -> Self {
        self.host = Some(host);
        self
    }

    /// Adds a global tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The length of a roll-up interval: values are aggregated per series and interval.
    pub fn rollup_interval(mut self, interval: Duration) -> Self {
        self.rollup_interval = interval;
        self
    }

    /// How often completed intervals and captured errors go to the sinks.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How long dropping the [`FlushGuard`] may wait for the final flush.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Runs no background thread: nothing is exported until [`FlushGuard::flush`] (or
    /// [`crate::flush`]) runs, on the calling thread. For platforms that freeze the process
    /// between invocations (serverless functions): flush at the end of each invocation.
    pub fn manual(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Spans at this level or more severe are timed. `OFF` turns span timing off.
    pub fn span_level(mut self, level: LevelFilter) -> Self {
        self.span_level = level;
        self
    }

    /// Times only the spans for which `filter` returns `true` (decided once per callsite).
    pub fn span_filter(
        mut self,
        filter: impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.span_filter = Some(Arc::new(filter));
        self
    }

    /// The name of the span duration distribution (default `span.duration`).
    pub fn span_metric(mut self, name: impl Into<String>) -> Self {
        self.span_metric = name.into();
        self
    }

    /// Span fields that become tags of span timings and of the metric events inside the span
    /// (at most 64). A span's value is inherited by its descendants; an event's own field wins.
    pub fn span_tags<I>(mut self, fields: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.span_tags = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Also records `span.busy` and `span.idle` (time inside and outside the span).
    pub fn busy_idle(mut self, enabled: bool) -> Self {
        self.busy_idle = enabled;
        self
    }

    /// Keeps span field values, to attach them to captured errors (on by default).
    pub fn capture_span_fields(mut self, enabled: bool) -> Self {
        self.capture_span_fields = enabled;
        self
    }

    /// Keeps the values of fields that usually hold personal data (`ip_address`, `remote_addr`,
    /// `x_forwarded_for`, `x_real_ip`) instead of replacing them with `[Filtered]`. Off by
    /// default. Secrets (`password`, `token`, `api_key`, `authorization`, `cookie`, ... Sentry's
    /// default denylist) are filtered either way.
    ///
    /// Filtering applies to every field the layer keeps, before any sink sees it: metric tags,
    /// captured error fields and tags, breadcrumbs, span data. A field is filtered when its name
    /// (or its tag key, without `tags.`) equals a listed key, ignoring ASCII case.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (layer, guard) = tracing_tally::Tally::builder()
    ///     .sink(tracing_tally::sink::JsonlSink::stdout())
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(layer);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     // Exported as `password: "[Filtered]"`.
    ///     tracing::error!(user = "ada", password = "hunter2", "login failed");
    /// });
    /// # drop(guard);
    /// # Ok::<(), tracing_tally::BuildError>(())
    /// ```
    pub fn send_default_pii(mut self, send: bool) -> Self {
        self.send_default_pii = send;
        self
    }

    /// Filters the values of fields with these names too (ignoring ASCII case), on top of the
    /// default lists (see [`send_default_pii`](Self::send_default_pii)).
    pub fn scrub_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.scrub_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Events at this level or more severe are captured as errors. `OFF` turns capture off.
    pub fn error_level(mut self, level: LevelFilter) -> Self {
        self.error_level = level;
        self
    }

    /// Captures at most `per_second` errors per callsite on average, in bursts of up to `burst`.
    pub fn error_rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.error_rate = per_second;
        self.error_burst = burst;
        self
    }

    /// Capacity of the queue of captured errors waiting for the flusher.
    pub fn error_queue(mut self, capacity: usize) -> Self {
        self.error_queue = capacity;
        self
    }

    /// Keeps the last `count` events per thread (at `level` or more severe, without metric
    /// fields) as breadcrumbs of the next captured error. `0` turns breadcrumbs off.
    pub fn breadcrumbs(mut self, count: usize, level: LevelFilter) -> Self {
        self.breadcrumbs = count;
        self.breadcrumb_level = level;
        self
    }

    /// Live series per metric; further series go to the metric's overflow series.
    pub fn max_series_per_metric(mut self, limit: usize) -> Self {
        self.max_series_per_metric = limit;
        self
    }

    /// Live series across all metrics; further series go to their metric's overflow series.
    pub fn max_series(mut self, limit: usize) -> Self {
        self.max_series = limit;
        self
    }

    /// Series with no value for this many roll-up intervals are evicted (freeing their place).
    pub fn idle_intervals(mut self, intervals: u32) -> Self {
        self.idle_intervals = intervals;
        self
    }

    /// Capacity, in batches, of each sink's queue.
    pub fn sink_queue(mut self, capacity: usize) -> Self {
        self.sink_queue = capacity;
        self
    }

    /// Exports the pipeline's own metrics (`tally.dropped`, `tally.series.live`, ...) with every
    /// flush (on by default).
    pub fn self_metrics(mut self, enabled: bool) -> Self {
        self.self_metrics = enabled;
        self
    }

    /// Prints the summary table when the guard drops.
    pub fn summary_on_drop(mut self, output: Option<SummaryOutput>) -> Self {
        self.summary_output = output;
        self
    }

    /// Writes internal diagnostics (sink failures, slow shutdowns) to standard error.
    pub fn debug(mut self, enabled: bool) -> Self {
        self.debug = enabled;
        self
    }

    /// Records traces: each root span starts a trace that is kept with this probability
    /// (`0.0..=1.0`; the decision is made once, at the root, and passed to every span of the
    /// trace). A kept trace's spans are exported as one [`Transaction`](crate::sink::Transaction)
    /// when its root span closes. Unset (the default), no trace is recorded.
    pub fn traces_sample_rate(mut self, rate: f64) -> Self {
        self.traces_sample_rate = Some(rate);
        self
    }

    /// Decides per root span the probability of keeping its trace (overrides the sample rate).
    /// The closure runs once per root span; it must be cheap and must not panic.
    pub fn traces_sampler(
        mut self,
        sampler: impl Fn(&SamplingContext<'_>) -> f64 + Send + Sync + 'static,
    ) -> Self {
        self.traces_sampler = Some(Arc::new(sampler));
        self
    }

    /// Child spans kept per transaction (default 1000); the rest are counted as dropped.
    pub fn max_spans(mut self, max: usize) -> Self {
        self.max_spans = max;
        self
    }

    /// Child spans shorter than this are left out of transactions (their timings still count).
    pub fn min_span_duration(mut self, duration: Duration) -> Self {
        self.min_span_duration = duration;
        self
    }

    /// Capacity of the queue of finished transactions waiting for the flusher.
    pub fn transaction_queue(mut self, capacity: usize) -> Self {
        self.transaction_queue = capacity;
        self
    }

    /// Tracks the process as a release-health session (on by default; needs a release): it
    /// starts when the pipeline is built and ends, `exited` or `crashed`, when the guard drops.
    pub fn sessions(mut self, enabled: bool) -> Self {
        self.sessions = enabled;
        self
    }

    /// Spans with these names are request sessions: each one that closes counts as an exited
    /// or errored session (the counter `sessions`, tagged `mode:request` and `status`).
    pub fn request_sessions<I>(mut self, span_names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.request_sessions = span_names.into_iter().map(Into::into).collect();
        self
    }

    /// Installs a panic hook (chained to the existing one) that captures panics as unhandled
    /// errors, marks the process session crashed, and flushes within the shutdown timeout.
    pub fn panic_hook(mut self, enabled: bool) -> Self {
        self.panic_hook = enabled;
        self
    }

    /// Captures a stack trace with every error (costly: tens of microseconds per error on the
    /// emitting thread; symbols are resolved later, off that thread).
    pub fn attach_stacktrace(mut self, enabled: bool) -> Self {
        self.attach_stacktrace = enabled;
        self
    }

    /// Sends errors, transactions, sessions and metrics to Sentry (feature `sentry`).
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidConfig`] naming the malformed part of the DSN (its keys are never
    /// repeated in the message).
    #[cfg(feature = "sentry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
    pub fn sentry(self, dsn: &str) -> Result<Self, BuildError> {
        match crate::sink::SentryOptions::new(dsn) {
            Ok(options) => Ok(self.sentry_options(options)),
            Err(error) => {
                Err(BuildError::InvalidConfig { setting: "sentry", reason: error.to_string() })
            }
        }
    }

    /// Sends to Sentry with these options (feature `sentry`).
    #[cfg(feature = "sentry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
    pub fn sentry_options(mut self, options: crate::sink::SentryOptions) -> Self {
        self.dsc_extras = options.dsc_extras();
        self.sentry = Some(options);
        self
    }

    /// Sends metrics (and, to DogStatsD, captured errors as events) to a StatsD server or the
    /// Datadog Agent (feature `statsd`). Can be called more than once, for several servers.
    #[cfg(feature = "statsd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "statsd")))]
    pub fn statsd(mut self, options: crate::sink::StatsdOptions) -> Self {
        self.statsd.push(options);
        self
    }

    /// The StatsD servers configured (for the environment's settings to leave alone).
    #[cfg(feature = "statsd")]
    pub(crate) fn statsd_configured(&self) -> bool {
        !self.statsd.is_empty()
    }

    /// Sends metrics and captured errors to Datadog's HTTP API (feature `datadog`), no Agent
    /// needed; the site is `datadoghq.com` unless set with [`DatadogOptions`](crate::sink::DatadogOptions).
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidConfig`] saying what is wrong with the key (it is never repeated).
    #[cfg(feature = "datadog")]
    #[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
    pub fn datadog(self, api_key: &str) -> Result<Self, BuildError> {
        match crate::sink::DatadogOptions::new(api_key) {
            Ok(options) => Ok(self.datadog_options(options)),
            Err(error) => {
                Err(BuildError::InvalidConfig { setting: "datadog", reason: error.to_string() })
            }
        }
    }

    /// Sends to Datadog's HTTP API with these options (feature `datadog`).
    #[cfg(feature = "datadog")]
    #[cfg_attr(docsrs, doc(cfg(feature = "datadog")))]
    pub fn datadog_options(mut self, options: crate::sink::DatadogOptions) -> Self {
        self.datadog = Some(options);
        self
    }

    /// The Datadog options set so far (for the environment's settings to amend).
    #[cfg(feature = "datadog")]
    pub(crate) fn datadog_configured(&mut self) -> &mut Option<crate::sink::DatadogOptions> {
        &mut self.datadog
    }

    /// Sends to the DSN from the environment, keeping the other options already set.
    #[cfg(feature = "sentry")]
    pub(crate) fn sentry_dsn(self, dsn: crate::sink::Dsn) -> Self {
        let options = match &self.sentry {
            Some(options) => options.clone().with_dsn(dsn),
            None => crate::sink::SentryOptions::from_dsn(dsn),
        };
        self.sentry_options(options)
    }

    /// Adds a sink.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Writes JSON lines to standard output.
    pub fn jsonl_stdout(mut self) -> Self {
        self.jsonl = Some(JsonlTarget::Stdout);
        self
    }

    /// Appends JSON lines to a file (created if needed).
    pub fn jsonl_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.jsonl = Some(JsonlTarget::File(path.into()));
        self
    }

    /// Validates the configuration, starts the flusher and returns the layer and its guard.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidEnv`] for an unparsable environment variable,
    /// [`BuildError::InvalidConfig`] for a setting that cannot work (a zero interval or limit),
    /// [`BuildError::Sink`] when the JSON-lines file cannot be opened, [`BuildError::Spawn`]
    /// when a thread cannot be started.
    pub fn build<S>(mut self) -> Result<(TallyLayer<S>, FlushGuard), BuildError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(error) = self.env_errors.drain(..).next() {
            return Err(error);
        }
        let config = self.validate()?;
        let mut sinks = std::mem::take(&mut self.sinks);
        match self.jsonl.take() {
            Some(JsonlTarget::Stdout) => sinks.push(Box::new(JsonlSink::stdout())),
            Some(JsonlTarget::File(path)) => {
                let sink = JsonlSink::file(&path).map_err(|source| BuildError::Sink {
                    sink: format!("jsonl ({})", path.display()),
                    source,
                })?;
                sinks.push(Box::new(sink));
            }
            None if sinks.is_empty() && !self.has_network_sink() => {
                sinks.push(Box::new(JsonlSink::stdout()));
            }
            None => {}
        }
        #[cfg(feature = "statsd")]
        for options in &self.statsd {
            options.validate(config.rollup_interval)?;
        }
        let totals = Arc::new(Mutex::new(Totals::new(config.max_series, &config.span_metric)));
        let (shared, inbox) = Shared::new(config);
        #[cfg(feature = "sentry")]
        if let Some(options) = self.sentry.take() {
            let sink = crate::sink::sentry::SentrySink::new(options, shared.clone())
                .map_err(BuildError::Spawn)?;
            sinks.push(Box::new(sink));
        }
        #[cfg(feature = "datadog")]
        if let Some(options) = self.datadog.take() {
            sinks.push(Box::new(crate::sink::datadog::DatadogSink::new(options)));
        }
        #[cfg(feature = "statsd")]
        for options in self.statsd.drain(..) {
            let sink = crate::sink::statsd::StatsdSink::new(options, shared.clone())
                .map_err(BuildError::Spawn)?;
            sinks.push(Box::new(sink));
        }
        let handles = sinks
            .into_iter()
            .map(|sink| {
                if shared.config.manual {
                    Ok(Lane::inline(sink, shared.clone()))
                } else {
                    Lane::spawn(sink, shared.clone())
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuildError::Spawn)?;
        let flusher = Flusher::new(shared.clone(), inbox, handles, totals);
        let control = Control::start(flusher).map_err(BuildError::Spawn)?;
        if shared.config.panic_hook {
            crate::panic_hook::install(Arc::downgrade(&control));
        }
        Ok((TallyLayer::new(shared), FlushGuard::new(control)))
    }

    /// Whether a sink that sends over the network is configured.
    fn has_network_sink(&self) -> bool {
        #[cfg(feature = "sentry")]
        if self.sentry.is_some() {
            return true;
        }
        #[cfg(feature = "statsd")]
        if !self.statsd.is_empty() {
            return true;
        }
        #[cfg(feature = "datadog")]
        if self.datadog.is_some() {
            return true;
        }
        false
    }

    pub(crate) fn error_rate_setting(&self) -> u32 {
        self.error_rate
    }

    pub(crate) fn error_burst_setting(&self) -> u32 {
        self.error_burst
    }

    pub(crate) fn breadcrumbs_setting(&self) -> usize {
        self.breadcrumbs
    }

    pub(crate) fn breadcrumb_level_setting(&self) -> LevelFilter {
        self.breadcrumb_level
    }

    pub(crate) fn validate(&self) -> Result<Config, BuildError> {
        fn invalid(setting: &'static str, reason: impl Into<String>) -> BuildError {
            BuildError::InvalidConfig { setting, reason: reason.into() }
        }
        if self.rollup_interval < Duration::from_millis(1) {
            return Err(invalid("rollup_interval", "must be at least 1 ms"));
        }
        if self.rollup_interval > MAX_ROLLUP_INTERVAL {
            return Err(invalid("rollup_interval", "must be at most one day"));
        }
        if self.flush_interval < Duration::from_millis(1) {
            return Err(invalid("flush_interval", "must be at least 1 ms"));
        }
        for (setting, value) in [
            ("max_series_per_metric", self.max_series_per_metric),
            ("max_series", self.max_series),
            ("error_queue", self.error_queue),
            ("sink_queue", self.sink_queue),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        if self.idle_intervals == 0 {
            return Err(invalid("idle_intervals", "must be at least 1"));
        }
        if self.span_tags.len() > 64 {
            return Err(invalid("span_tags", "at most 64 span tags"));
        }
        if self.span_tags.iter().any(|t| t.is_empty()) {
            return Err(invalid("span_tags", "a span tag name is empty"));
        }
        let (span_metric, _) = fields::sanitize_name(&self.span_metric);
        if span_metric.is_empty() {
            return Err(invalid("span_metric", "must not be empty"));
        }
        let mut global = Vec::new();
        for (key, value) in [
            ("service", &self.service),
            ("environment", &self.environment),
            ("release", &self.release),
        ] {
            if let Some(value) = value {
                global.push((key.to_owned(), value.clone()));
            }
        }
        let host = match &self.host {
            Some(host) => host.clone(),
            None => detect_host(),
        };
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            global.push(("host".to_owned(), host));
        }
        for (key, value) in &self.tags {
            if key.is_empty() {
                return Err(invalid("tag", "a global tag key is empty"));
            }
            global.push((key.clone(), value.clone()));
        }
        let mut global_tags: Vec<Tag> = Vec::with_capacity(global.len());
        for (key, value) in global {
            let key = fields::sanitize_tag_key(&key);
            let (value, _) = fields::truncate_tag_value(&value);
            // A later tag with the same key replaces an earlier one.
            global_tags.retain(|t| t.key() != key);
            global_tags.push(Tag::new(&key, value));
        }
        global_tags.sort_by(|a, b| a.key().cmp(b.key()));
        let error_level = level_of(self.error_level);
        if let Some(rate) = self.traces_sample_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(invalid("traces_sample_rate", "must be between 0.0 and 1.0"));
            }
        }
        if self.transaction_queue == 0 {
            return Err(invalid("transaction_queue", "must be at least 1"));
        }
        let traces =
            (self.traces_sample_rate.is_some() || self.traces_sampler.is_some()).then(|| {
                TraceConfig {
                    sample_rate: self.traces_sample_rate.unwrap_or(0.0),
                    sampler: self.traces_sampler.clone(),
                    max_spans: self.max_spans,
                    min_span_duration: self.min_span_duration,
                    queue: self.transaction_queue,
                }
            });
        Ok(Config {
            global_tags: global_tags.into(),
            rollup_interval: self.rollup_interval,
            flush_interval: self.flush_interval,
            shutdown_timeout: self.shutdown_timeout,
            manual: self.manual,
            span_level: self.span_level,
            span_filter: self.span_filter.clone(),
            span_metric,
            span_tags: self.span_tags.clone(),
            busy_idle: self.busy_idle,
            capture_span_fields: self.capture_span_fields,
            scrubber: crate::scrub::Scrubber::new(self.send_default_pii, self.scrub_keys.clone()),
            error_level,
            error_rate: self.error_rate,
            error_burst: self.error_burst.max(1),
            error_queue: self.error_queue,
            breadcrumbs: self.breadcrumbs,
            breadcrumb_level: self.breadcrumb_level,
            max_series_per_metric: self.max_series_per_metric,
            max_series: self.max_series,
            idle_intervals: self.idle_intervals,
            sink_queue: self.sink_queue,
            self_metrics: self.self_metrics,
            summary_output: self.summary_output,
            debug: self.debug,
            traces,
            release: self.release.clone(),
            environment: self.environment.clone(),
            process_session: self.sessions && self.release.is_some(),
            request_sessions: self.request_sessions.clone(),
            panic_hook: self.panic_hook,
            attach_stacktrace: self.attach_stacktrace,
            dsc_extras: self.dsc_extras.clone(),
        })
    }
}

/// The most verbose level a filter lets through, if any.
fn level_of(filter: LevelFilter) -> Option<Level> {
    filter.into_level()
}

/// The machine's host name: `HOSTNAME`, else the kernel's.
fn detect_host() -> Option<String> {
    if let Some(host) = std::env::var("HOSTNAME").ok().filter(|h| !h.trim().is_empty()) {
        return Some(host.trim().to_owned());
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
