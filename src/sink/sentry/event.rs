//! Error events: a captured [`ErrorEvent`] as a Sentry `event` payload.
//!
//! The error chain becomes `exception.values`, root cause first, with the mechanism (and the
//! stack trace, when captured) on the last value; the event's fields and each enclosing span's
//! fields become contexts; `contexts.trace` is always present. Field values under sensitive keys
//! are replaced by `[Filtered]` (see [`super::scrub`]).

use serde_json::{json, Map, Value};

use super::common::{level, Common};
use super::stacktrace::stacktrace;
use super::time::{unix_float, Ids};
use crate::batch::ErrorEvent;

/// The `event` payload of an error, and its event id.
pub(crate) fn encode(common: &Common<'_>, error: &ErrorEvent, ids: &mut Ids) -> (String, Vec<u8>) {
    let event_id = ids.uuid();
    let mut event = Map::new();
    event.insert("event_id".into(), event_id.clone().into());
    event.insert("timestamp".into(), unix_float(error.timestamp).into());
    let level = if error.handled { level(error.level()) } else { "fatal" };
    event.insert("level".into(), level.into());
    event.insert("logger".into(), error.target().into());
    if let Some(message) = &error.message {
        event.insert("message".into(), message.as_str().into());
    }
    if let Some(exception) = exception(error) {
        event.insert("exception".into(), exception);
    }
    event.insert("contexts".into(), contexts(common, error, ids));
    let own_tags = error.tags.iter().map(|t| (t.key(), t.value()));
    event.insert("tags".into(), common.tags(own_tags));
    if !error.breadcrumbs.is_empty() {
        let values: Vec<Value> = error
            .breadcrumbs
            .iter()
            .map(|b| {
                json!({
                    "timestamp": unix_float(b.timestamp),
                    "type": "default",
                    "category": b.target,
                    "level": super::common::level(b.level),
                    "message": b.message,
                    "data": common.fields(&b.fields),
                })
            })
            .collect();
        event.insert("breadcrumbs".into(), json!({ "values": values }));
    }
    if let Some(fingerprint) = &error.fingerprint {
        event.insert("fingerprint".into(), json!([fingerprint]));
    }
    // The root span names the transaction the error happened in.
    if let Some(root) = error.spans.last() {
        event.insert("transaction".into(), root.name.into());
    }
    if let Some(thread) = &error.thread {
        event.insert(
            "threads".into(),
            json!({ "values": [{ "name": thread, "current": true, "crashed": !error.handled }] }),
        );
    }
    common.decorate(&mut event);
    let bytes = serde_json::to_vec(&Value::Object(event)).unwrap_or_default();
    (event_id, bytes)
}

fn exception(error: &ErrorEvent) -> Option<Value> {
    if error.error_chain.is_empty() {
        return None;
    }
    let count = error.error_chain.len();
    let mut values: Vec<Value> = error
        .error_chain
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let ty = error.error_types.get(i).map_or("Error", String::as_str);
            json!({ "type": ty, "value": value })
        })
        .collect();
    // Sentry wants the root cause first: the chain starts with the outermost error.
    values.reverse();
    if let Some(last) = values.get_mut(count - 1) {
        let kind = if error.handled { "tracing" } else { "panic" };
        last["mechanism"] = json!({ "type": kind, "handled": error.handled });
        if let Some(trace) = error.stacktrace.as_deref().and_then(stacktrace) {
            last["stacktrace"] = trace;
        }
    }
    Some(json!({ "values": values }))
}

fn contexts(common: &Common<'_>, error: &ErrorEvent, ids: &mut Ids) -> Value {
    let mut contexts = Map::new();
    let trace_id = error.trace_id.map_or(common.process_trace_id, |t| t.to_u128());
    let span_id = error.span_id.map_or_else(|| ids.next_u64(), |s| s.to_u64());
    contexts.insert(
        "trace".into(),
        json!({ "type": "trace", "trace_id": format!("{trace_id:032x}"), "span_id": format!("{span_id:016x}") }),
    );
    if !error.fields.is_empty() {
        contexts.insert("fields".into(), common.fields(&error.fields));
    }
    for (depth, span) in error.spans.iter().enumerate() {
        let mut fields = common.fields(&span.fields);
        if let Value::Object(object) = &mut fields {
            object.insert("span_id".into(), span.span_id.to_string().into());
            object.insert("target".into(), span.target.into());
            object.insert("type".into(), "span".into());
        }
        contexts.insert(format!("span {depth}: {}", span.name), fields);
    }
    Value::Object(contexts)
}
