//! The official DogStatsD client telemetry (`datadog.dogstatsd.client.*`), sent with the
//! metrics of every interval as counts since the previous one, tagged `client:rust`,
//! `client_version` and `client_transport`, so Datadog's client dashboards show this client's
//! traffic and drops.

use std::sync::atomic::Ordering;

use super::transport::Counts;
use crate::batch::MetricKind;

const PREFIX: &str = "datadog.dogstatsd.client.";

/// Telemetry accumulated since the last report.
#[derive(Debug)]
pub(crate) struct Telemetry {
    transport: &'static str,
    /// The DogStatsD type distributions are sent as.
    distribution: &'static str,
    /// Messages, by `metrics_type`.
    metrics: Vec<(&'static str, u64)>,
    /// Aggregated series, by `metrics_type`.
    contexts: Vec<(&'static str, u64)>,
    events: u64,
    /// The transport's counts at the last report.
    last: [u64; 6],
}

impl Telemetry {
    pub(crate) fn new(transport: &'static str, distribution: &'static str) -> Self {
        Telemetry {
            transport,
            distribution,
            metrics: Vec::new(),
            contexts: Vec::new(),
            events: 0,
            last: [0; 6],
        }
    }

    /// Counts one record's messages.
    pub(crate) fn metric(&mut self, kind: MetricKind, messages: u64) {
        let kind = metrics_type(kind, self.distribution);
        add(&mut self.metrics, kind, messages);
        add(&mut self.contexts, kind, 1);
    }

    pub(crate) fn event(&mut self) {
        self.events += 1;
    }

    /// The telemetry messages, and a fresh start for the next interval.
    pub(crate) fn lines(&mut self, counts: &Counts, tags: &[(&str, &str)]) -> Vec<String> {
        let mut base = format!(
            "|c|#client:rust,client_version:{},client_transport:{}",
            env!("CARGO_PKG_VERSION"),
            self.transport
        );
        for (key, value) in tags {
            base.push(',');
            base.push_str(key);
            if !value.is_empty() {
                base.push(':');
                base.push_str(value);
            }
        }
        let now = [
            counts.packets_sent.load(Ordering::Relaxed),
            counts.bytes_sent.load(Ordering::Relaxed),
            counts.packets_dropped_queue.load(Ordering::Relaxed),
            counts.bytes_dropped_queue.load(Ordering::Relaxed),
            counts.packets_dropped_writer.load(Ordering::Relaxed),
            counts.bytes_dropped_writer.load(Ordering::Relaxed),
        ];
        let delta: Vec<u64> = now.iter().zip(self.last).map(|(n, l)| n.saturating_sub(l)).collect();
        self.last = now;
        let [sent, bytes, queue, queue_bytes, writer, writer_bytes] =
            [delta[0], delta[1], delta[2], delta[3], delta[4], delta[5]];
        let total_metrics: u64 = self.metrics.iter().map(|(_, n)| n).sum();
        let total_contexts: u64 = self.contexts.iter().map(|(_, n)| n).sum();
        let mut lines = Vec::new();
        let mut line = |name: &str, value: u64, extra: &str| {
            lines.push(format!("{PREFIX}{name}:{value}{base}{extra}"));
        };
        line("metrics", total_metrics, "");
        for (kind, n) in &self.metrics {
            line("metrics_by_type", *n, &format!(",metrics_type:{kind}"));
        }
        line("events", self.events, "");
        line("service_checks", 0, "");
        line("metric_dropped_on_receive", 0, "");
        line("packets_sent", sent, "");
        line("bytes_sent", bytes, "");
        line("packets_dropped", queue + writer, "");
        line("bytes_dropped", queue_bytes + writer_bytes, "");
        line("packets_dropped_queue", queue, "");
        line("bytes_dropped_queue", queue_bytes, "");
        line("packets_dropped_writer", writer, "");
        line("bytes_dropped_writer", writer_bytes, "");
        line("aggregated_context", total_contexts, "");
        for (kind, n) in &self.contexts {
            line("aggregated_context_by_type", *n, &format!(",metrics_type:{kind}"));
        }
        self.metrics.clear();
        self.contexts.clear();
        self.events = 0;
        lines
    }
}

fn add(list: &mut Vec<(&'static str, u64)>, kind: &'static str, n: u64) {
    match list.iter_mut().find(|(k, _)| *k == kind) {
        Some(entry) => entry.1 += n,
        None => list.push((kind, n)),
    }
}

/// The `metrics_type` tag of a record's kind.
fn metrics_type(kind: MetricKind, distribution: &'static str) -> &'static str {
    match (kind, distribution) {
        (MetricKind::Counter, _) => "count",
        (MetricKind::Gauge, _) => "gauge",
        (MetricKind::Set, _) => "set",
        (_, "h") => "histogram",
        (_, "ms") => "timing",
        _ => "distribution",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_deltas_with_the_official_names() {
        let counts = Counts::default();
        let mut telemetry = Telemetry::new("udp", "d");
        telemetry.metric(MetricKind::Counter, 1);
        telemetry.metric(MetricKind::Distribution, 3);
        telemetry.event();
        counts.packets_sent.store(4, Ordering::Relaxed);
        let lines = telemetry.lines(&counts, &[("env", "prod")]);
        let tags = format!(
            "|c|#client:rust,client_version:{},client_transport:udp,env:prod",
            env!("CARGO_PKG_VERSION")
        );
        assert!(lines.contains(&format!("datadog.dogstatsd.client.metrics:4{tags}")), "{lines:?}");
        assert!(lines.contains(&format!(
            "datadog.dogstatsd.client.metrics_by_type:3{tags},metrics_type:distribution"
        )));
        assert!(lines.contains(&format!("datadog.dogstatsd.client.events:1{tags}")));
        assert!(lines.contains(&format!("datadog.dogstatsd.client.packets_sent:4{tags}")));
        assert!(lines.contains(&format!("datadog.dogstatsd.client.aggregated_context:2{tags}")));
        // The next report counts from here.
        counts.packets_sent.store(5, Ordering::Relaxed);
        let lines = telemetry.lines(&counts, &[]);
        assert!(lines.iter().any(|l| l.starts_with("datadog.dogstatsd.client.packets_sent:1|")));
        assert!(lines.iter().any(|l| l.starts_with("datadog.dogstatsd.client.metrics:0|")));
    }
}
