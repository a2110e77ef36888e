//! One-call set-up from the environment, and the global flush.
//!
//! `init` and `try_init` need the `init` feature: it brings tracing-subscriber's `fmt`, `ansi`
//! and `env-filter`, which a user of the bare layer does not need.

use std::time::Duration;

#[cfg(feature = "init")]
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

use crate::flush::Control;
#[cfg(feature = "init")]
use crate::{builder::Tally, error::BuildError, flush::FlushGuard};

/// Configures tracing-tally from the environment and installs it as the global default
/// subscriber: a registry with the tally layer, plus a `fmt` layer on standard error filtered
/// by `RUST_LOG` when `RUST_LOG` is set.
///
/// Needs the `init` feature (on by default).
///
/// # Errors
///
/// Any [`BuildError`] of [`Builder::build`](crate::Builder::build) (an invalid variable names
/// itself), and [`BuildError::AlreadyInitialized`] when a global subscriber is already set.
#[cfg(feature = "init")]
pub fn try_init() -> Result<FlushGuard, BuildError> {
    if tracing_core::dispatcher::has_been_set() {
        return Err(BuildError::AlreadyInitialized);
    }
    let (tally, guard) = Tally::builder().from_env().build()?;
    let fmt = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()).map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(EnvFilter::from_default_env())
    });
    tracing_subscriber::registry()
        .with(tally)
        .with(fmt)
        .try_init()
        .map_err(|_| BuildError::AlreadyInitialized)?;
    Ok(guard)
}

/// [`try_init`], panicking with the error's message when set-up fails. Needs the `init` feature
/// (on by default).
///
/// ```no_run
/// let _guard = tracing_tally::init();
/// tracing::info!(monotonic_counter.started = 1);
/// // the guard flushes when it goes out of scope
/// ```
///
/// # Panics
///
/// When [`try_init`] fails: an environment variable cannot be parsed, the JSON-lines file cannot
/// be opened, or a global subscriber is already set.
#[cfg(feature = "init")]
#[allow(clippy::panic)]
pub fn init() -> FlushGuard {
    match try_init() {
        Ok(guard) => guard,
        Err(error) => panic!("tracing_tally::init: {error}"),
    }
}

/// Exports everything recorded so far by the most recently built pipeline and waits until its
/// sinks have it. Returns `true` if that happened within `timeout`; `false` if it did not, or if
/// no pipeline is running.
///
/// For serverless handlers: call it at the end of each invocation (with
/// [`Builder::manual`](crate::Builder::manual), the work runs on the calling thread).
pub fn flush(timeout: Duration) -> bool {
    Control::current().is_some_and(|control| control.flush(timeout))
}
