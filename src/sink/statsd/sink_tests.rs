//! The sink on its lane's context: what it books, and what its telemetry reports.

use std::net::UdpSocket;
use std::time::Duration;

use super::{StatsdOptions, StatsdSink};
use crate::batch::testing::counter;
use crate::batch::Batch;
use crate::pipeline::Shared;
use crate::sink::{Refused, Sink, SinkContext};
use crate::stats::DropReason;

/// A started sink for `options`, and its context.
fn started(options: StatsdOptions) -> (StatsdSink, SinkContext) {
    let config = crate::Tally::builder().validate().unwrap();
    let (shared, _inbox) = Shared::new(config);
    let mut sink = StatsdSink::new(options);
    let cx = SinkContext::new(sink.name(), shared, false);
    sink.start(cx.clone());
    (sink, cx)
}

fn batch(records: usize) -> Batch {
    let metrics = (0..records).map(|i| counter(&format!("c{i}"), None, &[], 2.0)).collect();
    Batch { metrics, ..Batch::default() }
}

#[test]
fn lane_refusals_are_reported_as_metrics_dropped_on_receive_and_not_booked_again() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = server.local_addr().unwrap().port();
    let options = StatsdOptions::dogstatsd_at_from(&format!("127.0.0.1:{port}"), |_| None)
        .unwrap()
        .origin_detection(false);
    let (mut sink, cx) = started(options);
    // As the lane does when the sink's room for metrics is full (it books them itself).
    cx.signals().refused.add(Refused { metrics: 5, ..Refused::default() });
    sink.export(&batch(1)).unwrap();
    let mut buffer = vec![0u8; 65536];
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("aggregated_context_by_type")) {
        let n = server.recv(&mut buffer).unwrap();
        lines.extend(std::str::from_utf8(&buffer[..n]).unwrap().lines().map(str::to_owned));
    }
    let value = |name: &str| {
        let prefix = format!("datadog.dogstatsd.client.{name}:");
        lines.iter().find_map(|l| l.strip_prefix(prefix.as_str())?.split('|').next()?.parse().ok())
    };
    assert_eq!(value("metric_dropped_on_receive"), Some(5u64), "{lines:?}");
    assert_eq!(value("packets_dropped_queue"), Some(0));
    assert_eq!(value("bytes_dropped_queue"), Some(0));
    assert_eq!(value("metrics"), Some(1));
    // Taken once: the next report starts from zero.
    assert!(cx.take_refused().is_empty());
    let stats = cx.stats();
    assert_eq!(
        stats.dropped(DropReason::SinkQueueFull),
        0,
        "the lane books refusals, not the sink"
    );
    assert!(stats.metric_losses().is_empty());
    sink.shutdown(std::time::Instant::now()).unwrap();
}

#[cfg(unix)]
#[test]
fn datagrams_the_socket_does_not_take_are_booked_with_what_they_carried() {
    let path = std::env::temp_dir().join(format!("tally-sink-missing-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let options =
        StatsdOptions::dogstatsd_at_from(&format!("unixgram://{}", path.display()), |_| None)
            .unwrap()
            .origin_detection(false)
            .telemetry(false);
    let (mut sink, cx) = started(options);
    // No Agent yet: building and exporting do not fail, the datagrams are lost and booked.
    sink.export(&batch(3)).unwrap();
    let stats = cx.stats();
    assert_eq!(stats.dropped(DropReason::SinkError), 3, "one message per counter");
    let booked: Vec<(String, u64, f64)> =
        stats.metric_losses().iter().map(|l| (l.metric.clone(), l.points, l.values)).collect();
    let expected: Vec<(String, u64, f64)> = (0..3).map(|i| (format!("c{i}"), 1, 2.0)).collect();
    assert_eq!(booked, expected);
    assert!(sink.flush(std::time::Instant::now()).is_ok(), "nothing is left to wait for");
}
