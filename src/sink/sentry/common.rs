//! What every Sentry payload of one batch shares: release, environment, server name, SDK, tags.

use serde_json::{json, Map, Value};

use crate::batch::{FieldValue, Tag};
use crate::scrub::{Scrubber, FILTERED};

/// The SDK name reported to Sentry.
pub(crate) const SDK_NAME: &str = "sentry.rust.tracing-tally";

/// Payload-wide context, built once per batch from the global tags.
#[derive(Debug)]
pub(crate) struct Common<'a> {
    pub(crate) release: Option<&'a str>,
    pub(crate) environment: Option<&'a str>,
    pub(crate) server_name: Option<&'a str>,
    /// Global tags other than release, environment and host.
    pub(crate) tags: Vec<(&'a str, &'a str)>,
    pub(crate) scrubber: &'a Scrubber,
    /// The trace of events that happen outside any span (one per process, as the SDKs do).
    pub(crate) process_trace_id: u128,
}

impl<'a> Common<'a> {
    pub(crate) fn new(
        global_tags: &'a [Tag],
        scrubber: &'a Scrubber,
        process_trace_id: u128,
    ) -> Self {
        let mut common = Common {
            release: None,
            environment: None,
            server_name: None,
            tags: Vec::new(),
            scrubber,
            process_trace_id,
        };
        for tag in global_tags {
            match tag.key() {
                "release" => common.release = Some(tag.value()),
                "environment" => common.environment = Some(tag.value()),
                "host" => common.server_name = Some(tag.value()),
                key => common.tags.push((key, tag.value())),
            }
        }
        common
    }

    /// Adds `release`, `environment`, `server_name`, `platform` and `sdk` to an event object.
    pub(crate) fn decorate(&self, event: &mut Map<String, Value>) {
        if let Some(release) = self.release {
            event.insert("release".into(), release.into());
        }
        if let Some(environment) = self.environment {
            event.insert("environment".into(), environment.into());
        }
        if let Some(server_name) = self.server_name {
            event.insert("server_name".into(), server_name.into());
        }
        event.insert("platform".into(), "native".into());
        event.insert("sdk".into(), sdk());
    }

    /// Tags (global, then `own`, which win), with the values of sensitive keys filtered.
    pub(crate) fn tags<'b>(&self, own: impl IntoIterator<Item = (&'b str, &'b str)>) -> Value {
        let mut tags = Map::new();
        let global = self.tags.iter().map(|&(k, v)| (k.to_owned(), v.to_owned()));
        let own = own.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
        for (key, value) in global.chain(own) {
            let key = key.as_str();
            let value = value.as_str();
            let value = if self.scrubber.is_sensitive(key) { FILTERED } else { value };
            tags.insert(key.to_owned(), value.into());
        }
        Value::Object(tags)
    }

    /// Fields as a scrubbed JSON object.
    pub(crate) fn fields(&self, fields: &[(&'static str, FieldValue)]) -> Value {
        let mut object: Map<String, Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), field_json(v))).collect();
        let mut value = Value::Object(std::mem::take(&mut object));
        self.scrubber.scrub_json(&mut value);
        value
    }
}

/// The `sdk` object.
pub(crate) fn sdk() -> Value {
    json!({
        "name": SDK_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "packages": [{ "name": "cargo:tracing-tally", "version": env!("CARGO_PKG_VERSION") }],
    })
}

/// A field value as JSON (128-bit integers outside the 64-bit range as text).
pub(crate) fn field_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Str(s) | FieldValue::Text(s) => Value::from(s.as_str()),
        FieldValue::I64(v) => Value::from(*v),
        FieldValue::U64(v) => Value::from(*v),
        FieldValue::I128(v) => i64::try_from(*v).map_or_else(|_| v.to_string().into(), Value::from),
        FieldValue::U128(v) => u64::try_from(*v).map_or_else(|_| v.to_string().into(), Value::from),
        FieldValue::F64(v) => {
            serde_json::Number::from_f64(*v).map_or_else(|| v.to_string().into(), Value::Number)
        }
        FieldValue::Bool(v) => Value::from(*v),
    }
}

/// Sentry's level name for a tracing level.
pub(crate) fn level(level: tracing_core::Level) -> &'static str {
    match level {
        tracing_core::Level::ERROR => "error",
        tracing_core::Level::WARN => "warning",
        tracing_core::Level::INFO => "info",
        _ => "debug",
    }
}
