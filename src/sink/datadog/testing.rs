//! Test helpers: records, batches and errors, and a tiny in-process HTTP server with scripted
//! answers.

pub(crate) use crate::batch::testing::distribution_value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

use crate::batch::{
    Batch, ErrorEvent, GaugeValue, MetricKind, MetricRecord, MetricValue, SetValue, Tag,
};

/// The encoded items, as text, in order.
pub(crate) fn texts(items: &super::payload::Items) -> Vec<String> {
    (0..items.len()).map(|i| String::from_utf8(items.get(i).unwrap().0.to_vec()).unwrap()).collect()
}

/// The context of a sink named `datadog` in a pipeline with the default settings.
pub(crate) fn context() -> crate::sink::SinkContext {
    let config = crate::Tally::builder().validate().unwrap();
    let (shared, _inbox) = crate::pipeline::Shared::new(config);
    crate::sink::SinkContext::new("datadog", shared, false)
}

/// A valid API key.
pub(crate) const KEY: &str = "0123456789abcdef0123456789abcdef";
use crate::batch::testing::record;
pub(crate) use crate::batch::testing::{counter, NOW};

pub(crate) fn gauge(
    name: &str,
    unit: Option<&str>,
    tags: &[(&str, &str)],
    last: f64,
) -> MetricRecord {
    let value = MetricValue::Gauge(GaugeValue { last, min: last, max: last, sum: last, count: 1 });
    record(name, MetricKind::Gauge, unit, tags, value)
}

pub(crate) fn set(name: &str, tags: &[(&str, &str)], unique: u64) -> MetricRecord {
    record(name, MetricKind::Set, None, tags, MetricValue::Set(SetValue { unique, members: None }))
}

pub(crate) fn distribution(
    name: &str,
    unit: Option<&str>,
    tags: &[(&str, &str)],
    values: &[f64],
) -> MetricRecord {
    let value = MetricValue::Distribution(distribution_value(values));
    record(name, MetricKind::Distribution, unit, tags, value)
}

/// The record, moved to the current interval.
pub(crate) fn fresh(mut record: MetricRecord) -> MetricRecord {
    let now = super::window::unix(SystemTime::now());
    record.start = UNIX_EPOCH + Duration::from_secs((now - now % 10) as u64);
    record
}

fn global_tags() -> Arc<[Tag]> {
    let mut tags = vec![
        Tag::new("environment", "prod"),
        Tag::new("host", "web-1"),
        Tag::new("service", "api"),
    ];
    tags.sort();
    tags.into()
}

/// A batch of records with the global tags `environment:prod`, `host:web-1`, `service:api`.
pub(crate) fn batch(metrics: Vec<MetricRecord>) -> Batch {
    Batch { metrics, global_tags: global_tags(), ..Batch::default() }
}

/// A batch of errors with the same global tags.
pub(crate) fn batch_with_errors(errors: Vec<ErrorEvent>) -> Batch {
    Batch { errors, global_tags: global_tags(), ..Batch::default() }
}

struct TestCallsite;

impl Callsite for TestCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &TEST_METADATA
    }
}

static TEST_CALLSITE: TestCallsite = TestCallsite;

static TEST_METADATA: Metadata<'static> = Metadata::new(
    "event src/db.rs:42",
    "app::db",
    Level::ERROR,
    Some("src/db.rs"),
    Some(42),
    Some("app::db"),
    FieldSet::new(&[], Identifier(&TEST_CALLSITE)),
    Kind::EVENT,
);

/// An error at `app::db` (`src/db.rs:42`), captured at [`NOW`].
pub(crate) fn error_event(message: Option<&str>, chain: &[&str]) -> ErrorEvent {
    ErrorEvent {
        timestamp: UNIX_EPOCH + Duration::from_secs(NOW as u64),
        metadata: &TEST_METADATA,
        message: message.map(str::to_owned),
        fields: Vec::new(),
        error_chain: chain.iter().map(|s| (*s).to_owned()).collect(),
        error_types: Vec::new(),
        spans: Vec::new(),
        trace_id: None,
        span_id: None,
        breadcrumbs: Vec::new(),
        tags: Default::default(),
        fingerprint: None,
        handled: true,
        stacktrace: None,
        thread: None,
    }
}

// === Server ===

/// A scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    delay: Duration,
    close: bool,
    body: String,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        let body = if (200..300).contains(&status) { r#"{"errors":[]}"# } else { "{}" };
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            close: false,
            body: body.into(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Closes the connection without answering.
    pub(crate) fn close(mut self) -> Self {
        self.close = true;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    /// Names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as received.
    pub(crate) body: Vec<u8>,
    /// The status answered (0 when the connection was closed instead).
    pub(crate) answered: u16,
    /// When it arrived.
    pub(crate) received: Instant,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body decoded per its `Content-Encoding`, parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        let compression = match self.header("content-encoding") {
            Some("deflate") => super::Compression::Deflate,
            Some("gzip") => super::Compression::Gzip,
            _ => super::Compression::None,
        };
        let raw = super::payload::decompress(&self.body, compression).unwrap();
        serde_json::from_slice(&raw).unwrap()
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

/// A loopback HTTP/1.1 server: answers from a script, then with the default (202).
pub(crate) struct Server {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub(crate) fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { addr, state, stop }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with these, in order.
    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.0.lock().unwrap().script.extend(replies);
    }

    /// Answers with this once the script is used up.
    pub(crate) fn default_reply(&self, reply: Reply) {
        self.state.0.lock().unwrap().default = Some(reply);
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    /// Waits until `n` requests arrived (or 5 s), and returns them all.
    pub(crate) fn wait_for(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (lock, ready) = &*self.state;
        let mut state = lock.lock().unwrap();
        while state.requests.len() < n && Instant::now() < deadline {
            state = ready.wait_timeout(state, Duration::from_millis(20)).unwrap().0;
        }
        state.requests.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, state: &(Mutex<State>, Condvar)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let mut guard = state.0.lock().unwrap();
            let reply = guard
                .script
                .pop_front()
                .or_else(|| guard.default.clone())
                .unwrap_or_else(|| Reply::status(202));
            let answered = if reply.close { 0 } else { reply.status };
            guard.requests.push(Request {
                path,
                headers,
                body,
                answered,
                received: Instant::now(),
            });
            state.1.notify_all();
            reply
        };
        std::thread::sleep(reply.delay);
        if reply.close {
            return;
        }
        let mut response = format!(
            "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&reply.body);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
