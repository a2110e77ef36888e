//! What reaches the intake, validated by Datadog's API models.

use serde_json::Value;
use tracing::{error, info, info_span};
use tracing_tally::sink::datadog::{DistributionMode, HistogramAggregate};

use crate::shared::Receiver;
use crate::{check, options, pipeline, series, KEY, WAIT};

fn tags(series: &Value) -> Vec<String> {
    let mut tags: Vec<String> =
        series["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    tags.sort();
    tags
}

#[test]
fn metrics_and_errors_arrive_as_series_distribution_points_and_events() {
    let receiver = Receiver::start();
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || {
        for status in [200, 200, 500] {
            info!(monotonic_counter.requests = 1, route = "/users", status);
        }
        info!(gauge.queue_depth = 7);
        for user in ["a", "b", "a"] {
            info!(set.visitors = user);
        }
        for ms in [1.0, 5.0, 5.0, 250.0] {
            info!(histogram.latency_ms = ms);
        }
        let _span = info_span!("checkout", cart = 7).entered();
        let e = std::io::Error::other("card declined");
        error!(error = &e as &dyn std::error::Error, "payment failed");
    });
    assert!(guard.flush(WAIT));
    check(&receiver, &["v2-series", "v1-distribution", "v1-event"], false);
    let received = receiver.received();
    for r in &received {
        assert_eq!(r.header("dd-api-key"), Some(KEY));
        assert!(r.header("user-agent").is_some_and(|ua| ua.starts_with("tracing-tally/")));
    }
    let series = series(&received);
    let find = |metric: &str, tag: &str| -> &Value {
        series
            .iter()
            .find(|s| s["metric"] == metric && (tag.is_empty() || tags(s).iter().any(|t| t == tag)))
            .unwrap_or_else(|| panic!("no {metric} {tag}: {series:?}"))
    };
    let ok = find("requests", "status:200");
    assert_eq!(ok["type"], 1, "a count");
    assert_eq!(ok["points"][0]["value"], 2.0);
    assert_eq!(ok["interval"], 10);
    assert_eq!(
        tags(ok),
        ["env:test", "route:/users", "service:shop", "status:200", "version:1.2.3"]
    );
    assert_eq!(ok["resources"], serde_json::json!([{ "type": "host", "name": "test-host" }]));
    assert_eq!(find("requests", "status:500")["points"][0]["value"], 1.0);
    let depth = find("queue_depth", "");
    assert_eq!(
        (depth["type"].as_u64(), depth["points"][0]["value"].as_f64()),
        (Some(3), Some(7.0))
    );
    assert_eq!(find("visitors", "")["points"][0]["value"], 2.0, "a set's unique count");

    let distribution =
        received.iter().find(|r| r.path() == "/api/v1/distribution_points").unwrap().json();
    let latency = distribution["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == "latency_ms")
        .unwrap();
    let values = latency["points"][0][1].as_array().unwrap();
    assert_eq!(values.len(), 4, "every value");
    assert_eq!(values.first().unwrap().as_f64(), Some(1.0));
    assert_eq!(values.last().unwrap().as_f64(), Some(250.0));

    let event = received.iter().find(|r| r.path() == "/api/v1/events").unwrap().json();
    assert_eq!(event["alert_type"], "error");
    assert!(event["title"].as_str().unwrap().starts_with("payment failed"), "{event}");
    assert!(event["text"].as_str().unwrap().contains("card declined"), "{event}");
    assert!(event["tags"].as_array().unwrap().iter().any(|t| t == "env:test"));
    drop(guard);
}

#[test]
fn histogram_aggregates_are_named_as_the_agent_names_them() {
    let receiver = Receiver::start();
    let options = options(&receiver)
        .distributions(DistributionMode::Aggregates)
        .histogram_aggregates(HistogramAggregate::AGENT_DEFAULTS);
    let (dispatch, guard) = pipeline(options);
    tracing::dispatcher::with_default(&dispatch, || {
        for ms in 1..=100 {
            info!(histogram.latency_ms = f64::from(ms));
        }
    });
    assert!(guard.flush(WAIT));
    check(&receiver, &["v2-series"], false);
    let series = series(&receiver.received());
    let mut names: Vec<&str> = series.iter().map(|s| s["metric"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "latency_ms.95percentile",
            "latency_ms.avg",
            "latency_ms.count",
            "latency_ms.max",
            "latency_ms.median"
        ]
    );
    let value = |name: &str| {
        series.iter().find(|s| s["metric"] == name).unwrap()["points"][0]["value"].as_f64().unwrap()
    };
    assert_eq!(value("latency_ms.count"), 100.0);
    assert_eq!(value("latency_ms.max"), 100.0);
    assert!((value("latency_ms.avg") - 50.5).abs() < 1e-9);
    assert!((value("latency_ms.95percentile") - 95.0).abs() <= 95.0 * 0.01);
    drop(guard);
}

#[test]
fn many_series_are_chunked_under_the_intake_limits() {
    let receiver = Receiver::start();
    let (dispatch, guard) = pipeline(options(&receiver));
    tracing::dispatcher::with_default(&dispatch, || {
        // Two metrics: each keeps at most 2,000 series by default.
        for shard in 0..1250u64 {
            info!(monotonic_counter.hits = 1, shard);
            info!(monotonic_counter.misses = 1, shard);
        }
    });
    assert!(guard.flush(WAIT));
    check(&receiver, &["v2-series"], false);
    let received = receiver.received();
    let requests = received.iter().filter(|r| r.path() == "/api/v2/series").count();
    assert!(requests >= 3, "at most 1,000 series per payload: {requests}");
    let series = series(&received);
    assert_eq!(series.len(), 2500);
    let mut shards: Vec<String> = series
        .iter()
        .flat_map(|s| tags(s).into_iter().map(move |t| format!("{}/{t}", s["metric"])))
        .filter(|t| t.contains("shard:"))
        .collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 2500, "each exactly once");
    drop(guard);
}
