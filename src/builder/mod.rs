//! The builder: explicit configuration, validated at [`Builder::build`].
//!
//! Its setters write [`Settings`], where every setting is declared once; `build` validates them
//! into a [`Config`](crate::config::Config) (`Config::try_from`). The setters of the sinks and
//! `build` itself are in `sinks.rs`.

mod sinks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing_core::{LevelFilter, Metadata};

use crate::config::{SamplingContext, Settings};
use crate::error::BuildError;
use crate::sink::Sink;
use crate::summary::SummaryOutput;

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

/// Configures and builds a pipeline: a [`TallyLayer`](crate::TallyLayer) and its
/// [`FlushGuard`](crate::FlushGuard).
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
#[derive(Default)]
pub struct Builder {
    /// Every setting but the sinks.
    pub(crate) settings: Settings,
    #[cfg(feature = "sentry")]
    sentry: Option<crate::sink::sentry::SentryOptions>,
    #[cfg(feature = "statsd")]
    statsd: Vec<crate::sink::statsd::StatsdOptions>,
    #[cfg(feature = "datadog")]
    datadog: Option<crate::sink::datadog::DatadogOptions>,
    sinks: Vec<Box<dyn Sink>>,
    jsonl: Option<JsonlTarget>,
    /// Environment variables that could not be parsed: `build` fails with the first.
    pub(crate) env_errors: Vec<BuildError>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Builder");
        debug
            .field("service", &self.settings.service)
            .field("environment", &self.settings.environment)
            .field("release", &self.settings.release)
            .field("rollup_interval", &self.settings.rollup_interval)
            .field("flush_interval", &self.settings.flush_interval)
            .field("manual", &self.settings.manual)
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
        self.settings.service = Some(service.into());
        self
    }

    /// The deployment environment, a global tag (`environment:<name>`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.settings.environment = Some(environment.into());
        self
    }

    /// The release or version, a global tag (`release:<name>`).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.settings.release = Some(release.into());
        self
    }

    /// The host name, a global tag (`host:<name>`); `None` leaves it out. By default the
    /// machine's host name.
    pub fn host(mut self, host: Option<String>) -> Self {
        self.settings.host = Some(host);
        self
    }

    /// Adds a global tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.tags.push((key.into(), value.into()));
        self
    }

    /// The length of a roll-up interval: values are aggregated per series and interval.
    pub fn rollup_interval(mut self, interval: Duration) -> Self {
        self.settings.rollup_interval = interval;
        self
    }

    /// How often completed intervals and captured errors go to the sinks.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval;
        self
    }

    /// How long dropping the [`FlushGuard`](crate::FlushGuard) may wait for the final flush.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Runs no background thread: nothing is exported until
    /// [`FlushGuard::flush`](crate::FlushGuard::flush) (or [`crate::flush`]) runs, on the calling
    /// thread. For platforms that freeze the process
    /// between invocations (serverless functions): flush at the end of each invocation.
    pub fn manual(mut self) -> Self {
        self.settings.manual = true;
        self
    }

    /// Spans at this level or more severe are timed. `OFF` turns span timing off.
    pub fn span_level(mut self, level: LevelFilter) -> Self {
        self.settings.span_level = level;
        self
    }

    /// Times only the spans for which `filter` returns `true` (decided once per callsite).
    pub fn span_filter(
        mut self,
        filter: impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.settings.span_filter = Some(Arc::new(filter));
        self
    }

    /// The name of the span duration distribution (default `span.duration`).
    pub fn span_metric(mut self, name: impl Into<String>) -> Self {
        self.settings.span_metric = name.into();
        self
    }

    /// Span fields that become tags of span timings and of the metric events inside the span
    /// (at most 64). A span's value is inherited by its descendants; an event's own field wins.
    pub fn span_tags<I>(mut self, fields: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.settings.span_tags = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Also records `span.busy` and `span.idle` (time inside and outside the span).
    pub fn busy_idle(mut self, enabled: bool) -> Self {
        self.settings.busy_idle = enabled;
        self
    }

    /// Keeps span field values, to attach them to captured errors (on by default).
    pub fn capture_span_fields(mut self, enabled: bool) -> Self {
        self.settings.capture_span_fields = enabled;
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
        self.settings.send_default_pii = send;
        self
    }

    /// Filters the values of fields with these names too (ignoring ASCII case), on top of the
    /// default lists (see [`send_default_pii`](Self::send_default_pii)).
    pub fn scrub_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.settings.scrub_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Events at this level or more severe are captured as errors. `OFF` turns capture off.
    pub fn error_level(mut self, level: LevelFilter) -> Self {
        self.settings.error_level = level.into_level();
        self
    }

    /// Captures at most `per_second` errors per callsite on average, in bursts of up to `burst`.
    pub fn error_rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.settings.error_rate = per_second;
        self.settings.error_burst = burst;
        self
    }

    /// Capacity of the queue of captured errors waiting for the flusher.
    pub fn error_queue(mut self, capacity: usize) -> Self {
        self.settings.error_queue = capacity;
        self
    }

    /// Keeps the last `count` events per thread (at `level` or more severe, without metric
    /// fields) as breadcrumbs of the next captured error. `0` turns breadcrumbs off.
    pub fn breadcrumbs(mut self, count: usize, level: LevelFilter) -> Self {
        self.settings.breadcrumbs = count;
        self.settings.breadcrumb_level = level;
        self
    }

    /// Live series per metric; further series go to the metric's overflow series.
    pub fn max_series_per_metric(mut self, limit: usize) -> Self {
        self.settings.max_series_per_metric = limit;
        self
    }

    /// Live series across all metrics; further series go to their metric's overflow series.
    pub fn max_series(mut self, limit: usize) -> Self {
        self.settings.max_series = limit;
        self
    }

    /// Series with no value for this many roll-up intervals are evicted (freeing their place).
    pub fn idle_intervals(mut self, intervals: u32) -> Self {
        self.settings.idle_intervals = intervals;
        self
    }

    /// Capacity, in batches, of each sink's queue.
    pub fn sink_queue(mut self, capacity: usize) -> Self {
        self.settings.sink_queue = capacity;
        self
    }

    /// Exports the pipeline's own metrics (`tally.dropped`, `tally.series.live`, ...) with every
    /// flush (on by default).
    pub fn self_metrics(mut self, enabled: bool) -> Self {
        self.settings.self_metrics = enabled;
        self
    }

    /// Prints the summary table when the guard drops.
    pub fn summary_on_drop(mut self, output: Option<SummaryOutput>) -> Self {
        self.settings.summary_output = output;
        self
    }

    /// Writes internal diagnostics (sink failures, slow shutdowns) to standard error.
    pub fn debug(mut self, enabled: bool) -> Self {
        self.settings.debug = enabled;
        self
    }

    /// Records traces: each root span starts a trace that is kept with this probability
    /// (`0.0..=1.0`; the decision is made once, at the root, and passed to every span of the
    /// trace). A kept trace's spans are exported as one [`Transaction`](crate::sink::Transaction)
    /// when its root span closes. Unset (the default), no trace is recorded.
    pub fn traces_sample_rate(mut self, rate: f64) -> Self {
        self.settings.trace.sample_rate = rate;
        self.settings.record_traces = true;
        self
    }

    /// Decides per root span the probability of keeping its trace (overrides the sample rate).
    /// The closure runs once per root span; it must be cheap and must not panic.
    pub fn traces_sampler(
        mut self,
        sampler: impl Fn(&SamplingContext<'_>) -> f64 + Send + Sync + 'static,
    ) -> Self {
        self.settings.trace.sampler = Some(Arc::new(sampler));
        self.settings.record_traces = true;
        self
    }

    /// Child spans kept per transaction (default 1000); the rest are counted as dropped.
    pub fn max_spans(mut self, max: usize) -> Self {
        self.settings.trace.max_spans = max;
        self
    }

    /// Child spans shorter than this are left out of transactions (their timings still count).
    pub fn min_span_duration(mut self, duration: Duration) -> Self {
        self.settings.trace.min_span_duration = duration;
        self
    }

    /// Capacity of the queue of finished transactions waiting for the flusher, and of each
    /// sink's room for transactions (default 10,000; the queue is also bounded at 16 MiB).
    pub fn transaction_queue(mut self, capacity: usize) -> Self {
        self.settings.trace.queue = capacity;
        self
    }

    /// Tracks the process as a release-health session (on by default; needs a release): it
    /// starts when the pipeline is built and ends, `exited` or `crashed`, when the guard drops.
    pub fn sessions(mut self, enabled: bool) -> Self {
        self.settings.sessions = enabled;
        self
    }

    /// Spans with these names are request sessions: each one that closes counts as an exited
    /// or errored session (the counter `sessions`, tagged `mode:request` and `status`).
    pub fn request_sessions<I>(mut self, span_names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.settings.request_sessions = span_names.into_iter().map(Into::into).collect();
        self
    }

    /// Installs a panic hook (chained to the existing one) that captures panics as unhandled
    /// errors, marks the process session crashed, and flushes within the shutdown timeout.
    pub fn panic_hook(mut self, enabled: bool) -> Self {
        self.settings.panic_hook = enabled;
        self
    }

    /// Captures a stack trace with every error (costly: tens of microseconds per error on the
    /// emitting thread; symbols are resolved later, off that thread).
    pub fn attach_stacktrace(mut self, enabled: bool) -> Self {
        self.settings.attach_stacktrace = enabled;
        self
    }
}
