//! DSN handling: clear errors for every malformed part; the key never printed.

use std::process::Command;
use std::time::Duration;

use tracing_subscriber::prelude::*;
use tracing_subscriber::Registry;
use tracing_tally::sink::sentry::{Dsn, SentryOptions};
use tracing_tally::{BuildError, Tally};

use crate::peers::{check, Receiver};

#[test]
fn malformed_dsns_fail_at_build_naming_the_part() {
    let cases = [
        ("", "empty"),
        ("public@host/42", "scheme"),
        ("ftp://public@host/42", "scheme"),
        ("https://host/42", "key"),
        ("https://public@/42", "host"),
        ("https://public@host:99999/42", "port"),
        ("https://public@host", "project"),
        ("https://public@host/", "project"),
        ("https://public@host/abc", "project"),
        ("https://public@host/42?x=1", "path"),
    ];
    for (dsn, part) in cases {
        let error = match Tally::builder().sentry(dsn) {
            Err(error) => error,
            Ok(builder) => match builder.build::<Registry>() {
                Err(error) => error,
                Ok(_) => panic!("{dsn:?} was accepted"),
            },
        };
        assert!(
            matches!(error, BuildError::InvalidConfig { setting: "sentry", .. }),
            "{dsn}: {error}"
        );
        let message = error.to_string().to_lowercase();
        assert!(message.contains(part), "{dsn:?}: {message:?} does not name the {part}");
    }
}

#[test]
fn the_key_never_appears_in_debug_display_or_errors() {
    let secret = "d41d8cd98f00b204e9800998ecf8427e";
    let dsn: Dsn = format!("https://{secret}:{secret}@o7.ingest.sentry.io/42").parse().unwrap();
    assert_eq!(dsn.org_id(), Some(7));
    let options = SentryOptions::new(&format!("https://{secret}@o7.ingest.sentry.io/42")).unwrap();
    let builder = Tally::builder().sentry_options(options.clone());
    for text in
        [format!("{dsn}"), format!("{dsn:?}"), format!("{options:?}"), format!("{builder:?}")]
    {
        assert!(!text.contains(secret), "{text}");
    }
    let bad = SentryOptions::new(&format!("https://{secret}@host/notanumber")).unwrap_err();
    assert!(!bad.to_string().contains(secret));
}

/// Set in the child process of `sentry_dsn_is_read_from_the_environment`.
const CHILD: &str = "TALLY_SENTRY_ENV_CHILD";

#[test]
fn sentry_dsn_is_read_from_the_environment() {
    if std::env::var_os(CHILD).is_some() {
        // The child: configured from its environment only.
        let (layer, guard) = Tally::builder().from_env().build().expect("build from the env");
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || tracing::error!("configured by env"));
        assert!(guard.flush(Duration::from_secs(10)));
        return;
    }
    // The environment is process-global: set it in a child process of this test binary, which
    // runs only this test, so no other test sees it.
    let receiver = Receiver::start();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "config::sentry_dsn_is_read_from_the_environment", "--nocapture"])
        .env(CHILD, "1")
        .env("SENTRY_DSN", receiver.dsn())
        .env("TALLY_MANUAL", "1")
        .env("SENTRY_ENVIRONMENT", "from-env")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let received = receiver.received();
    let event = received
        .iter()
        .find_map(|r| r.envelope().json("event"))
        .unwrap_or_else(|| panic!("no event reached the DSN's receiver: {received:?}"));
    assert_eq!(event["message"], "configured by env", "{event}");
    assert_eq!(event["environment"], "from-env", "{event}");
    for request in &received {
        assert_eq!(request.path(), "/api/42/envelope/", "the DSN's project");
        let auth = request.header("x-sentry-auth").unwrap_or_default();
        assert!(auth.contains("sentry_key=public"), "the DSN's key: {auth}");
        check(&request.body());
    }
}
