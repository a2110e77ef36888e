//! Sends a simulated service's metrics and errors straight to Datadog's HTTP API (no Agent).
//!
//! ```sh
//! DD_API_KEY=<32 hex digits> DD_SITE=datadoghq.eu \
//!     cargo run --release --features datadog --example datadog_http
//! ```
//!
//! `DD_URL` overrides the site with a full base URL (a proxy, or a local receiver for tests).
//! `DD_ENV`, `DD_SERVICE` and `DD_VERSION` become the `env`, `service` and `version` tags.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example program prints its results

use std::process::ExitCode;
use std::time::Duration;

use tracing::{error, info, instrument};
use tracing_subscriber::prelude::*;

#[instrument]
fn handle(route: &'static str, attempt: u32) -> u16 {
    info!(monotonic_counter.requests = 1, route);
    info!(histogram.payload_bytes = 512 + 64 * attempt, route);
    let status = if attempt % 7 == 6 { 502 } else { 200 };
    if status == 502 {
        error!(route, attempt, fingerprint = "upstream-timeout", "upstream timed out");
    }
    info!(monotonic_counter.responses = 1, route, status);
    status
}

fn main() -> ExitCode {
    if std::env::var_os("DD_API_KEY").is_none() && std::env::var_os("DATADOG_API_KEY").is_none() {
        eprintln!(
            "set DD_API_KEY to a Datadog API key (and DD_SITE to your site, e.g. datadoghq.eu)"
        );
        return ExitCode::from(2);
    }
    let built = tracing_tally::Tally::builder()
        .service("datadog-example")
        .environment("example")
        .from_env() // DD_API_KEY, DD_SITE or DD_URL, DD_ENV, DD_SERVICE, DD_VERSION, TALLY_*
        .build();
    let (tally, guard) = match built {
        Ok(built) => built,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry().with(tally).init();

    for attempt in 0..50 {
        let route = ["/users", "/orders"][attempt as usize % 2];
        handle(route, attempt);
        info!(gauge.queue_depth = attempt % 9);
        info!(set.active_users = attempt % 13);
    }

    // Sends everything and waits for the intake's answers, at most 10 s.
    let delivered = guard.shutdown(Duration::from_secs(10));
    println!("delivered to Datadog: {delivered}");
    if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
