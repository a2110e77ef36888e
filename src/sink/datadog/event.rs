//! Captured errors as Datadog events (`POST /api/v1/events`, one event per request).
//!
//! | field | from |
//! |---|---|
//! | `title` | the message and the error (`"<message>: <error>"`), or either alone, or `"<level> in <target>"`; one line, at most 100 characters |
//! | `text` | plain text: the message, the error chain, the location, the enclosing spans, the trace and thread, then the fields (each cut to 500 characters); at most 4,000 characters |
//! | `alert_type` | `error` (`warning` for a warning, `info` below) |
//! | `aggregation_key` | the `fingerprint` field, else `<target>@<file>:<line>`; at most 100 characters (longer keys keep their start and end in a hash) |
//! | `source_type_name` | `my_apps` (Datadog's source for custom applications) |
//! | `date_happened` | when the error was captured (Unix seconds) |
//! | `host`, `tags` | as for series (see [`super::context`]) |
//!
//! Text is plain rather than Datadog's `%%%` markdown, so field values can never be read as
//! markup. Each flush sends at most [`events_per_key`](super::DatadogOptions::events_per_key)
//! events per aggregation key and [`max_events`](super::DatadogOptions::max_events) in all; the
//! rest are counted (`rate_limited`). Events older than 17 hours (the intake takes 18) are
//! counted as stale.

use std::collections::HashMap;
use std::fmt::Write as _;

use tracing_core::Level;

use super::context::Context;
use super::losses::DropCause;
use super::payload::{Input, Items};
use super::window::{self};
use crate::batch::ErrorEvent;
use crate::sink::json::Object;

/// Longest title, in characters.
const MAX_TITLE: usize = 100;
/// Longest text, in characters.
const MAX_TEXT: usize = 4000;
/// Longest aggregation key, in characters.
const MAX_KEY: usize = 100;

/// The batch's errors as event items, one per event, within the limits.
pub(crate) fn encode(input: Input<'_>) -> Items {
    let Input { batch, options, window, losses } = input;
    let mut items = Items::default();
    if !options.send_errors {
        return items;
    }
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for error in batch.errors() {
        let timestamp = window::unix(error.timestamp);
        if !window.admit(timestamp, 1, None, losses) {
            continue;
        }
        let key = aggregation_key(error);
        let sent = per_key.entry(key.clone()).or_default();
        if *sent >= options.events_per_key || items.len() >= options.max_events {
            losses.record(DropCause::EventLimit, 1);
            continue;
        }
        *sent += 1;
        let context = Context::new(batch.global_tags(), &error.tags, &options.host);
        items.push(timestamp, None, |out| {
            let mut o = Object::new(out);
            o.field("title", &title(error));
            o.field("text", &text(error));
            o.field("alert_type", alert_type(error.level()));
            o.field("aggregation_key", &key);
            o.field("source_type_name", "my_apps");
            o.field("date_happened", &timestamp);
            o.field("priority", "normal");
            context.end(o);
        });
    }
    items
}

fn alert_type(level: Level) -> &'static str {
    if level == Level::ERROR {
        "error"
    } else if level == Level::WARN {
        "warning"
    } else {
        "info"
    }
}

/// One line naming what went wrong.
fn title(error: &ErrorEvent) -> String {
    let message = error.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    let cause = error.error_chain.first().map(|e| e.trim()).filter(|e| !e.is_empty());
    let title = match (message, cause) {
        (Some(message), Some(cause)) if message != cause => format!("{message}: {cause}"),
        (Some(message), _) => message.to_owned(),
        (None, Some(cause)) => cause.to_owned(),
        (None, None) => {
            format!("{} in {}", error.level().as_str().to_ascii_lowercase(), error.target())
        }
    };
    let one_line: String = title.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(one_line, MAX_TITLE)
}

/// Longest field value in the text, in characters (so one long field cannot hide the rest).
const MAX_FIELD: usize = 500;

/// What Datadog shows under the title: the message, the error chain, where it happened, then
/// the fields (each cut to 500 characters), which are the likeliest to be long.
fn text(error: &ErrorEvent) -> String {
    let mut text = String::new();
    if let Some(message) = &error.message {
        let _ = writeln!(text, "{message}");
    }
    for (i, cause) in error.error_chain.iter().enumerate() {
        let label = if i == 0 { "error" } else { "caused by" };
        match error.error_types.get(i).filter(|t| t.as_str() != "Error") {
            Some(ty) => {
                let _ = writeln!(text, "{label}: {cause} ({ty})");
            }
            None => {
                let _ = writeln!(text, "{label}: {cause}");
            }
        }
    }
    let meta = error.metadata;
    let _ = write!(text, "at: {}", meta.target());
    if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
        let _ = write!(text, " ({file}:{line})");
    }
    text.push('\n');
    if !error.spans.is_empty() {
        let names: Vec<&str> = error.spans.iter().map(|s| s.name).collect();
        let _ = writeln!(text, "in span: {}", names.join(" < "));
    }
    if let Some(trace_id) = error.trace_id {
        let _ = writeln!(text, "trace_id: {trace_id}");
    }
    if let Some(thread) = &error.thread {
        let _ = writeln!(text, "thread: {thread}");
    }
    if !error.handled {
        let _ = writeln!(text, "unhandled (panic)");
    }
    if !error.fields.is_empty() {
        let _ = writeln!(text, "fields:");
        for (name, value) in &error.fields {
            let _ = writeln!(text, "  {name} = {}", truncate(value.to_string(), MAX_FIELD));
        }
    }
    truncate(text.trim_end().to_owned(), MAX_TEXT)
}

/// Groups events in Datadog's event stream.
fn aggregation_key(error: &ErrorEvent) -> String {
    let key = match &error.fingerprint {
        Some(fingerprint) => fingerprint.clone(),
        None => {
            let meta = error.metadata;
            match (meta.file(), meta.line()) {
                (Some(file), Some(line)) => format!("{}@{file}:{line}", meta.target()),
                _ => meta.target().to_owned(),
            }
        }
    };
    if key.chars().count() <= MAX_KEY {
        return key;
    }
    // Keep both ends readable and the whole key's identity in a hash.
    let hash = crate::aggregate::hash::hash_str(&key);
    let head: String = key.chars().take(40).collect();
    let tail: Vec<char> = key.chars().rev().take(42).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}~{hash:016x}~{tail}")
}

/// Cuts `text` to `max` characters, ending with `…` when cut.
fn truncate(mut text: String, max: usize) -> String {
    let mut ends = text.char_indices().map(|(i, _)| i).skip(max.saturating_sub(1));
    if let (Some(cut), Some(_)) = (ends.next(), ends.next()) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    use crate::batch::FieldValue;
    use crate::sink::datadog::losses::testing::recording;
    use crate::sink::datadog::losses::Losses;
    use crate::sink::datadog::options::DatadogOptions;
    use crate::sink::datadog::testing::{batch_with_errors, error_event, texts, KEY, NOW};
    use crate::sink::datadog::window::Window;

    fn encode_all(errors: Vec<ErrorEvent>, options: &DatadogOptions) -> (Vec<String>, Losses) {
        let (losses, _) = recording();
        let window = Window::events(UNIX_EPOCH + Duration::from_secs(NOW as u64));
        let items = encode(Input {
            batch: &batch_with_errors(errors),
            options,
            window: &window,
            losses: &losses,
        });
        (texts(&items), losses)
    }

    #[test]
    fn event_golden() {
        let mut error = error_event(Some("failed to load user"), &["connection refused"]);
        error.fields = vec![("user_id", FieldValue::I64(42))];
        error.error_types = vec!["Os".into()];
        let (events, _) = encode_all(vec![error], &DatadogOptions::new(KEY).unwrap());
        assert_eq!(
            events,
            [concat!(
                r#"{"title":"failed to load user: connection refused","#,
                r#""text":"failed to load user\nerror: connection refused (Os)\nat: app::db (src/db.rs:42)\nfields:\n  user_id = 42","#,
                r#""alert_type":"error","aggregation_key":"app::db@src/db.rs:42","source_type_name":"my_apps","#,
                r#""date_happened":1700000000,"priority":"normal","host":"web-1","tags":["env:prod","service:api"]}"#
            )]
        );
    }

    #[test]
    fn titles_are_one_line_of_at_most_100_characters() {
        let long = "x".repeat(150);
        let error = error_event(Some(&format!("line one\nline  two {long}")), &[]);
        let long_title = title(&error);
        assert!(long_title.starts_with("line one line two x"), "{long_title}");
        assert_eq!(long_title.chars().count(), 100);
        assert!(long_title.ends_with('…'));
        assert_eq!(title(&error_event(None, &["boom"])), "boom");
        assert_eq!(title(&error_event(Some("boom"), &["boom"])), "boom");
        assert_eq!(title(&error_event(None, &[])), "error in app::db");
    }

    #[test]
    fn text_is_cut_at_4000_characters() {
        let mut error = error_event(Some("m"), &["e"]);
        error.fields = (0..2000).map(|_| ("field", FieldValue::Str("é".repeat(10)))).collect();
        let long_text = text(&error);
        assert_eq!(long_text.chars().count(), 4000);
        assert!(long_text.ends_with('…'));
        assert!(long_text.contains("at: app::db"));
        // One long field does not hide the others.
        error.fields = vec![("a", FieldValue::Str("x".repeat(5000))), ("b", FieldValue::I64(7))];
        let long_field = text(&error);
        assert!(long_field.contains("  b = 7"), "{long_field}");
        assert!(long_field.contains(&format!("  a = {}…", "x".repeat(499))));
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abcd".into(), 3), "ab…");
    }

    #[test]
    fn aggregation_keys_are_bounded_and_distinct() {
        let mut a = error_event(None, &[]);
        a.fingerprint = Some(format!("{}-a", "k".repeat(200)));
        let mut b = a.clone();
        b.fingerprint = Some(format!("{}-b", "k".repeat(200)));
        let (ka, kb) = (aggregation_key(&a), aggregation_key(&b));
        assert_eq!(ka.chars().count(), MAX_KEY);
        assert_ne!(ka, kb);
        let mut short = error_event(None, &[]);
        short.fingerprint = Some("checkout-timeout".into());
        assert_eq!(aggregation_key(&short), "checkout-timeout");
    }

    #[test]
    fn events_are_limited_per_key_and_per_flush() {
        let options = DatadogOptions::new(KEY).unwrap().events_per_key(2).max_events(3);
        let mut errors = vec![error_event(Some("same"), &[]); 4];
        let mut other = error_event(Some("other"), &[]);
        other.fingerprint = Some("other".into());
        errors.push(other.clone());
        errors.push(other);
        let (events, losses) = encode_all(errors, &options);
        assert_eq!(events.len(), 3);
        assert_eq!(losses.get(DropCause::EventLimit), 3);
    }

    #[test]
    fn old_events_and_disabled_errors_are_not_sent() {
        let mut old = error_event(Some("old"), &[]);
        old.timestamp = UNIX_EPOCH + Duration::from_secs(NOW as u64 - 18 * 3600);
        let (events, losses) = encode_all(vec![old], &DatadogOptions::new(KEY).unwrap());
        assert!(events.is_empty());
        assert_eq!(losses.get(DropCause::Stale), 1);
        let off = DatadogOptions::new(KEY).unwrap().send_errors(false);
        let (events, _) = encode_all(vec![error_event(Some("x"), &[])], &off);
        assert!(events.is_empty());
    }
}
