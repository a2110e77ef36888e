//! Sends a simulated service's metrics and errors to the Datadog Agent over DogStatsD.
//!
//! ```sh
//! cargo run --release --features statsd --example dogstatsd
//! ```
//!
//! The Agent's address comes from the environment as the official clients read it
//! (`DD_DOGSTATSD_URL`, or `DD_AGENT_HOST` and `DD_DOGSTATSD_PORT`; else the Agent's socket, else
//! `127.0.0.1:8125`); `DD_ENV`, `DD_SERVICE` and `DD_VERSION` become the unified service tags.
//! Without an Agent the datagrams are simply lost (UDP): set `TALLY_DEBUG=1` to see the sink's
//! diagnostics, or listen with `socat -u UDP-RECV:8125 -`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example program prints its results

use std::process::ExitCode;
use std::time::Duration;

use tracing::{error, info, instrument};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::statsd::StatsdOptions;

#[instrument]
fn handle(route: &'static str, attempt: u32) -> u16 {
    info!(monotonic_counter.requests = 1, route);
    info!(histogram.payload_bytes = 512 + 64 * attempt, route);
    let status = if attempt % 7 == 6 { 500 } else { 200 };
    if status == 500 {
        error!(route, attempt, "upstream timed out");
    }
    info!(monotonic_counter.responses = 1, route, status);
    status
}

fn main() -> ExitCode {
    let options = match StatsdOptions::dogstatsd() {
        Ok(options) => options.prefix("example."),
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    println!("sending to {}", options.address());
    let built = tracing_tally::Tally::builder()
        .service("dogstatsd-example")
        .rollup_interval(Duration::from_secs(2))
        .flush_interval(Duration::from_secs(2))
        .statsd(options)
        .from_env()
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

    let delivered = guard.flush(Duration::from_secs(2));
    print!("{}", guard.summary());
    println!("handed to the socket: {delivered}");
    ExitCode::SUCCESS
}
