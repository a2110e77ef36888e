//! Release health: the process session as `session` items, request sessions as `sessions`
//! aggregates (from the `sessions{mode:request}` counter), per Sentry's session spec.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::common::Common;
use super::time::rfc3339;
use crate::batch::session_counter::{MODE_TAG, SESSIONS_METRIC, STATUS_TAG};
use crate::batch::{MetricRecord, MetricValue, SessionUpdate};

/// Aggregate buckets allowed per `sessions` item.
const MAX_AGGREGATES: usize = 100;

/// A `session` item payload.
pub(crate) fn session(update: &SessionUpdate) -> Vec<u8> {
    let duration = update.timestamp.duration_since(update.started).unwrap_or_default();
    let mut attrs = Map::new();
    attrs.insert("release".into(), update.release.as_str().into());
    if let Some(environment) = &update.environment {
        attrs.insert("environment".into(), environment.as_str().into());
    }
    let payload = json!({
        "sid": update.sid_string(),
        "init": update.init,
        "started": rfc3339(update.started),
        "timestamp": rfc3339(update.timestamp),
        "status": update.status.as_str(),
        "errors": update.errors,
        "duration": duration.as_secs_f64(),
        "attrs": Value::Object(attrs),
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Whether a record is a request-session count (turned into aggregates, not a metric).
pub(crate) fn is_request_session(record: &MetricRecord) -> bool {
    record.name() == SESSIONS_METRIC
        && record.tags().iter().any(|t| t.key() == MODE_TAG && t.value() == "request")
}

/// `sessions` item payloads for the request-session counts among `records`, grouped by the
/// minute their interval started. `None` without a release (Sentry drops those sessions).
pub(crate) fn aggregates(common: &Common<'_>, records: &[&MetricRecord]) -> Vec<Vec<u8>> {
    let Some(release) = common.release else { return Vec::new() };
    let mut minutes: BTreeMap<u64, BTreeMap<&str, u64>> = BTreeMap::new();
    for record in records {
        let MetricValue::Counter(counter) = record.value() else { continue };
        let Some(status) = record.tags().iter().find(|t| t.key() == STATUS_TAG) else { continue };
        let minute =
            record.timestamp().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60 * 60;
        let count = counter.exact_integer().and_then(|c| u64::try_from(c).ok()).unwrap_or(0);
        *minutes.entry(minute).or_default().entry(status.value()).or_default() += count;
    }
    let buckets: Vec<Value> = minutes
        .into_iter()
        .map(|(minute, counts)| {
            let mut bucket = Map::new();
            bucket
                .insert("started".into(), rfc3339(UNIX_EPOCH + Duration::from_secs(minute)).into());
            for (status, count) in counts.into_iter().filter(|(_, c)| *c > 0) {
                bucket.insert(status.to_owned(), count.into());
            }
            Value::Object(bucket)
        })
        .collect();
    let mut attrs = Map::new();
    attrs.insert("release".into(), release.into());
    if let Some(environment) = common.environment {
        attrs.insert("environment".into(), environment.into());
    }
    buckets
        .chunks(MAX_AGGREGATES)
        .map(|chunk| {
            let payload = json!({ "attrs": Value::Object(attrs.clone()), "aggregates": chunk });
            serde_json::to_vec(&payload).unwrap_or_default()
        })
        .collect()
}
