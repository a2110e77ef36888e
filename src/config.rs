//! Validated, immutable configuration and its defaults.

use std::sync::Arc;
use std::time::Duration;

use tracing_core::{Level, LevelFilter, Metadata};

use crate::aggregate::tag::Tag;

/// Default length of a roll-up interval: metrics are aggregated per interval.
pub const DEFAULT_ROLLUP_INTERVAL: Duration = Duration::from_secs(10);
/// Longest roll-up interval accepted.
pub const MAX_ROLLUP_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Default time between flushes to the sinks.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default deadline for the final flush when the guard drops.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// Default limit of live series per metric; values of further series go to the overflow series.
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 2000;
/// Default limit of live series across all metrics.
pub const DEFAULT_MAX_SERIES: usize = 50_000;
/// Default number of idle roll-up intervals after which a series is evicted.
pub const DEFAULT_IDLE_INTERVALS: u32 = 6;
/// Default name of the span duration distribution.
pub const DEFAULT_SPAN_METRIC: &str = "span.duration";
/// Default number of breadcrumbs kept per thread.
pub const DEFAULT_BREADCRUMBS: usize = 20;
/// Default capacity of the error capture queue.
pub const DEFAULT_ERROR_QUEUE: usize = 1024;
/// Default sustained rate of captured errors per callsite, per second.
pub const DEFAULT_ERROR_RATE: u32 = 10;
/// Default burst of captured errors per callsite.
pub const DEFAULT_ERROR_BURST: u32 = 50;
/// Default capacity, in batches, of each sink's queue.
pub const DEFAULT_SINK_QUEUE: usize = 64;

/// Default largest number of child spans kept per transaction.
pub const DEFAULT_MAX_SPANS: usize = 1000;
/// Default capacity of the queue of finished transactions waiting for the flusher (and of each
/// sink's room for transactions). The queue is also bounded in bytes (16 MiB), whichever
/// comes first; a burst beyond it lowers the sample rate (backpressure).
pub const DEFAULT_TRANSACTION_QUEUE: usize = 10_000;

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

/// Where the summary table goes when the guard drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOutput {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The validated configuration of a pipeline.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) global_tags: Arc<[Tag]>,
    pub(crate) rollup_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) manual: bool,
    pub(crate) span_level: LevelFilter,
    pub(crate) span_filter: Option<SpanFilter>,
    pub(crate) span_metric: String,
    pub(crate) span_tags: Vec<String>,
    pub(crate) busy_idle: bool,
    pub(crate) capture_span_fields: bool,
    /// Decides which fields' values are replaced by `[Filtered]` before any sink sees them.
    pub(crate) scrubber: crate::scrub::Scrubber,
    pub(crate) error_level: Option<Level>,
    pub(crate) error_rate: u32,
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
    /// Trace recording; `None` when no sample rate or sampler is set.
    pub(crate) traces: Option<TraceConfig>,
    /// The release, needed by release health.
    pub(crate) release: Option<String>,
    /// The environment (for release health).
    pub(crate) environment: Option<String>,
    /// Whether a process session is tracked (needs a release).
    pub(crate) process_session: bool,
    /// Names of the spans that are request sessions.
    pub(crate) request_sessions: Vec<String>,
    pub(crate) panic_hook: bool,
    pub(crate) attach_stacktrace: bool,
    /// Entries a sink adds to the dynamic sampling context (the Sentry sink: `public_key`,
    /// `org_id`).
    pub(crate) dsc_extras: Vec<(String, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("global_tags", &self.global_tags)
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
            .field("traces", &self.traces.as_ref().map(|t| t.sample_rate))
            .field("process_session", &self.process_session)
            .field("request_sessions", &self.request_sessions)
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
