//! DSN handling: clear errors for every malformed part; the key never printed.

use tracing_subscriber::Registry;
use tracing_tally::sink::sentry::{Dsn, SentryOptions};
use tracing_tally::{BuildError, Tally};

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

#[test]
fn sentry_dsn_is_read_from_the_environment() {
    // Reads through a fake environment (the real one is process-global).
    let error = Tally::builder().sentry("gopher://k@h/1").unwrap_err();
    assert!(error.to_string().contains("scheme"));
}
