//! The official DogStatsD client telemetry (`datadog.dogstatsd.client.*`), sent with the
//! metrics of every interval as counts since the previous one, tagged `client:rust`,
//! `client_version` and `client_transport`, so Datadog's client dashboards show this client's
//! traffic and drops.
//!
//! The names mean what they mean in datadog-go, mapped to this sink's one thread and one queue
//! (the lane):
//!
//! | name | counts |
//! |---|---|
//! | `packets_sent`, `bytes_sent` | datagrams written to the socket, and their bytes |
//! | `packets_dropped_writer`, `bytes_dropped_writer` | datagrams the socket did not take (full buffer, no Agent, failed write) |
//! | `packets_dropped_queue`, `bytes_dropped_queue` | always 0: no datagram waits in a queue (the sink writes them as it makes them) |
//! | `packets_dropped`, `bytes_dropped` | the two above added |
//! | `metric_dropped_on_receive` | metric records the lane refused because its room was full: dropped before they became messages, as datadog-go's channel mode drops metrics when its receive channel is full. Counted in records (one series over one interval), not messages: refused records are never encoded, so their messages, packets and bytes are not known |
//! | `metrics`, `metrics_by_type` | messages made from the metric records the sink received |
//! | `aggregated_context`, `aggregated_context_by_type` | those records |
//! | `events` | captured errors sent as events |
//!
//! The refusals are already counted in [`Stats`](crate::Stats) (`sink_queue_full`) and in the
//! per-metric ledger by the lane; here they are only reported to Datadog.

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
    /// Metric records the lane refused.
    dropped_on_receive: u64,
    /// The transport's counts at the last report.
    last: Counts,
}

impl Telemetry {
    pub(crate) fn new(transport: &'static str, distribution: &'static str) -> Self {
        Telemetry {
            transport,
            distribution,
            metrics: Vec::new(),
            contexts: Vec::new(),
            events: 0,
            dropped_on_receive: 0,
            last: Counts::default(),
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

    /// Counts metric records the lane refused (`metric_dropped_on_receive`).
    pub(crate) fn refused(&mut self, records: u64) {
        self.dropped_on_receive += records;
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
        let delta = |now: u64, last: u64| now.saturating_sub(last);
        let sent = delta(counts.packets_sent, self.last.packets_sent);
        let bytes = delta(counts.bytes_sent, self.last.bytes_sent);
        let writer = delta(counts.packets_dropped_writer, self.last.packets_dropped_writer);
        let writer_bytes = delta(counts.bytes_dropped_writer, self.last.bytes_dropped_writer);
        self.last = *counts;
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
        line("metric_dropped_on_receive", self.dropped_on_receive, "");
        line("packets_sent", sent, "");
        line("bytes_sent", bytes, "");
        line("packets_dropped", writer, "");
        line("bytes_dropped", writer_bytes, "");
        line("packets_dropped_queue", 0, "");
        line("bytes_dropped_queue", 0, "");
        line("packets_dropped_writer", writer, "");
        line("bytes_dropped_writer", writer_bytes, "");
        line("aggregated_context", total_contexts, "");
        for (kind, n) in &self.contexts {
            line("aggregated_context_by_type", *n, &format!(",metrics_type:{kind}"));
        }
        self.metrics.clear();
        self.contexts.clear();
        self.events = 0;
        self.dropped_on_receive = 0;
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
        let mut counts = Counts::default();
        let mut telemetry = Telemetry::new("udp", "d");
        telemetry.metric(MetricKind::Counter, 1);
        telemetry.metric(MetricKind::Distribution, 3);
        telemetry.event();
        telemetry.refused(7);
        counts.packets_sent = 4;
        counts.packets_dropped_writer = 2;
        counts.bytes_dropped_writer = 300;
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
        assert!(lines.contains(&format!("datadog.dogstatsd.client.packets_dropped:2{tags}")));
        assert!(lines.contains(&format!("datadog.dogstatsd.client.bytes_dropped_writer:300{tags}")));
        assert!(lines.contains(&format!("datadog.dogstatsd.client.packets_dropped_queue:0{tags}")));
        assert!(
            lines.contains(&format!("datadog.dogstatsd.client.metric_dropped_on_receive:7{tags}"))
        );
        // The next report counts from here.
        counts.packets_sent = 5;
        let lines = telemetry.lines(&counts, &[]);
        let starts = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        assert!(starts("datadog.dogstatsd.client.packets_sent:1|"));
        assert!(starts("datadog.dogstatsd.client.metrics:0|"));
        assert!(starts("datadog.dogstatsd.client.packets_dropped:0|"));
        assert!(starts("datadog.dogstatsd.client.metric_dropped_on_receive:0|"));
    }
}
