//! The real peers: the strict DogStatsD receiver and a real Etsy statsd, from `tools/peers`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub(crate) use crate::shared::{python, root, scratch, setup};

/// A running `dogstatsd_sink.py`, stopped on drop.
pub(crate) struct DogstatsdSink {
    child: Child,
    out: PathBuf,
    pub(crate) udp_port: u16,
    pub(crate) uds: PathBuf,
    pub(crate) uds_stream: PathBuf,
}

impl DogstatsdSink {
    /// Listens on UDP, a Unix datagram and a Unix stream socket; flags datagrams over `max`.
    pub(crate) fn start(dir: &Path, max: usize) -> DogstatsdSink {
        let out = dir.join("dsd.jsonl");
        let uds = dir.join("dsd.sock");
        let uds_stream = dir.join("dsd-stream.sock");
        let mut child = Command::new(python())
            .arg(root().join("tools/peers/dogstatsd_sink.py"))
            .arg(&out)
            .args(["--udp", "0", "--max-datagram", &max.to_string()])
            .arg("--uds")
            .arg(&uds)
            .arg("--uds-stream")
            .arg(&uds_stream)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dogstatsd_sink.py");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut udp_port = 0;
        for _ in 0..3 {
            let line = lines.next().expect("a LISTENING line").expect("read");
            if let Some(port) = line.strip_prefix("LISTENING udp ") {
                udp_port = port.trim().parse().expect("port");
            }
        }
        assert_ne!(udp_port, 0);
        DogstatsdSink { child, out, udp_port, uds, uds_stream }
    }

    /// `dogstatsd_check.py`'s summary of what was received, polled until `done` holds for it
    /// (or 10 s have passed: the caller's checks then say what is missing).
    pub(crate) fn summary_when(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let summary = self.summary();
            if done(&summary) || std::time::Instant::now() > deadline {
                return summary;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `dogstatsd_check.py`'s summary of everything received so far (`null` while the
    /// receiver is half-way through writing a record).
    pub(crate) fn summary(&self) -> Value {
        let output = Command::new(python())
            .arg(root().join("tools/peers/dogstatsd_check.py"))
            .arg(&self.out)
            .output()
            .expect("run dogstatsd_check.py");
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// Every datagram recorded, as the receiver parsed it.
    pub(crate) fn datagrams(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

impl Drop for DogstatsdSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Etsy statsd behind `statsd_run.py`, stopped on drop.
pub(crate) struct Statsd {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub(crate) port: u16,
}

impl Statsd {
    pub(crate) fn start() -> Statsd {
        static STATS_JS: OnceLock<PathBuf> = OnceLock::new();
        let stats_js = setup("statsd-setup.sh", &STATS_JS);
        let mut child = Command::new(python())
            .arg(root().join("tools/peers/statsd_run.py"))
            .arg(stats_js)
            .args(["--flush-ms", "300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start statsd_run.py");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let port = loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).expect("read") > 0, "statsd_run.py ended");
            if let Some(port) = line.strip_prefix("LISTENING ") {
                break port.trim().parse().expect("port");
            }
        };
        Statsd { child, stdin, stdout, port }
    }

    /// The totals, once everything sent before the call has been flushed by statsd.
    pub(crate) fn totals(&mut self) -> Value {
        writeln!(self.stdin, "flush-wait").expect("send command");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read answer");
        let totals: Value = serde_json::from_str(&line).expect("JSON totals");
        assert!(totals.get("error").is_none(), "{totals}");
        totals
    }
}

impl Drop for Statsd {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}
