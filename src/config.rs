//! The pipeline's settings, declared once, and their validation.
//!
//! The [`Builder`](crate::Builder) collects [`Settings`]; [`Config::try_from`] checks them and
//! derives what the pipeline reads at run time (the global tags, the scrubber, trace recording).
//! A validated [`Config`] dereferences to its settings, so a setting has one name and one type
//! from the setter to the code that uses it.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tracing_core::{Level, LevelFilter, Metadata};

use crate::aggregate::tag::Tag;
use crate::defaults;
use crate::error::BuildError;
use crate::fields;
use crate::scrub::Scrubber;
use crate::summary::SummaryOutput;

/// A predicate on span metadata (the span filter).
pub(crate) type SpanFilter = Arc<dyn Fn(&Metadata<'_>) -> bool + Send + Sync>;

/// What a traces sampler decides from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SamplingContext<'a> {
    /// The root span's callsite.
    pub metadata: &'a Metadata<'a>,
    /// The upstream service's decision, when the trace was continued from incoming headers.
    pub parent_sampled: Option<bool>,
}

/// A traces sampler: the probability (`0.0..=1.0`) that a trace is recorded.
pub(crate) type Sampler = Arc<dyn Fn(&SamplingContext<'_>) -> f64 + Send + Sync>;

/// Settings of trace (transaction) recording.
#[derive(Clone)]
pub(crate) struct TraceConfig {
    pub(crate) sample_rate: f64,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) max_spans: usize,
    pub(crate) min_span_duration: Duration,
    pub(crate) queue: usize,
}

/// Every setting of a pipeline, as the builder's setters leave it (each setter's documentation
/// says what its setting does). After validation, inside a [`Config`], the same fields hold the
/// checked values.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) service: Option<String>,
    /// The release, a global tag; release health needs it.
    pub(crate) release: Option<String>,
    /// The environment, a global tag and an attribute of release health.
    pub(crate) environment: Option<String>,
    /// `None`: the machine's host name; `Some(None)`: no host tag.
    pub(crate) host: Option<Option<String>>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) rollup_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) manual: bool,
    pub(crate) span_level: LevelFilter,
    pub(crate) span_filter: Option<SpanFilter>,
    /// Sanitized like a field's metric name by validation.
    pub(crate) span_metric: String,
    pub(crate) span_tags: Vec<String>,
    pub(crate) busy_idle: bool,
    pub(crate) capture_span_fields: bool,
    pub(crate) send_default_pii: bool,
    pub(crate) scrub_keys: Vec<String>,
    /// `None` turns capture off (`LevelFilter::OFF`).
    pub(crate) error_level: Option<Level>,
    pub(crate) error_rate: u32,
    /// At least 1 after validation: a zero burst would never let an error through.
    pub(crate) error_burst: u32,
    pub(crate) error_queue: usize,
    pub(crate) breadcrumbs: usize,
    pub(crate) breadcrumb_level: LevelFilter,
    pub(crate) max_series_per_metric: usize,
    pub(crate) max_series: usize,
    pub(crate) idle_intervals: u32,
    pub(crate) sink_queue: usize,
    pub(crate) self_metrics: bool,
    pub(crate) summary_output: Option<SummaryOutput>,
    pub(crate) debug: bool,
    /// Whether traces are recorded: a sample rate or a sampler was set.
    pub(crate) record_traces: bool,
    pub(crate) trace: TraceConfig,
    /// Whether a process session is tracked (when there is a release).
    pub(crate) sessions: bool,
    /// Names of the spans that are request sessions.
    pub(crate) request_sessions: Vec<String>,
    pub(crate) panic_hook: bool,
    pub(crate) attach_stacktrace: bool,
    /// Entries a sink adds to the dynamic sampling context (the Sentry sink: `public_key`,
    /// `org_id`).
    pub(crate) dsc_extras: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            service: None,
            release: None,
            environment: None,
            host: None,
            tags: Vec::new(),
            rollup_interval: defaults::ROLLUP_INTERVAL,
            flush_interval: defaults::FLUSH_INTERVAL,
            shutdown_timeout: defaults::SHUTDOWN_TIMEOUT,
            manual: false,
            span_level: LevelFilter::INFO,
            span_filter: None,
            span_metric: defaults::SPAN_METRIC.to_owned(),
            span_tags: Vec::new(),
            busy_idle: false,
            capture_span_fields: true,
            send_default_pii: false,
            scrub_keys: Vec::new(),
            error_level: Some(Level::ERROR),
            error_rate: defaults::ERROR_RATE,
            error_burst: defaults::ERROR_BURST,
            error_queue: defaults::ERROR_QUEUE,
            breadcrumbs: defaults::BREADCRUMBS,
            breadcrumb_level: LevelFilter::INFO,
            max_series_per_metric: defaults::MAX_SERIES_PER_METRIC,
            max_series: defaults::MAX_SERIES,
            idle_intervals: defaults::IDLE_INTERVALS,
            sink_queue: defaults::SINK_QUEUE,
            self_metrics: true,
            summary_output: None,
            debug: false,
            record_traces: false,
            trace: TraceConfig {
                sample_rate: 0.0,
                sampler: None,
                max_spans: defaults::MAX_SPANS,
                min_span_duration: Duration::ZERO,
                queue: defaults::TRANSACTION_QUEUE,
            },
            sessions: true,
            request_sessions: Vec::new(),
            panic_hook: false,
            attach_stacktrace: false,
            dsc_extras: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The span filter and the sampler are closures: only whether they are set is shown.
        f.debug_struct("Settings")
            .field("service", &self.service)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("rollup_interval", &self.rollup_interval)
            .field("flush_interval", &self.flush_interval)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("manual", &self.manual)
            .field("span_level", &self.span_level)
            .field("span_filter", &self.span_filter.is_some())
            .field("span_metric", &self.span_metric)
            .field("span_tags", &self.span_tags)
            .field("error_level", &self.error_level)
            .field("breadcrumbs", &self.breadcrumbs)
            .field("max_series_per_metric", &self.max_series_per_metric)
            .field("max_series", &self.max_series)
            .field("record_traces", &self.record_traces)
            .field("sessions", &self.sessions)
            .field("request_sessions", &self.request_sessions)
            .finish_non_exhaustive()
    }
}

/// The validated configuration of a pipeline: the checked [`Settings`] (reached through
/// `Deref`) and what is derived from them once, at build time.
#[derive(Clone)]
pub(crate) struct Config {
    settings: Settings,
    /// Service, environment, release, host and the configured tags, sanitized, sorted by key,
    /// the last of a key winning.
    pub(crate) global_tags: Arc<[Tag]>,
    /// Decides which fields' values are replaced by `[Filtered]` before any sink sees them.
    pub(crate) scrubber: Scrubber,
    /// Trace recording; `None` when no sample rate or sampler is set.
    pub(crate) traces: Option<TraceConfig>,
    /// Whether a process session is tracked (sessions on, and a release to attribute it to).
    pub(crate) process_session: bool,
}

impl Deref for Config {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("settings", &self.settings)
            .field("global_tags", &self.global_tags)
            .field("traces", &self.traces.as_ref().map(|t| t.sample_rate))
            .field("process_session", &self.process_session)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The most verbose level at which an event interests the layer without metric fields.
    pub(crate) fn event_level(&self) -> LevelFilter {
        let errors = self.error_level.map_or(LevelFilter::OFF, LevelFilter::from_level);
        let breadcrumbs =
            if self.breadcrumbs > 0 { self.breadcrumb_level } else { LevelFilter::OFF };
        errors.max(breadcrumbs)
    }
}

/// A [`BuildError::InvalidConfig`] for `setting`.
fn invalid(setting: &'static str, reason: impl Into<String>) -> BuildError {
    BuildError::InvalidConfig { setting, reason: reason.into() }
}

impl TryFrom<Settings> for Config {
    type Error = BuildError;

    /// Checks every setting (the first one that cannot work is the error) and derives the
    /// run-time forms.
    fn try_from(mut settings: Settings) -> Result<Config, BuildError> {
        let s = &mut settings;
        if s.rollup_interval < Duration::from_millis(1) {
            return Err(invalid("rollup_interval", "must be at least 1 ms"));
        }
        if s.rollup_interval > defaults::MAX_ROLLUP_INTERVAL {
            return Err(invalid("rollup_interval", "must be at most one day"));
        }
        if s.flush_interval < Duration::from_millis(1) {
            return Err(invalid("flush_interval", "must be at least 1 ms"));
        }
        for (setting, value) in [
            ("max_series_per_metric", s.max_series_per_metric),
            ("max_series", s.max_series),
            ("error_queue", s.error_queue),
            ("sink_queue", s.sink_queue),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        if s.idle_intervals == 0 {
            return Err(invalid("idle_intervals", "must be at least 1"));
        }
        if s.span_tags.len() > 64 {
            return Err(invalid("span_tags", "at most 64 span tags"));
        }
        if s.span_tags.iter().any(|t| t.is_empty()) {
            return Err(invalid("span_tags", "a span tag name is empty"));
        }
        let (span_metric, _) = fields::sanitize_name(&s.span_metric);
        if span_metric.is_empty() {
            return Err(invalid("span_metric", "must not be empty"));
        }
        s.span_metric = span_metric;
        let global_tags = global_tags(s)?;
        // Unset, the rate is 0.0: the check applies to a rate that was set, as it should.
        if !(0.0..=1.0).contains(&s.trace.sample_rate) {
            return Err(invalid("traces_sample_rate", "must be between 0.0 and 1.0"));
        }
        if s.trace.queue == 0 {
            return Err(invalid("transaction_queue", "must be at least 1"));
        }
        s.error_burst = s.error_burst.max(1);
        Ok(Config {
            global_tags,
            scrubber: Scrubber::new(s.send_default_pii, s.scrub_keys.clone()),
            traces: s.record_traces.then(|| s.trace.clone()),
            process_session: s.sessions && s.release.is_some(),
            settings,
        })
    }
}

/// The global tags: service, environment, release, host, then the configured tags; keys
/// sanitized and values cut like fields', a later tag replacing an earlier one with its key.
fn global_tags(s: &Settings) -> Result<Arc<[Tag]>, BuildError> {
    let mut global = Vec::new();
    for (key, value) in
        [("service", &s.service), ("environment", &s.environment), ("release", &s.release)]
    {
        if let Some(value) = value {
            global.push((key.to_owned(), value.clone()));
        }
    }
    let host = match &s.host {
        Some(host) => host.clone(),
        None => detect_host(),
    };
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        global.push(("host".to_owned(), host));
    }
    for (key, value) in &s.tags {
        if key.is_empty() {
            return Err(invalid("tag", "a global tag key is empty"));
        }
        global.push((key.clone(), value.clone()));
    }
    let mut global_tags: Vec<Tag> = Vec::with_capacity(global.len());
    for (key, value) in global {
        let key = fields::sanitize_tag_key(&key);
        let (value, _) = fields::truncate_tag_value(&value);
        global_tags.retain(|t| t.key() != key);
        global_tags.push(Tag::new(&key, value));
    }
    global_tags.sort_by(|a, b| a.key().cmp(b.key()));
    Ok(global_tags.into())
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
