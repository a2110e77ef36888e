//! The JSON-lines sink: the documented schema, line by line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::{error, info, info_span};
use tracing_subscriber::prelude::*;
use tracing_tally::sink::JsonlSink;
use tracing_tally::Tally;

#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines() -> Vec<Value> {
    let buffer = SharedBuffer::default();
    let (tally, guard) = Tally::builder()
        .manual()
        .host(None)
        .service("svc")
        .self_metrics(false)
        .sink(JsonlSink::new(buffer.clone(), "test buffer"))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
        info!(monotonic_counter.requests = 2, route = "/x");
        info!(counter.delta = -1.5);
        info!(gauge.temp = 20, room = "a");
        info!(gauge.temp = 22, room = "a");
        for v in 1..=100 {
            info!("distribution.size@byte" = v);
        }
        info!(set.users = "ann");
        info!(set.users = "bob");
        info!("a breadcrumb");
        info_span!("request", id = 7).in_scope(|| {
            let err = std::io::Error::other("disk full");
            error!(error = &err as &dyn std::error::Error, attempt = 3u64, "write failed");
        });
    });
    assert!(guard.flush(Duration::from_secs(1)));
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.ends_with('\n'));
    text.lines().map(|l| serde_json::from_str(l).expect("every line is one JSON object")).collect()
}

fn find<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines.iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no record {name}"))
}

#[test]
fn metric_records_follow_the_schema() {
    let lines = lines();
    let requests = find(&lines, "requests");
    assert_eq!(requests["type"], "metric");
    assert_eq!(requests["kind"], "counter");
    assert_eq!(requests["monotonic"], true);
    assert_eq!(requests["value"], 2);
    assert_eq!(requests["tags"], serde_json::json!({"route": "/x", "service": "svc"}));
    assert!(requests["timestamp"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(requests["interval"], 10);
    assert!(requests.get("unit").is_none());

    assert_eq!(find(&lines, "delta")["value"], -1.5);
    assert!(find(&lines, "delta").get("monotonic").is_none());

    let temp = find(&lines, "temp");
    assert_eq!(temp["kind"], "gauge");
    for (key, value) in [("last", 22.0), ("min", 20.0), ("max", 22.0), ("sum", 42.0)] {
        assert_eq!(temp[key], value, "{key}");
    }
    assert_eq!(temp["count"], 2);

    let size = find(&lines, "size");
    assert_eq!(size["kind"], "distribution");
    assert_eq!(size["unit"], "byte");
    assert_eq!(size["count"], 100);
    assert_eq!(size["sum"], 5050.0);
    assert_eq!((size["min"].as_f64(), size["max"].as_f64()), (Some(1.0), Some(100.0)));
    for (q, exact) in [("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0)] {
        let got = size["quantiles"][q].as_f64().unwrap();
        assert!((got - exact).abs() / exact <= 0.01, "{q}: {got}");
    }

    let users = find(&lines, "users");
    assert_eq!(users["kind"], "set");
    assert_eq!(users["unique"], 2);
}

#[test]
fn error_records_follow_the_schema() {
    let lines = lines();
    let errors: Vec<_> = lines.iter().filter(|l| l["type"] == "error").collect();
    assert_eq!(errors.len(), 1);
    let e = errors[0];
    assert_eq!(e["level"], "error");
    assert_eq!(e["message"], "write failed");
    assert_eq!(e["error_chain"], serde_json::json!(["disk full"]));
    assert_eq!(e["fields"], serde_json::json!({"attempt": 3}));
    assert_eq!(e["spans"][0]["name"], "request");
    assert_eq!(e["spans"][0]["fields"], serde_json::json!({"id": 7}));
    assert_eq!(e["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(e["span_id"], e["spans"][0]["span_id"]);
    assert_eq!(e["breadcrumbs"][0]["message"], "a breadcrumb");
    assert_eq!(e["tags"], serde_json::json!({"service": "svc"}));
    assert!(e["timestamp"].as_f64().unwrap() > 1_600_000_000.0);
    assert!(e["target"].as_str().unwrap().contains("jsonl"));
    assert!(e["line"].as_u64().is_some());
}
