//! A serverless function: no background thread, and every invocation's telemetry exported
//! before the handler returns (the platform may freeze the instance right after).
//!
//! ```sh
//! cargo run --example serverless
//! ```
//!
//! Records go to standard output as JSON lines; with the `statsd` or `sentry` feature and
//! `DD_AGENT_HOST` or `SENTRY_DSN` set, they go there instead.

#![allow(clippy::print_stdout)] // an example program prints its results

use std::time::Duration;

use tracing::{info, info_span, instrument, warn};
use tracing_subscriber::prelude::*;
use tracing_tally::serverless;

#[instrument]
fn resize(image: &str, width: u32) -> Result<u64, String> {
    if width == 0 {
        return Err(format!("{image}: width must be positive"));
    }
    let bytes = u64::from(width) * 512;
    info!(histogram.output_size = bytes, format = "webp");
    Ok(bytes)
}

/// The function's handler: one invocation per event.
fn handler(event: (&str, u32)) -> Result<u64, String> {
    let _invocation = serverless::invocation().timeout(Duration::from_secs(1));
    let _span = info_span!("invocation", function = "thumbnailer").entered();
    info!(monotonic_counter.invocations = 1);
    let result = resize(event.0, event.1);
    if let Err(error) = &result {
        warn!(monotonic_counter.failures = 1, %error);
    }
    result
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tally, _guard) =
        tracing_tally::Tally::builder().manual().service("thumbnailer").from_env().build()?;
    tracing_subscriber::registry().with(tally).init();

    // The platform's event loop, simulated: each call exports its own records.
    for event in [("cat.png", 320), ("dog.png", 0), ("owl.png", 640)] {
        println!("-- invocation {event:?}");
        let outcome = handler(event);
        println!("-- returned {outcome:?}");
    }
    Ok(())
}
