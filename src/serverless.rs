//! Serverless handlers: flush at the end of each invocation.
//!
//! Build the pipeline in manual mode ([`Builder::manual`](crate::Builder::manual): no background
//! thread, which a frozen function instance could not run anyway), then wrap each invocation.
//! When the outermost invocation ends, everything it recorded is exported on the calling thread
//! before the handler returns, so nothing waits in memory while the platform freezes the
//! instance. Invocations nested inside another (a wrapped handler calling a wrapped helper)
//! flush once, when the outermost one ends — the semantics of Datadog's ThreadStats Lambda
//! wrapper.
//!
//! ```
//! use tracing_tally::serverless;
//! # use tracing_subscriber::prelude::*;
//!
//! fn handler(order: u64) -> Result<(), String> {
//!     let _invocation = serverless::invocation(); // flushes when dropped, even on a panic
//!     tracing::info!(monotonic_counter.orders = 1, order);
//!     Ok(())
//! }
//!
//! let (tally, _guard) = tracing_tally::Tally::builder().manual().build()?;
//! tracing_subscriber::registry().with(tally).init();
//! handler(7).map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The count of invocations in progress is process-wide: with several invocations at once on
//! different threads (a server, not a function), the flush happens when the last one ends.
//! Async handlers hold the [`Invocation`] across their `.await`s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::flush::Control;

/// Invocations in progress.
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// One invocation in progress; the outermost one flushes the pipeline when dropped.
#[derive(Debug)]
#[must_use = "the invocation ends (and flushes) when this value is dropped"]
pub struct Invocation {
    timeout: Option<Duration>,
}

/// Starts an invocation. The flush at its end waits at most the pipeline's shutdown timeout
/// (2 s by default; see [`Invocation::timeout`]).
pub fn invocation() -> Invocation {
    DEPTH.fetch_add(1, Ordering::AcqRel);
    Invocation { timeout: None }
}

/// Runs `handler` as one invocation.
pub fn with_invocation<R>(handler: impl FnOnce() -> R) -> R {
    let _invocation = invocation();
    handler()
}

impl Invocation {
    /// The longest the flush at the end may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        if DEPTH.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let Some(control) = Control::current() else { return };
        let timeout = self.timeout.unwrap_or(control.shared().config.shutdown_timeout);
        let flushed = control.flush(timeout);
        if !flushed && control.shared().config.debug {
            crate::debug::log(format_args!("invocation flush did not complete within {timeout:?}"));
        }
    }
}
