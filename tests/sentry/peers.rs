//! The real peers: a local HTTP receiver and Sentry's own parsers, from `tools/peers`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The peers' Python (the virtualenv `scripts/peers-setup.sh` creates, once per test binary).
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("scripts/peers-setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/peers-setup.sh");
        assert!(output.status.success(), "scripts/peers-setup.sh failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(
            stdout.lines().last().expect("the setup script prints the interpreter").trim(),
        )
    })
}

/// A running `http_sink.py`, stopped on drop.
pub(crate) struct Receiver {
    child: Child,
    pub(crate) port: u16,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// A receiver on `port` (0: any free port).
    pub(crate) fn start_on(port: u16) -> Receiver {
        let mut child = Command::new(python())
            .arg(root().join("tools/peers/http_sink.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start http_sink.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read LISTENING");
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from http_sink.py: {line:?}"));
        Receiver { child, port }
    }

    pub(crate) fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/42", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        let body = ureq::get(&self.url("/__received"))
            .call()
            .expect("GET /__received")
            .into_body()
            .read_to_string()
            .expect("body");
        let list: Vec<Value> = serde_json::from_str(&body).expect("JSON");
        list.into_iter().map(Received).collect()
    }

    /// Sets the receiver's next replies (see tools/peers/README.md).
    pub(crate) fn behave(&self, behavior: Value) {
        ureq::post(&self.url("/__behavior")).send(behavior.to_string()).expect("POST /__behavior");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the receiver recorded.
#[derive(Debug, Clone)]
pub(crate) struct Received(pub(crate) Value);

impl Received {
    pub(crate) fn path(&self) -> &str {
        self.0["path"].as_str().unwrap_or_default()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name].as_str()
    }

    pub(crate) fn answered_ok(&self) -> bool {
        self.0["answered"].as_u64().is_some_and(|s| (200..300).contains(&s))
    }

    /// The decoded body.
    pub(crate) fn body(&self) -> Vec<u8> {
        base64_decode(self.0["body_b64"].as_str().unwrap_or_default())
    }

    /// The envelope: its header and `(item header, payload)` pairs.
    pub(crate) fn envelope(&self) -> Envelope {
        Envelope::parse(&self.body())
    }
}

/// A parsed envelope (trusting lengths; `check` runs the strict checkers).
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) header: Value,
    pub(crate) items: Vec<(Value, Vec<u8>)>,
}

impl Envelope {
    fn parse(body: &[u8]) -> Envelope {
        let mut lines = body.splitn(2, |&b| b == b'\n');
        let header =
            serde_json::from_slice(lines.next().unwrap_or_default()).expect("envelope header");
        let mut rest = lines.next().unwrap_or_default();
        let mut items = Vec::new();
        while !rest.is_empty() {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let item: Value = serde_json::from_slice(&rest[..end]).expect("item header");
            rest = rest.get(end + 1..).unwrap_or_default();
            let length = item["length"].as_u64().expect("every item has a length") as usize;
            let payload = rest[..length].to_vec();
            rest = rest.get(length + 1..).unwrap_or_default();
            items.push((item, payload));
        }
        Envelope { header, items }
    }

    pub(crate) fn types(&self) -> Vec<String> {
        self.items.iter().map(|(h, _)| h["type"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// The JSON payload of the first item of this type.
    pub(crate) fn json(&self, item_type: &str) -> Option<Value> {
        self.items
            .iter()
            .find(|(h, _)| h["type"] == item_type)
            .map(|(_, p)| serde_json::from_slice(p).expect("JSON payload"))
    }
}

/// The quantity client reports in `envelopes` give for `reason` and `category`.
pub(crate) fn discarded<'a>(
    envelopes: impl IntoIterator<Item = &'a Envelope>,
    reason: &str,
    category: &str,
) -> u64 {
    envelopes
        .into_iter()
        .filter_map(|e| e.json("client_report"))
        .flat_map(|report| report["discarded_events"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["reason"] == reason && d["category"] == category)
        .map(|d| d["quantity"].as_u64().expect("an integer quantity"))
        .sum()
}

/// Runs Sentry's parser (`envelope_dump.py`), the strict framing check and Relay's normalizer
/// (`sentry_check.py`) on an envelope body; panics with their output on any failure.
pub(crate) fn check(body: &[u8]) {
    for tool in ["envelope_strict.py", "envelope_dump.py", "sentry_check.py"] {
        let mut child = Command::new(python())
            .arg(root().join("tools/peers").join(tool))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run checker");
        child.stdin.take().expect("stdin").write_all(body).expect("write envelope");
        let output = child.wait_with_output().expect("checker output");
        assert!(
            output.status.success(),
            "{tool} rejected the envelope:\n{}\n{}\nenvelope:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(body)
        );
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
