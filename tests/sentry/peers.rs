//! The real peers: a local HTTP receiver and Sentry's own parsers, from `tools/peers`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

pub(crate) use crate::shared::{python, root, Received, Receiver};

impl Receiver {
    /// The DSN for this receiver (project 42).
    pub(crate) fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/42", self.port)
    }
}

impl Received {
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
