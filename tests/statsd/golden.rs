//! Exact messages, read from a local UDP socket.

use std::net::UdpSocket;

use tracing::{error, info, info_span};
use tracing_tally::sink::statsd::{StatsdOptions, TagStyle};

use crate::{pipeline, WAIT};

/// A UDP socket to receive on, and the datagrams it got.
struct Server(UdpSocket);

impl Server {
    fn start() -> Server {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A flush that returned `true` has handed every datagram to the kernel, and loopback
        // delivery is synchronous: after it, what arrived is read without waiting.
        socket.set_nonblocking(true).unwrap();
        Server(socket)
    }

    fn address(&self) -> String {
        format!("udp://127.0.0.1:{}", self.0.local_addr().unwrap().port())
    }

    /// The datagrams received so far (call after a successful flush).
    fn datagrams(&self) -> Vec<String> {
        let mut buffer = vec![0u8; 70_000];
        let mut out = Vec::new();
        loop {
            match self.0.recv(&mut buffer) {
                Ok(n) => out.push(String::from_utf8(buffer[..n].to_vec()).unwrap()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .datagrams()
            .iter()
            .flat_map(|d| d.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        lines.sort();
        lines
    }
}

fn dogstatsd(server: &Server) -> StatsdOptions {
    StatsdOptions::dogstatsd_at(&server.address()).unwrap().origin_detection(false).telemetry(false)
}

#[test]
fn dogstatsd_messages_carry_aggregates_tags_and_unified_service_tags() {
    let server = Server::start();
    let (dispatch, guard) = pipeline(dogstatsd(&server).prefix("app."));
    tracing::dispatcher::with_default(&dispatch, || {
        for status in [200, 200, 500] {
            info!(monotonic_counter.requests = 1, route = "/users", status);
        }
        info!(gauge.queue_depth = 3);
        info!(gauge.queue_depth = -2);
        for user in ["a", "b", "a"] {
            info!(set.visitors = user);
        }
    });
    assert!(guard.flush(WAIT));
    let lines = server.lines();
    let base = "|#env:test,service:shop";
    let visitors: Vec<&String> = lines.iter().filter(|l| l.starts_with("app.visitors:")).collect();
    assert_eq!(visitors.len(), 2, "one message per unique member: {lines:?}");
    assert!(visitors.iter().all(|l| l.ends_with(&format!("|s{base}"))));
    let others: Vec<&String> = lines.iter().filter(|l| !l.starts_with("app.visitors:")).collect();
    assert_eq!(
        others,
        [
            &format!("app.queue_depth:-2|g{base}"),
            &format!("app.requests:1|c{base},route:/users,status:500"),
            &format!("app.requests:2|c{base},route:/users,status:200"),
        ],
        "{lines:?}"
    );
    drop(guard);
}

#[test]
fn distributions_are_packed_with_their_weights() {
    let server = Server::start();
    let (dispatch, guard) = pipeline(dogstatsd(&server));
    tracing::dispatcher::with_default(&dispatch, || {
        for ms in [5.0, 5.0, 5.0, 1.0, 250.0] {
            info!(histogram.latency_ms = ms);
        }
    });
    assert!(guard.flush(WAIT));
    let lines = server.lines();
    let base = "|#env:test,service:shop";
    // 1 and 250 are the exact extremes; the other three share a bucket near 5.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], format!("latency_ms:1:250|d{base}"));
    let (values, rest) = lines[1].split_once('|').unwrap();
    let value: f64 = values.strip_prefix("latency_ms:").unwrap().parse().unwrap();
    assert!((value - 5.0).abs() < 5.0 * 0.008, "{value}");
    assert_eq!(rest, format!("d|@0.3333333333333333{base}"));
    drop(guard);
}

#[test]
fn errors_become_events_with_byte_lengths() {
    let server = Server::start();
    let (dispatch, guard) = pipeline(dogstatsd(&server));
    tracing::dispatcher::with_default(&dispatch, || {
        let _span = info_span!("checkout", cart = 7).entered();
        let e = std::io::Error::other("disk full");
        error!(error = &e as &dyn std::error::Error, fingerprint = "disk", "écriture échouée");
    });
    assert!(guard.flush(WAIT));
    let lines = server.lines();
    let event = lines.iter().find(|l| l.starts_with("_e{")).unwrap();
    let (lengths, rest) = event.strip_prefix("_e{").unwrap().split_once("}:").unwrap();
    let (title_len, text_len) = lengths.split_once(',').unwrap();
    let (title_len, text_len): (usize, usize) =
        (title_len.parse().unwrap(), text_len.parse().unwrap());
    let title = &rest[..title_len];
    assert_eq!(title, "écriture échouée");
    let text = &rest[title_len + 1..title_len + 1 + text_len];
    assert!(text.starts_with("error: disk full\\nin span checkout cart=7"), "{text}");
    let meta = &rest[title_len + 1 + text_len..];
    assert!(meta.contains("|k:disk|t:error|#env:test,service:shop"), "{meta}");
    drop(guard);
}

#[test]
fn plain_statsd_folds_tags_and_sends_negative_gauges_as_set_then_delta() {
    let server = Server::start();
    let options = StatsdOptions::statsd(&server.address()).unwrap();
    let (dispatch, guard) = pipeline(options);
    tracing::dispatcher::with_default(&dispatch, || {
        info!(monotonic_counter.requests = 2, route = "/users");
        info!(gauge.balance = -5);
        info!(timing.render = 3.5);
        info!(timing.render = 3.5);
    });
    assert!(guard.flush(WAIT));
    let datagrams = server.datagrams();
    let lines: Vec<&str> = datagrams.iter().flat_map(|d| d.lines()).collect();
    assert!(
        lines.contains(&"requests;environment=test;host=test-host;service=shop;route=_users:2|c"),
        "{lines:?}"
    );
    // A negative gauge goes out as "set to 0", then the delta, in that order.
    let gauge: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("balance;")).collect();
    assert_eq!(
        gauge,
        [
            "balance;environment=test;host=test-host;service=shop:0|g",
            "balance;environment=test;host=test-host;service=shop:-5|g"
        ],
        "{lines:?}"
    );
    drop(guard);

    let server = Server::start();
    let options = StatsdOptions::statsd(&server.address()).unwrap().tag_style(TagStyle::Drop);
    let (dispatch, guard) = pipeline(options);
    tracing::dispatcher::with_default(&dispatch, || {
        info!(gauge.balance = -5, account = "a");
        info!(timing.render = 3.5);
        info!(timing.render = 3.5);
    });
    assert!(guard.flush(WAIT));
    let datagrams = server.datagrams();
    let all = datagrams.join("\n");
    assert!(all.contains("balance:0|g\nbalance:-5|g"), "set to 0, then the delta, in order: {all}");
    assert!(all.contains("render:3.5|ms:3.5|ms"), "{all}");
    drop(guard);
}

#[test]
fn datagrams_never_exceed_the_limit_and_never_split_a_message() {
    let server = Server::start();
    let options = dogstatsd(&server).max_packet_size(200);
    let (dispatch, guard) = pipeline(options);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..300u64 {
            info!(monotonic_counter.hits = 1, shard = i);
        }
        for i in 0..500 {
            info!(histogram.size = f64::from(i) * 1.37);
        }
    });
    assert!(guard.flush(WAIT));
    let datagrams = server.datagrams();
    assert!(!datagrams.is_empty());
    assert!(datagrams.iter().all(|d| d.len() <= 200 && !d.is_empty()));
    let lines: Vec<&str> = datagrams.iter().flat_map(|d| d.lines()).collect();
    assert!(
        lines.iter().all(|l| l.ends_with("|#env:test,service:shop") || l.contains(",shard:")),
        "whole messages only"
    );
    let hits = lines.iter().filter(|l| l.starts_with("hits:1|c")).count();
    assert_eq!(hits, 300);
    let values: usize = lines
        .iter()
        .filter(|l| l.starts_with("size:"))
        .map(|l| {
            let (values, rest) = l.split_once('|').unwrap();
            let weight = rest
                .split('|')
                .find_map(|f| f.strip_prefix('@'))
                .map_or(1.0, |r| 1.0 / r.parse::<f64>().unwrap());
            (values.split(':').count() - 1) as f64 * weight
        })
        .sum::<f64>()
        .round() as usize;
    assert_eq!(values, 500, "every value's weight arrives");
    drop(guard);
}
