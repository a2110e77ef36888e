//! DogStatsD against the strict receiver: every datagram and message well-formed, over UDP and
//! both kinds of Unix socket, and the totals the Agent would compute equal to what was emitted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tracing::{error, info};
use tracing_tally::sink::statsd::StatsdOptions;

use crate::peers::{scratch, DogstatsdSink};
use crate::{pipeline, WAIT};

/// What the test emitted, as the Agent would total it.
#[derive(Default)]
struct Expected {
    counters: BTreeMap<String, f64>,
    distributions: BTreeMap<String, (u64, f64, f64)>,
    sets: BTreeMap<String, BTreeSet<String>>,
    gauges: BTreeMap<String, f64>,
    events: usize,
}

fn key(name: &str, kind: &str, tags: &[&str]) -> String {
    let mut tags: Vec<&str> =
        ["env:test", "service:shop"].into_iter().chain(tags.iter().copied()).collect();
    tags.sort_unstable();
    format!("{name}|{kind}|{}", tags.join(","))
}

/// Emits a varied workload over several intervals (each flush closes one) and returns what the
/// Agent should see.
fn workload(dispatch: &tracing::Dispatch, guard: &tracing_tally::FlushGuard) -> Expected {
    let mut expected = Expected::default();
    tracing::dispatcher::with_default(dispatch, || {
        for round in 0..3u64 {
            for i in 0..200u64 {
                let route = ["/a", "/b", "/c"][(i % 3) as usize];
                let status = if i % 7 == 0 { 500 } else { 200 };
                info!(monotonic_counter.requests = 1, route, status);
                *expected
                    .counters
                    .entry(key(
                        "requests",
                        "c",
                        &[&format!("route:{route}"), &format!("status:{status}")],
                    ))
                    .or_default() += 1.0;
                let ms = (i as f64).mul_add(0.731, round as f64);
                info!(histogram.latency = ms, route);
                let d = expected
                    .distributions
                    .entry(key("latency", "d", &[&format!("route:{route}")]))
                    .or_insert((0, f64::MAX, f64::MIN));
                *d = (d.0 + 1, d.1.min(ms), d.2.max(ms));
                info!(set.users = i % 50);
                info!(counter.bytes = 0.5);
                *expected.counters.entry(key("bytes", "c", &[])).or_default() += 0.5;
            }
            info!(gauge.depth = round);
            expected.gauges.insert(key("depth", "g", &[]), round as f64);
            error!(round, "round failed");
            expected.events += 1;
            assert!(guard.flush(WAIT));
        }
    });
    // One set per interval: the members of each interval, 50 distinct values in all.
    expected.sets.insert(key("users", "s", &[]), BTreeSet::new());
    expected
}

/// Whether everything expected has arrived (the totals, the events, the telemetry); `check`
/// then says whether it is right.
fn arrived(summary: &Value, expected: &Expected) -> bool {
    let metrics = &summary["metrics"];
    let counters = expected
        .counters
        .iter()
        .all(|(key, total)| metrics[key]["sum"].as_f64().is_some_and(|s| s >= *total - 1e-9));
    let distributions = expected
        .distributions
        .iter()
        .all(|(key, (count, _, _))| metrics[key]["count"].as_f64() >= Some(*count as f64));
    let events = summary["events"].as_array().map_or(0, Vec::len) >= expected.events;
    let telemetry = metrics
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("datadog.dogstatsd.client.metrics|c|")));
    counters && distributions && events && telemetry
}

fn check(summary: &Value, expected: &Expected) {
    assert_eq!(summary["bad"], serde_json::json!([]), "grammar errors: {}", summary["bad"]);
    assert_eq!(summary["bad_datagrams"], serde_json::json!([]), "{}", summary["bad_datagrams"]);
    let metrics = &summary["metrics"];
    for (key, total) in &expected.counters {
        let sum = metrics[key]["sum"].as_f64().unwrap_or_else(|| panic!("no {key} in {metrics}"));
        assert!((sum - total).abs() < 1e-9, "{key}: {sum} != {total}");
    }
    for (key, (count, min, max)) in &expected.distributions {
        let m = &metrics[key];
        assert_eq!(m["count"].as_f64(), Some(*count as f64), "{key}: {m}");
        assert_eq!(
            (m["min"].as_f64(), m["max"].as_f64()),
            (Some(*min), Some(*max)),
            "{key}: exact extremes"
        );
    }
    for key in expected.sets.keys() {
        let members = metrics[key]["members"].as_array().unwrap();
        assert_eq!(members.len(), 50, "{key}");
    }
    for (key, last) in &expected.gauges {
        assert_eq!(metrics[key]["last"].as_f64(), Some(*last), "{key}");
    }
    let events = summary["events"].as_array().unwrap();
    assert_eq!(events.len(), expected.events);
    assert!(events.iter().all(|e| e["alert_type"] == "error" && e["title"] == "round failed"));
    let telemetry = metrics
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            k.starts_with("datadog.dogstatsd.client.metrics|c|") && k.contains("client:rust")
        })
        .count();
    assert!(telemetry >= 1, "client telemetry is sent");
}

fn run(transport: &str) {
    let dir = scratch(&format!("dsd-{transport}"));
    let sink = DogstatsdSink::start(&dir, 8192);
    let address = match transport {
        "udp" => format!("udp://127.0.0.1:{}", sink.udp_port),
        "uds" => format!("unixgram://{}", sink.uds.display()),
        _ => format!("unixstream://{}", sink.uds_stream.display()),
    };
    let options = StatsdOptions::dogstatsd_at(&address).unwrap().origin_detection(false);
    let (dispatch, guard) = pipeline(options);
    let expected = workload(&dispatch, &guard);
    drop(guard);
    let summary = sink.summary_when(|summary| arrived(summary, &expected));
    let transports = summary["transports"].as_object().unwrap();
    let expected_transport = if transport == "stream" { "uds-stream" } else { transport };
    assert!(transports.contains_key(expected_transport), "{transports:?}");
    check(&summary, &expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_udp_every_message_is_well_formed_and_totals_are_exact() {
    run("udp");
}

#[test]
fn over_a_unix_datagram_socket_too() {
    run("uds");
}

#[test]
fn over_a_unix_stream_socket_too() {
    run("stream");
}

#[test]
fn datagrams_fill_up_to_the_limit_and_never_past_it() {
    let dir = scratch("dsd-limit");
    let sink = DogstatsdSink::start(&dir, 512);
    let options = StatsdOptions::dogstatsd_at(&format!("127.0.0.1:{}", sink.udp_port))
        .unwrap()
        .max_packet_size(512)
        .container_id("ci-0123456789abcdef")
        .telemetry(false);
    let (dispatch, guard) = pipeline(options);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..400u64 {
            info!(monotonic_counter.hits = 1, shard = i);
            info!(histogram.size = i as f64 * 3.3);
        }
    });
    drop(guard);
    let hits_and_sizes = |summary: &Value| {
        let counted = |prefix: &str, field: &str| -> f64 {
            summary["metrics"].as_object().map_or(0.0, |metrics| {
                metrics
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, m)| m[field].as_f64().unwrap_or(0.0))
                    .sum()
            })
        };
        (counted("hits|c|", "sum"), counted("size|", "count"))
    };
    let summary = sink.summary_when(|summary| {
        let (hits, sizes) = hits_and_sizes(summary);
        hits >= 400.0 && sizes >= 400.0
    });
    assert_eq!(summary["bad_datagrams"], serde_json::json!([]), "{}", summary["bad_datagrams"]);
    assert_eq!(summary["bad"], serde_json::json!([]));
    let largest = summary["max_datagram"].as_u64().unwrap();
    assert!((400..=512).contains(&largest), "datagrams are filled: {largest}");
    let datagrams = sink.datagrams();
    assert!(datagrams.iter().all(|d| d["size"].as_u64().unwrap() <= 512));
    let hits: f64 = summary["metrics"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("hits|c|"))
        .map(|(_, m)| m["sum"].as_f64().unwrap())
        .sum();
    assert_eq!(hits, 400.0);
    let size = summary["metrics"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("size|d|"))
        .unwrap()
        .1;
    assert_eq!(size["count"].as_f64(), Some(400.0), "every value's weight arrives across packets");
    assert_eq!(size["containers"], serde_json::json!(["ci-0123456789abcdef"]));
    let _ = std::fs::remove_dir_all(&dir);
}
