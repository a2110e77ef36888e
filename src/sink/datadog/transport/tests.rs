//! The sender against a loopback server with scripted answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::sink::datadog::api_key::ApiKey;
use crate::sink::datadog::losses::testing::recording;
use crate::sink::datadog::losses::DropCause;
use crate::sink::datadog::options::Compression;
use crate::sink::datadog::payload::{pack, Items, Kind};
use crate::sink::datadog::testing::{context, Reply, Request, Server, KEY};
use crate::sink::datadog::window::unix;
use crate::sink::http::{HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use crate::stats::DropReason;

fn options(server: &Server) -> TransportOptions {
    TransportOptions { base_url: server.url(), ..options_without_server() }
}

fn start(options: TransportOptions) -> (Transport, Losses) {
    let (losses, _) = recording();
    (Transport::new(options, losses.clone()), losses)
}

/// Flushes by `deadline`; the payloads still waiting, if any.
fn flush(transport: &mut Transport, deadline: Instant) -> Result<(), usize> {
    transport.flush(deadline).map_err(|pending| pending.payloads)
}

/// A payload of `n` series named `<name>.<i>`, stamped now.
fn payload(kind: Kind, name: &str, n: usize) -> Payload {
    payload_at(kind, name, &vec![unix(SystemTime::now()); n])
}

fn payload_at(kind: Kind, name: &str, timestamps: &[i64]) -> Payload {
    let mut items = Items::default();
    for (i, &ts) in timestamps.iter().enumerate() {
        items.push(ts, None, |out| {
            out.extend_from_slice(format!(r#"{{"metric":"{name}.{i}","ts":{ts}}}"#).as_bytes());
        });
    }
    let compression = kind.compression(Compression::Deflate);
    pack(kind, compression, &items, 0..timestamps.len())
}

/// The metric names in a request's body.
fn names(request: &Request) -> Vec<String> {
    let body = request.json();
    let series = match body.get("series") {
        Some(series) => series.as_array().unwrap().clone(),
        None => vec![body],
    };
    series.iter().map(|s| s["metric"].as_str().unwrap().to_owned()).collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn posts_with_the_documented_headers() {
    let server = Server::start();
    let (mut transport, losses) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 2));
    transport.send(payload(Kind::Distribution, "d", 1));
    transport.send(payload(Kind::Event, "e", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v2/series", "/api/v1/distribution_points", "/api/v1/events"]);
    for request in &requests {
        assert_eq!(request.header("dd-api-key"), Some(KEY));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let agent = request.header("user-agent").unwrap();
        assert_eq!(agent, format!("tracing-tally/{}", env!("CARGO_PKG_VERSION")));
    }
    assert_eq!(requests[0].header("content-encoding"), Some("deflate"));
    assert_eq!(requests[1].header("content-encoding"), Some("deflate"));
    assert_eq!(requests[2].header("content-encoding"), None);
    assert_eq!(names(&requests[0]), ["a.0", "a.1"]);
    assert_eq!(names(&requests[2]), ["e.0"]);
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn server_errors_are_retried_until_accepted() {
    let server = Server::start();
    let zero = |status| Reply::status(status).header("Retry-After", "0");
    server.script([zero(500), zero(503), zero(408)]);
    let (mut transport, losses) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let answered: Vec<u16> = server.requests().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 503, 408, 202]);
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn backoff_waits_between_attempts_and_retry_after_replaces_it() {
    let server = Server::start();
    server.script([Reply::status(502), Reply::status(429).header("Retry-After", "1")]);
    let (mut transport, _) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first = requests[1].received - requests[0].received;
    let second = requests[2].received - requests[1].received;
    // First retry: 0.25 s to 0.5 s. Then exactly what Retry-After said.
    assert!(first >= Duration::from_millis(250) && first < Duration::from_secs(3), "{first:?}");
    assert!(second >= Duration::from_secs(1), "{second:?}");
}

#[test]
fn too_large_payloads_are_split_in_half() {
    let server = Server::start();
    server.script([Reply::status(413)]);
    let (mut transport, losses) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 5));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let sizes: Vec<Vec<String>> = server.requests().iter().map(names).collect();
    assert_eq!(
        sizes,
        [vec!["a.0", "a.1", "a.2", "a.3", "a.4"], vec!["a.0", "a.1"], vec!["a.2", "a.3", "a.4"]]
    );
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn single_series_still_too_large_are_dropped() {
    let server = Server::start();
    server.default_reply(Reply::status(413));
    let (mut transport, losses) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 4));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    // 4 -> 2 + 2 -> 1 + 1 + 1 + 1.
    assert_eq!(server.requests().len(), 7);
    assert_eq!(losses.get(DropCause::TooLarge), 4);
}

#[test]
fn refused_payloads_are_dropped_and_counted() {
    let server = Server::start();
    server.script([Reply::status(400), Reply::status(404)]);
    let (losses, forwarded) = recording();
    let mut transport = Transport::new(options(&server), losses.clone());
    transport.send(payload(Kind::Series, "a", 3));
    transport.send(payload(Kind::Series, "b", 2));
    transport.send(payload(Kind::Series, "c", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    assert_eq!(server.requests().len(), 3);
    assert_eq!(losses.get(DropCause::Rejected), 5);
    assert_eq!(
        *forwarded.lock().unwrap(),
        [(DropReason::SinkError, 3), (DropReason::SinkError, 2)]
    );
}

#[test]
fn repeated_401_and_403_open_the_circuit_breaker() {
    let server = Server::start();
    server.script([Reply::status(401), Reply::status(403)]);
    server.default_reply(Reply::status(403));
    let (mut transport, losses) = start(options(&server));
    for name in ["a", "b", "c", "d", "e"] {
        transport.send(payload(Kind::Series, name, 1));
    }
    // Three refusals open the breaker: the last two payloads wait, unsent.
    assert_eq!(flush(&mut transport, soon()), Err(2));
    assert_eq!(server.requests().len(), 3);
    assert_eq!(losses.get(DropCause::Unauthorized), 3);
    // Still open: another flush sends nothing.
    assert_eq!(flush(&mut transport, soon()), Err(2));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn failed_payloads_wait_in_the_buffer_for_the_next_flush() {
    let server = Server::start();
    server.default_reply(Reply::status(500).header("Retry-After", "0"));
    let mut options = options(&server);
    options.max_retries = 1;
    let (mut transport, losses) = start(options);
    transport.send(payload(Kind::Series, "a", 1));
    transport.send(payload(Kind::Series, "b", 1));
    assert_eq!(flush(&mut transport, soon()), Err(2));
    // "a" was tried twice when sent and twice more by the flush; "b" waited behind it
    // without spending retries of its own.
    let tried: Vec<Vec<String>> = server.requests().iter().map(names).collect();
    assert_eq!(tried, [["a.0"], ["a.0"], ["a.0"], ["a.0"]]);
    server.default_reply(Reply::status(202));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let tried: Vec<Vec<String>> = server.requests().iter().skip(4).map(names).collect();
    assert_eq!(tried, [["a.0"], ["b.0"]]);
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn the_buffer_is_bounded_and_drops_the_oldest() {
    let server = Server::start();
    server.default_reply(Reply::status(503).header("Retry-After", "0"));
    let mut options = options(&server);
    options.max_retries = 0;
    let one = payload(Kind::Series, "x", 1).size();
    options.retry_buffer_bytes = one * 2;
    let (mut transport, losses) = start(options);
    for name in ["a", "b", "c", "d"] {
        transport.send(payload(Kind::Series, name, 1));
    }
    assert_eq!(flush(&mut transport, soon()), Err(2));
    assert_eq!(losses.get(DropCause::BufferFull), 2);
    server.default_reply(Reply::status(202));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let delivered: Vec<Vec<String>> =
        server.requests().iter().filter(|r| r.answered == 202).map(names).collect();
    assert_eq!(delivered, [["c.0"], ["d.0"]]);
}

#[test]
fn a_long_retry_after_pauses_sending() {
    let server = Server::start();
    server.script([Reply::status(429).header("Retry-After", "60")]);
    let (mut transport, _) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 1));
    transport.send(payload(Kind::Series, "b", 1));
    assert_eq!(flush(&mut transport, soon()), Err(2));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_flush_deadline_cuts_retries_short() {
    let server = Server::start();
    server.default_reply(Reply::status(503).header("Retry-After", "5"));
    let mut options = options(&server);
    options.max_retries = 10;
    let (mut transport, _) = start(options);
    let cx = context();
    transport.start(cx.clone());
    let (asked, deadline) = std::thread::scope(|scope| {
        // The lane asks for a flush while the sender waits 5 s before its retry.
        let asker = scope.spawn(|| {
            server.wait_for(1);
            let deadline = Instant::now() + Duration::from_millis(300);
            cx.signals().request(deadline);
            (Instant::now(), deadline)
        });
        transport.send(payload(Kind::Series, "a", 1));
        asker.join().unwrap()
    });
    let result = flush(&mut transport, deadline);
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    assert_eq!(result, Err(1));
}

#[test]
fn a_request_is_given_no_more_than_the_time_left_before_a_deadline() {
    let server = Server::start();
    server.default_reply(Reply::status(202).delay(Duration::from_secs(3)));
    let (mut transport, losses) = start(options(&server));
    let cx = context();
    transport.start(cx.clone());
    // A shutdown waits on the lane: the request may not outlast it, stuck as the intake is.
    let started = Instant::now();
    let deadline = started + Duration::from_millis(200);
    cx.signals().request(deadline);
    transport.send(payload(Kind::Series, "a", 1));
    let result = transport.shutdown(deadline);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(result, Err(Pending { payloads: 1, out_of_time: true }));
    assert_eq!(losses.get(DropCause::Shutdown), 1);
}

#[test]
fn a_sender_without_a_context_keeps_its_flushes_deadlines() {
    let server = Server::start();
    server.default_reply(Reply::status(503).header("Retry-After", "0"));
    let mut options = options(&server);
    options.max_retries = 0;
    let (mut transport, _) = start(options);
    transport.send(payload(Kind::Series, "a", 1));
    server.default_reply(Reply::status(202).delay(Duration::from_secs(3)));
    let started = Instant::now();
    let result = transport.flush(started + Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(result, Err(Pending { payloads: 1, out_of_time: true }));
}

#[test]
fn shutdown_drops_and_counts_what_still_waits() {
    let server = Server::start();
    server.default_reply(Reply::status(500).header("Retry-After", "0"));
    let mut options = options(&server);
    options.max_retries = 0;
    let (mut transport, losses) = start(options);
    transport.send(payload(Kind::Series, "a", 3));
    assert_eq!(transport.shutdown(soon()), Err(Pending { payloads: 1, out_of_time: false }));
    assert_eq!(losses.get(DropCause::Shutdown), 3);
}

#[test]
fn items_that_aged_out_are_dropped_before_sending() {
    let server = Server::start();
    let now = unix(SystemTime::now());
    let (mut transport, losses) = start(options(&server));
    transport.send(payload_at(Kind::Series, "a", &[now - 7200, now, now + 7200]));
    transport.send(payload_at(Kind::Series, "b", &[now - 7200]));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(names(&requests[0]), ["a.1"]);
    assert_eq!((losses.get(DropCause::Stale), losses.get(DropCause::Future)), (2, 1));
}

#[test]
fn timeouts_resend_series_but_not_events() {
    let server = Server::start();
    server.script([Reply::status(202).delay(Duration::from_millis(800))]);
    let mut options = options(&server);
    options.timeout = Duration::from_millis(300);
    let (mut transport, losses) = start(options);
    transport.send(payload(Kind::Event, "e", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(losses.get(DropCause::Timeout), 1);

    server.script([Reply::status(202).delay(Duration::from_millis(800))]);
    transport.send(payload(Kind::Series, "a", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    assert_eq!(server.requests().len(), 3);
    assert_eq!(losses.get(DropCause::Timeout), 1);
}

#[test]
fn unreachable_intakes_are_retried_then_parked() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = Server::start();
    let mut options = options(&server);
    options.base_url = url;
    options.max_retries = 1;
    let (mut transport, losses) = start(options);
    transport.send(payload(Kind::Series, "a", 1));
    assert_eq!(flush(&mut transport, soon()), Err(1));
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn gzip_and_uncompressed_bodies_are_labelled() {
    let server = Server::start();
    let (mut transport, _) = start(options(&server));
    let mut items = Items::default();
    items.push(unix(SystemTime::now()), None, |out| out.extend_from_slice(br#"{"metric":"g"}"#));
    transport.send(pack(Kind::Series, Compression::Gzip, &items, 0..1));
    transport.send(pack(Kind::Series, Compression::None, &items, 0..1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let requests = server.requests();
    assert_eq!(requests[0].header("content-encoding"), Some("gzip"));
    assert_eq!(requests[1].header("content-encoding"), None);
    assert_eq!(requests[1].body, br#"{"series":[{"metric":"g"}]}"#);
    assert_eq!(names(&requests[0]), ["g"]);
}

#[test]
fn dropped_connections_are_retried() {
    let server = Server::start();
    server.script([Reply::status(202).close()]);
    let (mut transport, losses) = start(options(&server));
    transport.send(payload(Kind::Series, "a", 1));
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let answered: Vec<u16> = server.requests().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [0, 202]);
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn a_sender_dropped_without_a_shutdown_counts_what_still_waits() {
    let server = Server::start();
    server.default_reply(Reply::status(503).header("Retry-After", "0"));
    let mut options = options(&server);
    options.max_retries = 0;
    let (mut transport, losses) = start(options);
    transport.send(payload(Kind::Series, "a", 2));
    assert_eq!(losses.get(DropCause::Shutdown), 0);
    drop(transport);
    assert_eq!(losses.get(DropCause::Shutdown), 2);
}

#[test]
fn the_spool_is_opened_by_start_not_by_new() {
    let server = Server::start();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("tally-dd-spool-start-{nanos}"));
    let mut options = options(&server);
    options.spool = Some(SpoolOptions::new(&dir));
    let (mut transport, _) = start(options);
    assert!(!dir.exists(), "nothing read or created before start");
    transport.start(context());
    assert!(dir.join("datadog").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A request as a transport saw it: method, URL, headers, body.
type Sent = (String, String, Vec<(String, String)>, Vec<u8>);

/// A transport that answers from a script (then 202) and records what it was asked to send.
#[derive(Clone, Default)]
struct Recording {
    answers: Arc<Mutex<VecDeque<HttpResponse>>>,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl HttpTransport for Recording {
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let headers = request.headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned()));
        self.sent.lock().unwrap().push((
            request.method.to_owned(),
            request.url.to_owned(),
            headers.collect(),
            request.body.to_vec(),
        ));
        let answer = self.answers.lock().unwrap().pop_front();
        Ok(answer.unwrap_or_else(|| HttpResponse::new(202)))
    }
}

#[test]
fn a_transport_given_in_options_carries_every_attempt() {
    let recording = Recording::default();
    recording
        .answers
        .lock()
        .unwrap()
        .push_back(HttpResponse::new(503).with_header("Retry-After", "0"));
    let options = TransportOptions {
        base_url: "https://intake.invalid/dd".into(),
        http: Some(SharedTransport::new(recording.clone())),
        ..options_without_server()
    };
    let (mut transport, losses) = start(options);
    let sent = payload(Kind::Series, "a", 2);
    let body = sent.body.as_slice().to_vec();
    transport.send(sent);
    assert_eq!(flush(&mut transport, soon()), Ok(()));
    let requests = recording.sent.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the 503 is retried, the 202 ends it");
    for (method, url, headers, sent_body) in &requests {
        assert_eq!(
            (method.as_str(), url.as_str()),
            ("POST", "https://intake.invalid/dd/api/v2/series")
        );
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(header("DD-API-KEY"), Some(KEY));
        assert_eq!(header("Content-Type"), Some("application/json"));
        assert_eq!(header("Content-Encoding"), Some("deflate"));
        assert_eq!(sent_body, &body, "a retry sends the same body");
    }
    assert_eq!(format!("{losses:?}"), "{}");
}

#[test]
fn transport_errors_map_to_datadog_verdicts() {
    /// Fails every request with one kind of error.
    struct Failing(HttpErrorKind, Arc<Mutex<usize>>);
    impl HttpTransport for Failing {
        fn send(&mut self, _: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
            *self.1.lock().unwrap() += 1;
            Err(HttpError::new(self.0, "scripted"))
        }
    }
    let run = |kind: HttpErrorKind, payload_kind: Kind| {
        let attempts = Arc::new(Mutex::new(0));
        let options = TransportOptions {
            max_retries: 1,
            http: Some(SharedTransport::new(Failing(kind, attempts.clone()))),
            ..options_without_server()
        };
        let (mut transport, losses) = start(options);
        transport.send(payload(payload_kind, "a", 1));
        let attempts = *attempts.lock().unwrap();
        (attempts, transport.buffer.len(), format!("{losses:?}"))
    };
    // Not sent: retried, then parked for the next flush.
    assert_eq!(run(HttpErrorKind::NotSent, Kind::Event), (2, 1, "{}".into()));
    // No answer: series are sent again (a point sent twice overwrites itself), events are not.
    assert_eq!(run(HttpErrorKind::NoAnswer, Kind::Series), (2, 1, "{}".into()));
    assert_eq!(run(HttpErrorKind::NoAnswer, Kind::Event), (1, 0, r#"{"timeout": 1}"#.into()));
    // Invalid: it would fail the same way again.
    assert_eq!(run(HttpErrorKind::Invalid, Kind::Series), (1, 0, r#"{"rejected": 1}"#.into()));
}

/// Options for a transport given in options: no server, no retry waits worth the name.
fn options_without_server() -> TransportOptions {
    TransportOptions {
        base_url: "https://intake.invalid".into(),
        api_key: ApiKey::parse(KEY).unwrap(),
        connect_timeout: Duration::from_secs(1),
        roots: crate::sink::http::tls::ExtraRoots::default(),
        timeout: Duration::from_secs(2),
        max_retries: 3,
        retry_buffer_bytes: 1 << 20,
        spool: None,
        http: None,
    }
}
