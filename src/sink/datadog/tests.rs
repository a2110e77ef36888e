//! The sink end to end: batches in, requests out (loopback server).

use std::time::{Duration, Instant, SystemTime};

use super::losses::testing::recording;
use super::losses::DropCause;
use super::testing::{
    batch, batch_with_errors, context, counter, distribution, error_event, fresh, gauge, set,
    Reply, Request, Server, KEY,
};
use super::*;
use crate::sink::Refused;
use crate::stats::DropReason;

fn sink(server: &Server, tweak: impl FnOnce(DatadogOptions) -> DatadogOptions) -> DatadogSink {
    let (losses, _) = recording();
    let options = tweak(DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap());
    DatadogSink::with_losses(options, losses)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn series(requests: &[Request], path: &str) -> Vec<serde_json::Value> {
    requests
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| r.json()["series"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn exports_series_distribution_points_and_events() {
    let server = Server::start();
    let mut sink = sink(&server, |o| o);
    let mut error = error_event(Some("payment failed"), &["card declined"]);
    error.timestamp = SystemTime::now();
    let mut batch = batch(vec![
        fresh(counter("orders", None, &[("shop", "eu")], 3.0)),
        fresh(gauge("queue.depth", None, &[], 12.0)),
        fresh(set("customers", &[], 2)),
        fresh(distribution("checkout.duration", Some("millisecond"), &[], &[10.0, 20.0, 30.0])),
    ]);
    batch.errors = vec![error];
    sink.export(&batch).unwrap();
    sink.flush(soon()).unwrap();
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v2/series", "/api/v1/distribution_points", "/api/v1/events"]);

    let sent = series(&requests, "/api/v2/series");
    let summary: Vec<(&str, u64, f64)> = sent
        .iter()
        .map(|s| {
            let point = &s["points"][0];
            (
                s["metric"].as_str().unwrap(),
                s["type"].as_u64().unwrap(),
                point["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("orders", 1, 3.0), ("queue.depth", 3, 12.0), ("customers", 3, 2.0)]);
    assert_eq!(sent[0]["tags"], serde_json::json!(["env:prod", "service:api", "shop:eu"]));
    assert_eq!(sent[0]["resources"], serde_json::json!([{ "name": "web-1", "type": "host" }]));

    let points = series(&requests, "/api/v1/distribution_points");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["metric"], "checkout.duration");
    assert_eq!(points[0]["host"], "web-1");
    let values = points[0]["points"][0][1].as_array().unwrap();
    assert_eq!((values.len(), values[0].as_f64(), values[2].as_f64()), (3, Some(10.0), Some(30.0)));

    let event = requests[2].json();
    assert_eq!(event["title"], "payment failed: card declined");
    assert_eq!(event["alert_type"], "error");
    assert_eq!(event["host"], "web-1");
}

#[test]
fn both_mode_sends_points_and_aggregates() {
    let server = Server::start();
    let mut sink = sink(&server, |o| o.distributions(DistributionMode::Both).host(None));
    let values: Vec<f64> = (1..=10).map(f64::from).collect();
    sink.export(&batch(vec![fresh(distribution("latency", Some("ms"), &[], &values))])).unwrap();
    sink.flush(soon()).unwrap();
    let requests = server.requests();
    let names: Vec<String> = series(&requests, "/api/v2/series")
        .iter()
        .map(|s| s["metric"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["latency.max", "latency.median", "latency.avg", "latency.count", "latency.95percentile"]
    );
    let points = series(&requests, "/api/v1/distribution_points");
    assert_eq!(points[0]["points"][0][1].as_array().unwrap().len(), 10);
    assert!(points[0].get("host").is_none());
}

#[test]
fn large_batches_are_chunked_by_1000_series() {
    let server = Server::start();
    let mut sink = sink(&server, |o| o.compression(Compression::Gzip));
    let records: Vec<_> = (0..2500)
        .map(|i| fresh(counter("requests", None, &[("route", &format!("/r{i}"))], 1.0)))
        .collect();
    sink.export(&batch(records)).unwrap();
    sink.flush(soon()).unwrap();
    let requests = server.requests();
    let counts: Vec<usize> =
        requests.iter().map(|r| r.json()["series"].as_array().unwrap().len()).collect();
    assert_eq!(counts, [1000, 1000, 500]);
    assert!(requests.iter().all(|r| r.header("content-encoding") == Some("gzip")));
    assert!(requests.iter().all(|r| r.body.len() <= 460_800));
}

#[test]
fn an_export_on_a_stuck_intake_keeps_the_deadline_of_a_flush_waiting_on_the_lane() {
    let server = Server::start();
    server.default_reply(Reply::status(202).delay(Duration::from_secs(2)));
    let (losses, _) = recording();
    let options = DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap();
    let mut sink = DatadogSink::with_losses(options, losses.clone());
    let cx = context();
    sink.start(cx.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    cx.signals().request(deadline);
    let batch = batch(vec![fresh(counter("c", None, &[], 1.0))]);
    for _ in 0..3 {
        sink.export(&batch).unwrap();
    }
    let error = sink.shutdown(deadline).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(error.kind(), ExportErrorKind::Timeout);
    assert_eq!(losses.get(DropCause::Shutdown), 3);
}

#[test]
fn what_the_lane_refused_is_noted_as_queue_full_but_not_booked_again() {
    let server = Server::start();
    let (losses, forwarded) = recording();
    let options = DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap();
    let mut sink = DatadogSink::with_losses(options, losses.clone());
    let cx = context();
    sink.start(cx.clone());
    cx.signals().refused.add(Refused {
        metrics: 7,
        errors: 2,
        transactions: 5,
        ..Refused::default()
    });
    sink.export(&batch(Vec::new())).unwrap();
    assert_eq!(losses.get(DropCause::QueueFull), 9);
    assert!(forwarded.lock().unwrap().is_empty());
    assert!(cx.take_refused().is_empty(), "taken once");
}

#[test]
fn losses_are_booked_through_the_context_once_started() {
    let server = Server::start();
    server.default_reply(Reply::status(400));
    let options = DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap();
    let mut sink = DatadogSink::new(options);
    let cx = context();
    sink.start(cx.clone());
    sink.export(&batch(vec![fresh(counter("c", None, &[], 1.0))])).unwrap();
    sink.flush(soon()).unwrap();
    let stats = cx.stats();
    assert_eq!(stats.dropped(DropReason::SinkError), 1);
    assert_eq!(sink.losses.get(DropCause::Rejected), 1);
}

#[test]
fn a_sink_that_was_never_started_still_sends() {
    let server = Server::start();
    let options = DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap();
    let mut sink = DatadogSink::new(options);
    sink.export(&batch(vec![fresh(counter("c", None, &[], 1.0))])).unwrap();
    sink.shutdown(soon()).unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn flush_and_shutdown_report_what_could_not_be_delivered() {
    let server = Server::start();
    server.default_reply(Reply::status(503).header("Retry-After", "0"));
    let mut sink = sink(&server, |o| o.max_retries(0));
    sink.export(&batch(vec![fresh(counter("c", None, &[], 1.0))])).unwrap();
    let error = sink.flush(soon()).unwrap_err();
    assert_eq!(error.kind(), ExportErrorKind::Io);
    assert!(error.to_string().contains("kept for a retry"), "{error}");
    let error = sink.shutdown(soon()).unwrap_err();
    assert!(error.to_string().contains("dropped"), "{error}");
    assert_eq!(sink.losses.get(DropCause::Shutdown), 1);
}

#[test]
fn old_records_and_excess_events_are_counted_for_the_pipeline() {
    let server = Server::start();
    let (losses, forwarded) = recording();
    let options = DatadogOptions::new(KEY).unwrap().url(&server.url()).unwrap().events_per_key(1);
    let mut sink = DatadogSink::with_losses(options, losses);
    // `counter` records are from 2023: far outside the intake's window.
    sink.export(&batch(vec![counter("old", None, &[], 1.0)])).unwrap();
    let errors: Vec<_> = (0..3)
        .map(|_| {
            let mut error = error_event(Some("same"), &[]);
            error.timestamp = SystemTime::now();
            error
        })
        .collect();
    sink.export(&batch_with_errors(errors)).unwrap();
    sink.flush(soon()).unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        *forwarded.lock().unwrap(),
        [(DropReason::SinkError, 1), (DropReason::RateLimited, 1), (DropReason::RateLimited, 1)]
    );
}

#[test]
fn the_key_never_shows() {
    let server = Server::start();
    let sink = sink(&server, |o| o);
    let debug = format!("{sink:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains(&server.url()));
    assert_eq!(sink.name(), "datadog");
}

#[test]
fn parked_payloads_are_retried_at_the_next_export() {
    let server = Server::start();
    server.script([Reply::status(503).header("Retry-After", "0")]);
    let mut sink = sink(&server, |o| o.max_retries(0));
    sink.export(&batch(vec![fresh(counter("first", None, &[], 1.0))])).unwrap();
    server.wait_for(1);
    // Nothing new to send, but the export tries the buffer again, without a flush.
    sink.export(&batch(Vec::new())).unwrap();
    let requests = server.wait_for(2);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].answered, 202);
    assert_eq!(series(&requests[1..], "/api/v2/series")[0]["metric"], "first");
    sink.flush(soon()).unwrap();
}

#[test]
fn a_transport_set_in_options_sends_for_the_sink_without_a_network() {
    use crate::sink::http::{HttpError, HttpRequest, HttpResponse, HttpTransport};
    use std::sync::{Arc, Mutex};

    /// Each request's URL and decoded body.
    type Sent = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// Answers 503 (retry at once), then 202; records what it was asked to send.
    #[derive(Clone, Default)]
    struct Scripted(Sent);
    impl HttpTransport for Scripted {
        fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
            let encoding = request.headers.iter().find(|(n, _)| *n == "Content-Encoding");
            let compression = match encoding.map(|(_, v)| *v) {
                Some("deflate") => Compression::Deflate,
                Some("gzip") => Compression::Gzip,
                _ => Compression::None,
            };
            let body = payload::decompress(request.body, compression).unwrap();
            let mut sent = self.0.lock().unwrap();
            sent.push((request.url.to_owned(), body));
            Ok(match sent.len() {
                1 => HttpResponse::new(503).with_header("Retry-After", "0"),
                _ => HttpResponse::new(202),
            })
        }
    }

    let transport = Scripted::default();
    let options = DatadogOptions::new(KEY).unwrap().transport(transport.clone());
    let (losses, _) = recording();
    let mut sink = DatadogSink::with_losses(options, losses.clone());
    sink.export(&batch(vec![fresh(counter("orders", None, &[], 3.0))])).unwrap();
    sink.flush(soon()).unwrap();
    let sent = transport.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "the 503 is retried");
    for (url, body) in &sent {
        assert_eq!(url, "https://api.datadoghq.com/api/v2/series");
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["series"][0]["metric"], "orders");
        assert_eq!(body["series"][0]["points"][0]["value"], 3.0);
    }
    assert_eq!(sent[0].1, sent[1].1, "the retry sends the same payload");
    assert_eq!(format!("{losses:?}"), "{}");
}
