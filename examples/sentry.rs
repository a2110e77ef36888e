//! Sends errors, a transaction with its spans, a release-health session and metrics to Sentry.
//!
//! ```sh
//! SENTRY_DSN=https://<key>@<org>.ingest.sentry.io/<project> \
//!     cargo run --release --features sentry --example sentry
//! ```
//!
//! Everything else comes from the environment as well (`SENTRY_RELEASE`, `SENTRY_ENVIRONMENT`,
//! `SENTRY_TRACES_SAMPLE_RATE`, `TALLY_*`); set `TALLY_DEBUG=1` to see what the sink does.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example program prints its results

use std::error::Error;
use std::fmt;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use tracing::{error, info, info_span, instrument, warn};
use tracing_subscriber::prelude::*;

/// A payment error caused by a timeout: an error chain of two.
#[derive(Debug)]
struct PaymentDeclined {
    source: std::io::Error,
}

impl fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment provider declined the charge")
    }
}

impl Error for PaymentDeclined {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

#[instrument(fields(sentry.op = "db", sentry.description = "SELECT * FROM carts WHERE id = $1"))]
fn load_cart(cart_id: u64) -> usize {
    thread::sleep(Duration::from_millis(12));
    info!(histogram.cart_items = 3, "cart loaded");
    3
}

#[instrument(fields(sentry.op = "http.client"))]
fn charge(cart_id: u64, amount_cents: u64) -> Result<(), PaymentDeclined> {
    thread::sleep(Duration::from_millis(30));
    if cart_id % 2 == 1 {
        let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "provider timed out");
        return Err(PaymentDeclined { source });
    }
    Ok(())
}

/// One checkout: a root span (the transaction) with two children, metrics, maybe an error.
fn checkout(cart_id: u64) {
    let request = info_span!("POST /checkout", sentry.op = "http.server", cart_id);
    let _entered = request.enter();
    info!(monotonic_counter.checkouts = 1, route = "/checkout");
    let items = load_cart(cart_id);
    match charge(cart_id, 1999 * items as u64) {
        Ok(()) => info!(monotonic_counter.payments = 1, outcome = "ok"),
        Err(err) => {
            warn!(cart_id, "retrying is not implemented in this example");
            error!(error = &err as &dyn Error, cart_id, "checkout failed");
            info!(monotonic_counter.payments = 1, outcome = "declined");
        }
    }
    info!(gauge.open_carts = 42 - cart_id);
}

fn main() -> ExitCode {
    if std::env::var_os("SENTRY_DSN").is_none() {
        eprintln!("set SENTRY_DSN to your project's DSN (https://<key>@<host>/<project id>)");
        return ExitCode::from(2);
    }
    let built = tracing_tally::Tally::builder()
        .service("checkout")
        .release(concat!("tally-sentry-example@", env!("CARGO_PKG_VERSION")))
        .environment("example")
        .traces_sample_rate(1.0)
        .sessions(true)
        .from_env() // SENTRY_DSN, and SENTRY_*/TALLY_* overrides of the settings above
        .build();
    let (tally, guard) = match built {
        Ok(built) => built,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry().with(tally).with(tracing_subscriber::fmt::layer()).init();

    for cart_id in 1..=4 {
        checkout(cart_id);
    }

    // Sends what is left and waits for Sentry's answers, at most 10 s.
    let delivered = guard.shutdown(Duration::from_secs(10));
    println!("delivered to Sentry: {delivered}");
    if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
