//! The `sentry_envelope` target: the Sentry sink's envelopes.

use serde_json::Value;

use super::inputs::{batch, BatchInput};
use crate::batch::{MetricRecord, MetricValue};

/// What the Sentry sink is configured with.
#[derive(Debug, Clone, Default)]
pub struct SentryInput {
    /// Metrics as legacy `statsd` items.
    pub legacy_statsd: bool,
    /// Distribution values per record (0 means the default, 100).
    pub max_distribution_values: u16,
    /// Sends personal data unscrubbed.
    pub send_default_pii: bool,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`sentry`] produced.
#[derive(Debug, Clone, Default)]
pub struct SentryOutcome {
    /// The envelopes, as sent.
    pub envelopes: Vec<Vec<u8>>,
    /// Metric values sent.
    pub metric_values: u64,
    /// Metric values counted as dropped.
    pub metric_drops: u64,
}

/// Sentry's limit on one event or metric container item (1 MiB).
const SENTRY_MAX_ITEM: usize = 1024 * 1024;

/// Encodes a batch's errors and metrics as the Sentry sink does and checks the envelopes.
pub fn sentry(input: &SentryInput) -> SentryOutcome {
    use crate::scrub::Scrubber;
    use crate::sink::sentry::common::Common;
    use crate::sink::sentry::envelope::EnvelopeWriter;
    use crate::sink::sentry::metrics::{self, MetricOptions};
    use crate::sink::sentry::time::Ids;

    let batch = batch(&input.batch);
    let scrubber = Scrubber::new(input.send_default_pii, Vec::new());
    let common = Common::new(batch.global_tags(), &scrubber, 0x0123_4567_89ab_cdef);
    let mut ids = Ids::new();
    let mut outcome = SentryOutcome::default();
    let envelope = |items: &[(&str, Option<usize>, &[u8])]| {
        let header = serde_json::json!({
            "sdk": { "name": "fuzz", "version": "0" },
            "sent_at": "2024-01-01T00:00:00Z",
        });
        let mut writer = EnvelopeWriter::new(&header);
        for (item_type, count, payload) in items {
            match count {
                Some(n) => writer.container(item_type, "application/json", *n, payload),
                None => writer.item(item_type, payload),
            }
        }
        let bytes = writer.finish();
        check_envelope(&bytes, items.len());
        bytes
    };
    for error in batch.errors() {
        let (event_id, payload) = crate::sink::sentry::event::encode(&common, error, &mut ids);
        assert!(payload.len() <= SENTRY_MAX_ITEM, "event of {} bytes", payload.len());
        let event: Value = serde_json::from_slice(&payload).expect("event JSON");
        assert_eq!(event["event_id"], Value::from(event_id));
        outcome.envelopes.push(envelope(&[("event", None, &payload)]));
    }
    let records: Vec<&MetricRecord> =
        batch.metrics().iter().filter(|r| metrics::is_metric(r)).collect();
    let max_values = if input.max_distribution_values == 0 {
        100
    } else {
        usize::from(input.max_distribution_values)
    };
    if input.legacy_statsd {
        let (payload, skipped) = metrics::statsd(batch.global_tags(), &records, max_values);
        let text = std::str::from_utf8(&payload).expect("statsd payload is UTF-8");
        let lines = text.lines().count() as u64;
        for line in text.lines() {
            check_legacy_statsd_line(line);
        }
        assert_eq!(lines + skipped, records.len() as u64, "every record is sent or counted");
        outcome.metric_values = lines;
        outcome.metric_drops = skipped;
        if !payload.is_empty() {
            outcome.envelopes.push(envelope(&[("statsd", None, &payload)]));
        }
        return outcome;
    }
    let encoded = metrics::trace_metrics(
        &common,
        batch.global_tags(),
        &records,
        MetricOptions { max_values },
    );
    let expected: u64 = records
        .iter()
        .map(|r| match r.value() {
            MetricValue::Distribution(d) => d.count,
            _ => 1,
        })
        .sum();
    let mut sent = 0u64;
    for container in &encoded.containers {
        let (payload, count) = (&container.payload, &container.count);
        assert!(*count > 0 && *count <= 1000, "{count} items in a container");
        assert!(payload.len() <= SENTRY_MAX_ITEM, "container of {} bytes", payload.len());
        let container: Value = serde_json::from_slice(payload).expect("container JSON");
        let items = container["items"].as_array().expect("items");
        assert_eq!(items.len(), *count);
        for item in items {
            assert!(item["value"].as_f64().is_some_and(f64::is_finite), "{item}");
            assert!(item["name"].is_string() && item["type"].is_string(), "{item}");
        }
        sent += *count as u64;
        outcome.envelopes.push(envelope(&[("trace_metric", Some(*count), payload)]));
    }
    assert_eq!(
        sent + encoded.overflow + encoded.invalid,
        expected,
        "every metric value is sent or counted"
    );
    let carried: usize = encoded.containers.iter().map(|c| c.carried.len()).sum();
    assert_eq!(
        carried + encoded.non_finite.len(),
        records.len(),
        "every record is carried by a container or booked as lost"
    );
    outcome.metric_values = sent;
    outcome.metric_drops = encoded.overflow + encoded.invalid;
    outcome
}

fn check_legacy_statsd_line(line: &str) {
    let (head, rest) = line.split_once('|').expect("name:values|type");
    let (name_unit, values) = head.split_once(':').expect("name@unit:values");
    let (name, unit) = name_unit.split_once('@').expect("name@unit");
    assert!(!name.is_empty() && !unit.is_empty(), "{line:?}");
    for value in values.split(':') {
        assert!(value.parse::<f64>().is_ok_and(f64::is_finite), "value {value:?} in {line:?}");
    }
    let mut fields = rest.split('|');
    assert!(["c", "g", "d", "s"].contains(&fields.next().unwrap_or_default()), "{line:?}");
    for field in fields {
        assert!(field.starts_with('#') || field.starts_with('T'), "{field:?} in {line:?}");
    }
}

/// A strict envelope reader: a JSON object header line, then items whose header gives the exact
/// payload length, each payload followed by `\n`, nothing left over.
fn check_envelope(envelope: &[u8], items: usize) {
    let line = |rest: &[u8]| -> (Vec<u8>, usize) {
        let end = rest.iter().position(|&b| b == b'\n').expect("a line ends with \\n");
        (rest[..end].to_vec(), end + 1)
    };
    let (header, mut at) = line(envelope);
    let header: Value = serde_json::from_slice(&header).expect("envelope header JSON");
    assert!(header.is_object());
    let mut found = 0;
    while at < envelope.len() {
        let (item_header, used) = line(&envelope[at..]);
        at += used;
        let item_header: Value = serde_json::from_slice(&item_header).expect("item header JSON");
        assert!(item_header["type"].is_string(), "{item_header}");
        let length = usize::try_from(item_header["length"].as_u64().expect("length")).unwrap();
        let payload = envelope.get(at..at + length).expect("payload within the envelope");
        assert_eq!(envelope.get(at + length), Some(&b'\n'), "payload followed by \\n");
        if item_header["type"] != "statsd" {
            serde_json::from_slice::<Value>(payload).expect("payload JSON");
        }
        if let Some(count) = item_header.get("item_count") {
            let parsed: Value = serde_json::from_slice(payload).expect("container JSON");
            assert_eq!(
                parsed["items"].as_array().map(Vec::len),
                count.as_u64().map(|n| n as usize)
            );
        }
        at += length + 1;
        found += 1;
    }
    assert_eq!(found, items);
}
