//! The default value of each [`Builder`](crate::Builder) setting that has a number or a name,
//! and the limits that validation applies.
//!
//! ```
//! use tracing_tally::defaults;
//!
//! // Twice the default series budget, for a service with many routes.
//! let builder = tracing_tally::Tally::builder().max_series(2 * defaults::MAX_SERIES);
//! # drop(builder);
//! ```

use std::time::Duration;

/// Default length of a roll-up interval: metrics are aggregated per interval.
pub const ROLLUP_INTERVAL: Duration = Duration::from_secs(10);
/// Longest roll-up interval accepted.
pub const MAX_ROLLUP_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Default time between flushes to the sinks.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default deadline for the final flush when the guard drops.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// Default limit of live series per metric; values of further series go to the overflow series.
pub const MAX_SERIES_PER_METRIC: usize = 2000;
/// Default limit of live series across all metrics.
pub const MAX_SERIES: usize = 50_000;
/// Default number of idle roll-up intervals after which a series is evicted.
pub const IDLE_INTERVALS: u32 = 6;
/// Default name of the span duration distribution.
pub const SPAN_METRIC: &str = "span.duration";
/// Default number of breadcrumbs kept per thread.
pub const BREADCRUMBS: usize = 20;
/// Default capacity of the error capture queue.
pub const ERROR_QUEUE: usize = 1024;
/// Default sustained rate of captured errors per callsite, per second.
pub const ERROR_RATE: u32 = 10;
/// Default burst of captured errors per callsite.
pub const ERROR_BURST: u32 = 50;
/// Default capacity, in batches, of each sink's queue.
pub const SINK_QUEUE: usize = 64;
/// Default largest number of child spans kept per transaction.
pub const MAX_SPANS: usize = 1000;
/// Default capacity of the queue of finished transactions waiting for the flusher (and of each
/// sink's room for transactions). The queue is also bounded in bytes (16 MiB), whichever
/// comes first; a burst beyond it lowers the sample rate (backpressure).
pub const TRANSACTION_QUEUE: usize = 10_000;
