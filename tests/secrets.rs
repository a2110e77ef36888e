//! Secrets never leak: the Sentry DSN's key and the Datadog API key appear in no `Debug` or
//! `Display` output, no error message, no diagnostic log line and no JSON-lines output, even
//! while the backends fail and diagnostics are on.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use tracing::{error, info};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::{datadog::DatadogOptions, sentry::SentryOptions, statsd::StatsdOptions};
use tracing_tally::Tally;

#[path = "support/peers.rs"]
mod peers;

use peers::Receiver;

const SENTRY_KEY: &str = "5e17c0de5e17c0de5e17c0de5e17c0de";
const DATADOG_KEY: &str = "da7ad0900da7ad0900da7ad0900da7ad";
/// Set in the child process that runs the pipeline.
const CHILD: &str = "TALLY_SECRETS_CHILD";

/// The malformed Datadog key the tests pass: 30 of the key's digits and two that are not hex.
fn malformed_datadog_key() -> String {
    format!("{}zz", &DATADOG_KEY[..30])
}

fn assert_clean(text: &str) {
    // The malformed key cannot contain the whole key: look for the part it does carry (its
    // 30 digits), which covers the whole key too.
    for secret in [SENTRY_KEY, &DATADOG_KEY[..30]] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
}

/// Set in the child process: the port the parent's refusing receiver holds.
const CHILD_PORT: &str = "TALLY_SECRETS_PORT";

#[test]
fn debug_and_display_of_options_builder_guard_and_errors_hide_the_keys() {
    let refusing = Receiver::start_down();
    let port = refusing.port;
    let sentry = SentryOptions::new(&format!("http://{SENTRY_KEY}@127.0.0.1:{port}/42")).unwrap();
    let datadog =
        DatadogOptions::new(DATADOG_KEY).unwrap().url(&format!("http://127.0.0.1:{port}")).unwrap();
    let builder =
        Tally::builder().host(None).sentry_options(sentry.clone()).datadog_options(datadog.clone());
    assert_clean(&format!("{sentry:?} {datadog:?} {builder:?} {:?}", sentry.dsn()));
    assert_clean(&sentry.dsn().to_string());
    let (layer, guard) = builder.build::<tracing_subscriber::Registry>().unwrap();
    assert_clean(&format!("{layer:?} {guard:?} {:?}", guard.stats()));

    // Errors about malformed secrets do not echo them.
    let almost = malformed_datadog_key();
    let error = DatadogOptions::new(&almost).unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(&almost), "{text}");
    assert_clean(&text);
    let bad_dsn = format!("http://{SENTRY_KEY}@127.0.0.1:{port}/not-a-project");
    let error = SentryOptions::new(&bad_dsn).unwrap_err();
    assert_clean(&format!("{error} {error:?}"));
}

/// The child: every sink on, diagnostics on, backends refusing, an error with a key in it; and
/// the error of a build from malformed variables, written to standard error.
#[allow(clippy::print_stderr)]
fn run_pipeline(jsonl: &str) {
    let from_env = Tally::builder().from_env().build::<tracing_subscriber::Registry>().unwrap_err();
    eprintln!("from the environment: {from_env} / {from_env:?}");
    let port: u16 = std::env::var(CHILD_PORT).unwrap().parse().unwrap();
    let sentry = SentryOptions::new(&format!("http://{SENTRY_KEY}@127.0.0.1:{port}/42"))
        .unwrap()
        .max_retries(1);
    let datadog = DatadogOptions::new(DATADOG_KEY)
        .unwrap()
        .url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .max_retries(1);
    let statsd = StatsdOptions::dogstatsd_at(&format!("127.0.0.1:{port}")).unwrap();
    let (layer, guard) = Tally::builder()
        .host(None)
        .debug(true)
        .jsonl_path(jsonl)
        .sentry_options(sentry)
        .datadog_options(datadog)
        .statsd(statsd)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        info!(monotonic_counter.requests = 1, route = "/users");
        error!(api_key = DATADOG_KEY, "login failed");
    });
    let _ = guard.flush(Duration::from_secs(3));
    drop(guard);
}

#[test]
fn diagnostics_and_json_lines_output_hide_the_keys() {
    if let Ok(jsonl) = std::env::var(CHILD) {
        run_pipeline(&jsonl);
        return;
    }
    let dir = std::env::temp_dir().join(format!("tally-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("out.jsonl");
    // Holds a port and refuses connections on it: every backend fails.
    let refusing = Receiver::start_down();
    let port = refusing.port;
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "diagnostics_and_json_lines_output_hide_the_keys", "--nocapture"])
        .env(CHILD, &jsonl)
        .env(CHILD_PORT, port.to_string())
        .env("SENTRY_DSN", format!("http://{SENTRY_KEY}@127.0.0.1:{port}/not-a-project"))
        .env("DD_API_KEY", malformed_datadog_key())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stderr.contains("[tracing-tally]"), "diagnostics were written: {stderr}");
    assert!(stderr.contains("SENTRY_DSN"), "the build error names the variable: {stderr}");
    assert_clean(&stderr);
    assert_clean(&stdout);
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert!(lines.contains("login failed"), "the error was written: {lines}");
    assert_clean(&lines);
    let _ = std::fs::remove_dir_all(&dir);
}
