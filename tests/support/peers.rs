//! The real peers from `tools/peers`, shared by the sink test binaries: the Python that runs
//! them, set-up scripts, scratch directories, and the local HTTP receiver.
#![allow(dead_code)]

#[cfg(any(feature = "sentry", feature = "datadog"))]
use std::io::Write;
#[cfg(any(feature = "sentry", feature = "datadog"))]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
#[cfg(any(feature = "sentry", feature = "datadog"))]
use std::process::{Child, ChildStdin, ChildStdout};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The last line a set-up script under `scripts/` prints (a path), once per test binary.
pub(crate) fn setup(script: &str, cell: &'static OnceLock<PathBuf>) -> &'static Path {
    cell.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("scripts").join(script))
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
        assert!(output.status.success(), "scripts/{script} failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(stdout.lines().last().expect("the script prints a path").trim())
    })
}

/// The peers' Python (the virtualenv `scripts/peers-setup.sh` creates).
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    setup("peers-setup.sh", &PYTHON)
}

/// A fresh scratch directory for one test (short: Unix socket paths are limited to 107 bytes).
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs a tool from `tools/peers` with `args`; its stdout, and whether it succeeded.
pub(crate) fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(python())
        .arg(root().join("tools/peers").join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A running `http_sink.py`, stopped on drop. Its port is its own for its whole life, up or
/// down (see `down`), so no other process can take it in between.
#[cfg(any(feature = "sentry", feature = "datadog"))]
pub(crate) struct Receiver {
    child: Child,
    control: ChildStdin,
    replies: BufReader<ChildStdout>,
    pub(crate) port: u16,
}

#[cfg(any(feature = "sentry", feature = "datadog"))]
impl Receiver {
    pub(crate) fn start() -> Receiver {
        Receiver::spawn(0, &[])
    }

    /// A receiver that holds its port but is down: connections are refused until `up`.
    pub(crate) fn start_down() -> Receiver {
        Receiver::spawn(0, &["--down"])
    }

    /// Takes the receiver away: the listening socket and open connections are closed, so
    /// clients get "connection refused"; the port stays reserved and what was received kept.
    pub(crate) fn down(&mut self) {
        self.command("down", "DOWN");
    }

    /// Brings the receiver back on the same port.
    pub(crate) fn up(&mut self) {
        self.command("up", "UP");
    }

    fn command(&mut self, command: &str, expected: &str) {
        writeln!(self.control, "{command}").expect("write to http_sink.py");
        let mut line = String::new();
        self.replies.read_line(&mut line).expect("read from http_sink.py");
        assert_eq!(line.trim(), expected, "http_sink.py answered {line:?} to {command}");
    }

    /// An HTTPS receiver with the certificate chain and key of `tls`.
    pub(crate) fn start_tls(tls: &TestCertificates) -> Receiver {
        let (cert, key) =
            (tls.server_chain.display().to_string(), tls.server_key.display().to_string());
        Receiver::spawn(0, &["--tls", &cert, &key])
    }

    fn spawn(port: u16, extra: &[&str]) -> Receiver {
        let mut child = Command::new(python())
            .arg(root().join("tools/peers/http_sink.py"))
            .arg(port.to_string())
            .arg("--control-stdin")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start http_sink.py");
        let control = child.stdin.take().expect("piped stdin");
        let mut replies = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        replies.read_line(&mut line).expect("read LISTENING");
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from http_sink.py: {line:?}"));
        Receiver { child, control, replies, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
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
        let list: Vec<serde_json::Value> = serde_json::from_str(&body).expect("JSON");
        list.into_iter().map(Received).collect()
    }

    /// Everything an HTTPS receiver started with `tls` received so far.
    pub(crate) fn received_tls(&self, tls: &TestCertificates) -> Vec<Received> {
        let pem = std::fs::read(&tls.ca).expect("read the CA");
        let ca = ureq::tls::Certificate::from_pem(&pem).expect("the CA's PEM");
        let config = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(config).build().into();
        let url = format!("https://127.0.0.1:{}/__received", self.port);
        let body = agent.get(&url).call().expect("GET /__received").into_body().read_to_string();
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&body.expect("body")).expect("JSON");
        list.into_iter().map(Received).collect()
    }

    /// Sets the receiver's next replies (see tools/peers/README.md).
    pub(crate) fn behave(&self, behavior: serde_json::Value) {
        ureq::post(&self.url("/__behavior")).send(behavior.to_string()).expect("POST /__behavior");
    }
}

#[cfg(any(feature = "sentry", feature = "datadog"))]
impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test certificate authority and a server certificate it signed for `127.0.0.1`, made with
/// the `openssl` command.
#[cfg(any(feature = "sentry", feature = "datadog"))]
pub(crate) struct TestCertificates {
    pub(crate) ca: PathBuf,
    pub(crate) server_chain: PathBuf,
    pub(crate) server_key: PathBuf,
}

#[cfg(any(feature = "sentry", feature = "datadog"))]
impl TestCertificates {
    pub(crate) fn make(name: &str) -> TestCertificates {
        let dir = scratch(name);
        let path = |file: &str| dir.join(file).display().to_string();
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let steps: [Vec<String>; 3] = [
            ["req", "-x509"]
                .iter()
                .chain(&ec)
                .map(|s| s.to_string())
                .chain(
                    [
                        "-keyout",
                        &path("ca.key"),
                        "-out",
                        &path("ca.pem"),
                        "-days",
                        "2",
                        "-subj",
                        "/CN=tracing-tally test CA",
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ]
                    .map(str::to_owned),
                )
                .collect(),
            ["req"]
                .iter()
                .chain(&ec)
                .map(|s| s.to_string())
                .chain(
                    [
                        "-keyout",
                        &path("server.key"),
                        "-out",
                        &path("server.csr"),
                        "-subj",
                        "/CN=localhost",
                    ]
                    .map(str::to_owned),
                )
                .collect(),
            [
                "x509",
                "-req",
                "-in",
                &path("server.csr"),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-out",
                &path("server.pem"),
                "-days",
                "2",
                "-extfile",
                &path("server.ext"),
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for args in steps {
            let output = Command::new("openssl").args(&args).output().expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        TestCertificates {
            ca: dir.join("ca.pem"),
            server_chain: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

/// Runs one round per fault: sets the fault on `receiver`, or for `None` takes the receiver
/// down for the round (it keeps what it received, and its port) and brings it back after;
/// `round(i, fault)` runs in between. Returns the receiver, reset to its default replies.
#[cfg(any(feature = "sentry", feature = "datadog"))]
pub(crate) fn fault_rounds(
    mut receiver: Receiver,
    faults: &[Option<serde_json::Value>],
    mut round: impl FnMut(usize, Option<&serde_json::Value>),
) -> Receiver {
    for (i, fault) in faults.iter().enumerate() {
        match fault {
            Some(fault) => receiver.behave(fault.clone()),
            None => receiver.down(),
        }
        round(i, fault.as_ref());
        if fault.is_none() {
            receiver.up();
        }
    }
    receiver.behave(serde_json::json!({}));
    receiver
}

/// Spool files (`*.spool`) of `sink` (`datadog`, `sentry`) under the spool directory `dir`.
#[cfg(any(feature = "sentry", feature = "datadog"))]
pub(crate) fn spool_files(dir: &Path, sink: &str) -> usize {
    std::fs::read_dir(dir.join(sink))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".spool"))
                .count()
        })
        .unwrap_or(0)
}

/// One request the receiver recorded.
#[derive(Debug, Clone)]
pub(crate) struct Received(pub(crate) serde_json::Value);

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

    /// The decoded body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).expect("a JSON body")
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
