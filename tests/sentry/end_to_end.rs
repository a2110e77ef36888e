//! What reaches Sentry: every envelope read back by Sentry's parser and Relay's normalizer.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use tracing::{error, info, info_span, warn};

use crate::peers::{check, discarded, Envelope, Receiver};
use crate::{pipeline, sentry};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("read timed out")
    }
}

impl std::error::Error for Timeout {}

#[derive(Debug)]
struct QueryFailed(Timeout);

impl fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query failed")
    }
}

impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Every envelope received, each checked by the peers.
fn envelopes(receiver: &Receiver) -> Vec<Envelope> {
    let received = receiver.received();
    received
        .iter()
        .map(|r| {
            assert_eq!(r.path(), "/api/42/envelope/");
            assert!(r.answered_ok(), "{:?}", r.0);
            let auth = r.header("x-sentry-auth").expect("auth header");
            assert!(auth.starts_with("Sentry ") && auth.contains("sentry_version=7"), "{auth}");
            assert!(auth.contains("sentry_key=public"), "{auth}");
            assert_eq!(r.header("content-type"), Some("application/x-sentry-envelope"));
            check(&r.body());
            r.envelope()
        })
        .collect()
}

fn with_item<'a>(envelopes: &'a [Envelope], item_type: &str) -> Vec<&'a Envelope> {
    envelopes.iter().filter(|e| e.types().iter().any(|t| t == item_type)).collect()
}

#[test]
fn an_error_arrives_with_its_chain_spans_trace_and_breadcrumbs() {
    let receiver = Receiver::start();
    let builder =
        sentry(&receiver).release("shop@1.2.3").environment("staging").tag("region", "eu");
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let request = info_span!("request", route = "/users", user_id = 7);
        let _r = request.enter();
        info!(attempt = 1, "connecting");
        warn!("slow pool");
        let failure = QueryFailed(Timeout);
        error!(
            error = &failure as &dyn std::error::Error,
            password = "hunter2",
            table = "users",
            "loading users failed"
        );
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    let events = with_item(&envelopes, "event");
    assert_eq!(events.len(), 1, "{envelopes:?}");
    let envelope = events[0];
    let event = envelope.json("event").unwrap();
    assert_eq!(envelope.header["event_id"], event["event_id"]);
    assert_eq!(envelope.header["sdk"]["name"], "sentry.rust.tracing-tally");

    assert_eq!(event["level"], "error");
    assert_eq!(event["message"], "loading users failed");
    assert_eq!(event["release"], "shop@1.2.3");
    assert_eq!(event["environment"], "staging");
    assert_eq!(event["server_name"], "test-host");
    assert_eq!(event["transaction"], "request");
    assert_eq!(event["tags"]["region"], "eu");

    let values = event["exception"]["values"].as_array().unwrap();
    let chain: Vec<_> = values.iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert_eq!(chain, ["read timed out", "query failed"], "root cause first");
    assert_eq!(values[0]["type"], "Timeout");
    assert_eq!(values[1]["type"], "QueryFailed");
    assert_eq!(values[1]["mechanism"]["handled"], true);
    assert!(values[0].get("mechanism").is_none());

    let contexts = &event["contexts"];
    assert_eq!(contexts["fields"]["table"], "users");
    assert_eq!(contexts["fields"]["password"], "[Filtered]", "scrubbed by default");
    assert_eq!(contexts["span 0: request"]["route"], "/users");
    let trace_id = contexts["trace"]["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert_eq!(contexts["trace"]["span_id"], contexts["span 0: request"]["span_id"]);

    let crumbs = event["breadcrumbs"]["values"].as_array().unwrap();
    let messages: Vec<_> = crumbs.iter().map(|c| c["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["connecting", "slow pool"]);
    assert_eq!(crumbs[1]["level"], "warning");
    assert_eq!(crumbs[0]["data"]["attempt"], 1);
    drop(guard);
}

#[test]
fn a_trace_arrives_as_a_transaction_with_its_sampling_context() {
    let receiver = Receiver::start();
    let builder = sentry(&receiver).release("shop@1.2.3").traces_sample_rate(1.0);
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let root = info_span!("GET /users", sentry.op = "http.server", route = "/users");
        let _r = root.enter();
        info_span!("db.query", sentry.op = "db", sentry.description = "SELECT * FROM users")
            .in_scope(|| {
                info_span!("decode").in_scope(|| {});
            });
        info_span!("render").in_scope(|| error!("template missing"));
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    let transactions = with_item(&envelopes, "transaction");
    assert_eq!(transactions.len(), 1, "{envelopes:?}");
    let envelope = transactions[0];
    let tx = envelope.json("transaction").unwrap();
    assert_eq!(tx["type"], "transaction");
    assert_eq!(tx["transaction"], "GET /users");
    assert_eq!(tx["release"], "shop@1.2.3");
    let trace = &tx["contexts"]["trace"];
    assert_eq!(trace["op"], "http.server");
    assert_eq!(trace["status"], "ok");
    let trace_id = trace["trace_id"].as_str().unwrap();

    let spans = tx["spans"].as_array().unwrap();
    let span = |name: &str| {
        spans
            .iter()
            .find(|s| s["description"] == name || s["op"] == name)
            .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
    };
    assert_eq!(spans.len(), 3);
    assert_eq!(span("db")["description"], "SELECT * FROM users");
    assert_eq!(span("db")["parent_span_id"], trace["span_id"]);
    assert_eq!(span("decode")["parent_span_id"], span("db")["span_id"]);
    assert_eq!(span("render")["status"], "internal_error");
    for s in spans {
        assert_eq!(s["trace_id"], trace_id);
        assert!(s["start_timestamp"].as_f64().unwrap() >= tx["start_timestamp"].as_f64().unwrap());
        assert!(s["timestamp"].as_f64().unwrap() <= tx["timestamp"].as_f64().unwrap());
    }

    // The dynamic sampling context travels in the envelope header.
    let dsc = &envelope.header["trace"];
    assert_eq!(dsc["trace_id"], trace_id);
    assert_eq!(dsc["public_key"], "public");
    assert_eq!(dsc["release"], "shop@1.2.3");
    assert_eq!(dsc["sample_rate"], "1");
    assert_eq!(dsc["sampled"], "true");
    assert_eq!(dsc["transaction"], "GET /users");

    // The error inside `render` belongs to the same trace.
    let event = with_item(&envelopes, "event")[0].json("event").unwrap();
    assert_eq!(event["contexts"]["trace"]["trace_id"], trace_id);
    assert_eq!(event["contexts"]["trace"]["span_id"], span("render")["span_id"]);
    drop(guard);
}

#[test]
fn sessions_arrive_at_start_and_at_shutdown() {
    let receiver = Receiver::start();
    let builder = sentry(&receiver)
        .release("shop@1.2.3")
        .environment("production")
        .sessions(true)
        .request_sessions(["request"]);
    let (dispatch, guard) = pipeline(builder);
    assert!(guard.flush(WAIT), "the first update goes out at the first flush");
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..5 {
            let span = info_span!("request", i);
            let _s = span.enter();
            if i == 3 {
                error!("request failed");
            }
        }
        error!("outside any request");
    });
    assert!(guard.shutdown(WAIT));
    let envelopes = envelopes(&receiver);
    let mut updates: Vec<Value> = Vec::new();
    let mut aggregates: Vec<Value> = Vec::new();
    for envelope in &envelopes {
        for (header, payload) in &envelope.items {
            let payload: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
            match header["type"].as_str() {
                Some("session") => updates.push(payload),
                Some("sessions") => aggregates.push(payload),
                _ => {}
            }
        }
    }
    assert_eq!(updates.len(), 2, "{updates:?}");
    let first = &updates[0];
    let last = updates.last().unwrap();
    assert_eq!(first["init"], true);
    assert_eq!(first["status"], "ok");
    assert_eq!(first["attrs"]["release"], "shop@1.2.3");
    assert_eq!(first["attrs"]["environment"], "production");
    assert_eq!(last["status"], "exited");
    assert_eq!(last["sid"], first["sid"]);
    assert_eq!(last["errors"], 2, "both errors count against the process session");

    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for payload in &aggregates {
        assert_eq!(payload["attrs"]["release"], "shop@1.2.3");
        for bucket in payload["aggregates"].as_array().unwrap() {
            for (status, n) in bucket.as_object().unwrap() {
                if let Some(n) = n.as_u64() {
                    *counts.entry(status.clone()).or_default() += n;
                }
            }
        }
    }
    assert_eq!(counts.get("exited"), Some(&4), "{aggregates:?}");
    assert_eq!(counts.get("errored"), Some(&1), "{aggregates:?}");
}

#[test]
fn metrics_arrive_as_trace_metric_items() {
    let receiver = Receiver::start();
    let builder = sentry(&receiver).release("shop@1.2.3").environment("production");
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        for status in [200, 200, 500] {
            info!(counter.requests = 1, route = "/users", status);
        }
        info!(gauge.queue_depth = 17);
        for ms in [3.0, 5.0, 250.0] {
            info!(histogram.latency_ms = ms, route = "/users");
        }
        for user in ["a", "b", "a"] {
            info!(set.visitors = user);
        }
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    let containers = with_item(&envelopes, "trace_metric");
    assert!(!containers.is_empty(), "{envelopes:?}");
    let mut items = Vec::new();
    for envelope in containers {
        let (header, payload) = &envelope.items[0];
        assert_eq!(header["content_type"], "application/vnd.sentry.items.trace-metric+json");
        let payload: Value = serde_json::from_slice(payload).unwrap();
        let list = payload["items"].as_array().unwrap().clone();
        assert_eq!(header["item_count"], list.len());
        items.extend(list);
    }
    let find = |name: &str, f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        items.iter().filter(|i| i["name"] == name && f(i)).cloned().collect()
    };
    let status = |s: &'static str| move |i: &Value| i["attributes"]["status"]["value"] == s;
    let ok = find("requests", &status("200"));
    assert_eq!(ok.len(), 1, "{items:?}");
    assert_eq!(ok[0]["type"], "counter");
    assert_eq!(ok[0]["value"], 2.0);
    assert_eq!(ok[0]["attributes"]["route"]["value"], "/users");
    assert_eq!(ok[0]["attributes"]["sentry.release"]["value"], "shop@1.2.3");
    assert_eq!(ok[0]["attributes"]["sentry.environment"]["value"], "production");
    assert_eq!(find("requests", &status("500"))[0]["value"], 1.0);

    let depth = find("queue_depth", &|_| true);
    assert_eq!((depth.len(), depth[0]["type"].as_str()), (1, Some("gauge")));
    assert_eq!(depth[0]["value"], 17.0);

    let latency = find("latency_ms", &|_| true);
    assert_eq!(latency.len(), 3, "three values, each its own item");
    assert!(latency.iter().all(|i| i["type"] == "distribution"));
    let mut values: Vec<f64> = latency.iter().map(|i| i["value"].as_f64().unwrap()).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values[0], 3.0, "exact minimum");
    assert_eq!(values[2], 250.0, "exact maximum");
    assert!((values[1] - 5.0).abs() / 5.0 < 0.01, "{values:?}");

    let visitors = find("visitors", &|_| true);
    assert_eq!(visitors[0]["value"], 2.0, "a set sends its unique count");
    assert!(find("tally.events", &|_| true).is_empty(), "no self-metrics");
    drop(guard);
}

#[test]
fn large_envelopes_are_gzipped_and_small_ones_are_not() {
    let receiver = Receiver::start();
    let (dispatch, guard) = pipeline(sentry(&receiver));
    tracing::dispatcher::with_default(&dispatch, || {
        error!(payload = "x".repeat(4096).as_str(), "big");
    });
    assert!(guard.flush(WAIT));
    tracing::dispatcher::with_default(&dispatch, || error!("small"));
    assert!(guard.flush(WAIT));
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].header("content-encoding"), Some("gzip"));
    assert_eq!(received[1].header("content-encoding"), None);
    for r in &received {
        check(&r.body());
    }
    drop(guard);
}

#[test]
fn before_send_can_drop_and_the_drop_is_reported() {
    let receiver = Receiver::start();
    let options = tracing_tally::sink::sentry::SentryOptions::new(&receiver.dsn())
        .unwrap()
        .before_send(|event| (event.message.as_deref() != Some("noise")).then_some(event));
    let builder = tracing_tally::Tally::builder().manual().sentry_options(options);
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        error!("noise");
        error!("noise");
        error!("signal");
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    let events = with_item(&envelopes, "event");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json("event").unwrap()["message"], "signal");
    assert_eq!(discarded(&envelopes, "before_send", "error"), 2, "{envelopes:?}");
    drop(guard);
}

#[test]
fn unsampled_traces_are_reported_as_sample_rate_discards() {
    let receiver = Receiver::start();
    let (dispatch, guard) = pipeline(sentry(&receiver).traces_sample_rate(0.0));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..3 {
            info_span!("request").in_scope(|| info_span!("child").in_scope(|| {}));
        }
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    assert!(with_item(&envelopes, "transaction").is_empty());
    assert_eq!(discarded(&envelopes, "sample_rate", "transaction"), 3, "{envelopes:?}");
    assert_eq!(
        discarded(&envelopes, "sample_rate", "span"),
        3,
        "roots only: children are never recorded"
    );
    drop(guard);
}

#[test]
fn spans_past_the_limit_are_counted_in_the_transaction_and_a_client_report() {
    let receiver = Receiver::start();
    let (dispatch, guard) = pipeline(sentry(&receiver).traces_sample_rate(1.0).max_spans(3));
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("batch").in_scope(|| {
            for i in 0..10 {
                info_span!("item", i).in_scope(|| {});
            }
        });
    });
    assert!(guard.flush(WAIT));
    let envelopes = envelopes(&receiver);
    let tx = with_item(&envelopes, "transaction")[0].json("transaction").unwrap();
    let kept = tx["spans"].as_array().unwrap().len() as u64;
    let total = tx["_meta"]["spans"][""]["len"].as_u64().unwrap();
    assert_eq!(total, 10, "the original length: {tx}");
    let dropped = total - kept;
    assert!(kept <= 3);
    assert_eq!(discarded(&envelopes, "buffer_overflow", "span"), dropped);
    drop(guard);
}

#[test]
fn legacy_statsd_items_pass_relays_checks() {
    let receiver = Receiver::start();
    let options = tracing_tally::sink::sentry::SentryOptions::new(&receiver.dsn())
        .expect("dsn")
        .timeout(Duration::from_secs(5))
        .legacy_statsd(true);
    let builder =
        tracing_tally::Tally::builder().manual().sentry_options(options).release("shop@1.2.3");
    let (dispatch, guard) = pipeline(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        info!(monotonic_counter.requests = 2, route = "/users|a,b\nc");
        info!(gauge.queue_depth = 17);
        info!("distribution.payload@byte" = 512);
        info!(set.visitors = "a");
    });
    assert!(guard.flush(WAIT));
    // `envelopes` runs every checker, Relay's included, on each envelope.
    let envelopes = envelopes(&receiver);
    let lines: Vec<String> = envelopes
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|(header, _)| header["type"] == "statsd")
        .flat_map(|(_, payload)| {
            String::from_utf8(payload.clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let line = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).cloned();
    let requests = line("requests@none:2|c|#").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(requests.contains("route:/users\\u{7c}a\\u{2c}b\\nc"), "{requests}");
    assert!(line("queue_depth@none:17:17:17:17:1|g").is_some(), "{lines:?}");
    assert!(line("payload@byte:512|d").is_some(), "{lines:?}");
    assert!(line("visitors@none:1|g").is_some(), "{lines:?}");
    assert!(with_item(&envelopes, "trace_metric").is_empty(), "legacy only");
    drop(guard);
}
