//! Sensitive values never leave the layer: fields named like secrets (Sentry's default
//! denylist) or personal data (unless `send_default_pii`) reach the sinks as `[Filtered]`, in
//! metric tags, captured error fields and tags, breadcrumbs and span data.

use tracing::{error, info, info_span};
use tracing_tally::sink::FieldValue;
use tracing_tally::Tally;

use crate::support::{has_tags, Harness};

const FILTERED: &str = "[Filtered]";

fn text(fields: &[(&'static str, FieldValue)], name: &str) -> Option<String> {
    fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
}

#[test]
fn secrets_are_filtered_everywhere_by_default() {
    let h = Harness::new(Tally::builder().manual().span_tags(["token"]));
    h.run(|| {
        let span = info_span!("checkout", token = "span-secret", order = 7);
        let _entered = span.enter();
        info!(password = "crumb-secret", user = "ada", "logging in");
        for secret in ["a", "b", "c"] {
            info!(monotonic_counter.logins = 1, api_key = secret, route = "/login");
        }
        error!(
            authorization = "Bearer error-secret",
            tags.session = "tag-secret",
            ip_address = "192.0.2.1",
            user = "ada",
            "login failed"
        );
    });
    h.flush();

    let logins = h.capture.named("logins");
    assert_eq!(logins.len(), 1, "a filtered tag adds no series: {logins:?}");
    assert!(has_tags(&logins[0], &[("api_key", FILTERED), ("route", "/login")]));

    let errors = h.capture.errors();
    let event = &errors[0];
    assert_eq!(text(&event.fields, "authorization").as_deref(), Some(FILTERED));
    assert_eq!(text(&event.fields, "ip_address").as_deref(), Some(FILTERED), "PII by default");
    assert_eq!(text(&event.fields, "user").as_deref(), Some("ada"), "the rest is kept");
    let session = event.tags.iter().find(|t| t.key() == "session").map(|t| t.value());
    assert_eq!(session, Some(FILTERED));
    let crumb = &event.breadcrumbs[0];
    assert_eq!(text(&crumb.fields, "password").as_deref(), Some(FILTERED));
    assert_eq!(text(&crumb.fields, "user").as_deref(), Some("ada"));
    let span = &event.spans[0];
    assert_eq!(text(&span.fields, "token").as_deref(), Some(FILTERED));
    assert_eq!(text(&span.fields, "order").as_deref(), Some("7"));
    let durations = h.capture.named("span.duration");
    assert!(!durations.is_empty(), "the span's duration was recorded");
    assert!(durations.iter().all(|r| has_tags(r, &[("token", FILTERED)])), "{durations:?}");

    let everything = format!("{:?}", h.capture.batches());
    for secret in ["span-secret", "crumb-secret", "error-secret", "tag-secret", "192.0.2.1"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[test]
fn personal_data_can_be_sent_and_more_keys_filtered() {
    let h = Harness::new(Tally::builder().manual().send_default_pii(true).scrub_keys(["email"]));
    h.run(|| {
        error!(
            ip_address = "192.0.2.1",
            email = "ada@example.com",
            secret = "s",
            Api_Key = "k",
            Email = "E",
            email_address = "e",
            "failed"
        )
    });
    h.flush();
    let event = &h.capture.errors()[0];
    assert_eq!(text(&event.fields, "ip_address").as_deref(), Some("192.0.2.1"));
    assert_eq!(text(&event.fields, "email").as_deref(), Some(FILTERED), "an extra key");
    assert_eq!(text(&event.fields, "Api_Key").as_deref(), Some(FILTERED), "any case");
    assert_eq!(text(&event.fields, "Email").as_deref(), Some(FILTERED), "an extra key, any case");
    assert_eq!(text(&event.fields, "email_address").as_deref(), Some("e"), "whole names only");
    assert_eq!(text(&event.fields, "secret").as_deref(), Some(FILTERED), "secrets always");
}
