//! The `datadog_json` target: the Datadog sink's payloads.

use std::time::SystemTime;

use serde_json::Value;

use super::inputs::{batch, BatchInput};
use crate::batch::MetricValue;

/// What the Datadog sink is configured with.
#[derive(Debug, Clone, Default)]
pub struct DatadogInput {
    /// Distributions as points (0), aggregates (1) or both (2).
    pub mode: u8,
    /// Aggregates: max, min, median, avg, sum, count, then percentiles (`n - 6`).
    pub aggregates: Vec<u8>,
    /// Values per distribution point (clamped as the options clamp it).
    pub max_distribution_values: u32,
    /// Deflate (0), gzip (1) or no compression (2).
    pub compression: u8,
    /// The host setting: from tags (`None`), or a fixed host (empty: off).
    pub host: Option<String>,
    /// Scales the intake's limits down (0: the real limits) to exercise splitting: items per
    /// body `1 + n % 50`, bytes `64 + n * 16`.
    pub small_limits: u16,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`datadog`] produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatadogOutcome {
    /// Request bodies.
    pub payloads: usize,
    /// Items sent (series, distribution points, events).
    pub items: u64,
    /// Items counted as lost.
    pub lost: u64,
}

/// Encodes a batch as the Datadog sink does, chunks it into payloads and checks them.
pub fn datadog(input: &DatadogInput) -> DatadogOutcome {
    use crate::sink::datadog::losses::{DropCause, Losses};
    use crate::sink::datadog::options::{
        Compression, DatadogOptions, DistributionMode, HistogramAggregate,
    };
    use crate::sink::datadog::payload::{self, Input, Kind, Limits};
    use crate::sink::datadog::window::Window;
    use crate::sink::datadog::{distribution, event, series};

    let mode = [DistributionMode::Points, DistributionMode::Aggregates, DistributionMode::Both]
        [usize::from(input.mode % 3)];
    let compression = [Compression::Deflate, Compression::Gzip, Compression::None]
        [usize::from(input.compression % 3)];
    let mut options = DatadogOptions::new("0123456789abcdef0123456789abcdef")
        .expect("a valid key")
        .distributions(mode)
        .compression(compression)
        .max_distribution_values(usize::try_from(input.max_distribution_values).unwrap_or(2));
    if !input.aggregates.is_empty() {
        options = options.histogram_aggregates(input.aggregates.iter().map(|&a| match a {
            0 => HistogramAggregate::Max,
            1 => HistogramAggregate::Min,
            2 => HistogramAggregate::Median,
            3 => HistogramAggregate::Avg,
            4 => HistogramAggregate::Sum,
            5 => HistogramAggregate::Count,
            n => HistogramAggregate::Percentile(n - 6),
        }));
    }
    if let Some(host) = &input.host {
        options = options.host(Some(host.clone()));
    }
    let batch = batch(&input.batch);
    let now = SystemTime::now();
    let metrics = Window::metrics(now);
    let lost = |losses: &Losses| -> u64 { DropCause::ALL.iter().map(|&l| losses.get(l)).sum() };

    // Series: one point per counter, gauge and set, one per aggregate of a distribution.
    let series_losses = Losses::new(|_, _| {}, |_| {});
    let series_items = series::encode(Input {
        batch: &batch,
        options: &options,
        window: &metrics,
        losses: &series_losses,
    });
    let expected: u64 = batch
        .metrics()
        .iter()
        .map(|r| match r.value() {
            MetricValue::Distribution(d) if mode != DistributionMode::Points && d.count > 0 => {
                options.aggregates.len() as u64
            }
            MetricValue::Distribution(_) => 0,
            _ => 1,
        })
        .sum();
    assert_eq!(series_items.len() as u64 + lost(&series_losses), expected, "series points");

    // Distribution points: one per distribution record, its values sampled (and counted).
    let point_losses = Losses::new(|_, _| {}, |_| {});
    let point_items = distribution::encode(Input {
        batch: &batch,
        options: &options,
        window: &metrics,
        losses: &point_losses,
    });
    if mode != DistributionMode::Aggregates {
        let records = batch
            .metrics()
            .iter()
            .filter(|r| matches!(r.value(), MetricValue::Distribution(d) if d.count > 0))
            .count() as u64;
        let unsent = lost(&point_losses) - point_losses.get(DropCause::Sampled);
        assert_eq!(point_items.len() as u64 + unsent, records, "distribution points");
    } else {
        assert!(point_items.is_empty());
    }

    // Events: one per error, or counted.
    let event_losses = Losses::new(|_, _| {}, |_| {});
    let event_items = event::encode(Input {
        batch: &batch,
        options: &options,
        window: &Kind::Event.window(now),
        losses: &event_losses,
    });
    assert_eq!(
        event_items.len() as u64 + lost(&event_losses),
        batch.errors().len() as u64,
        "events"
    );

    let mut outcome = DatadogOutcome::default();
    for (kind, items) in [
        (Kind::Series, &series_items),
        (Kind::Distribution, &point_items),
        (Kind::Event, &event_items),
    ] {
        let limits = match input.small_limits {
            0 => kind.limits(),
            n if kind == Kind::Event => {
                Limits { max_raw: 64 + usize::from(n) * 16, ..kind.limits() }
            }
            n => Limits {
                max_items: 1 + usize::from(n) % 50,
                max_raw: 64 + usize::from(n) * 16,
                max_body: 64 + usize::from(n) * 16,
            },
        };
        let losses = Losses::new(|_, _| {}, |_| {});
        let compression = kind.compression(options.compression);
        let payloads = payload::chunk(kind, compression, items, &limits, &losses);
        let mut sent = 0u64;
        for p in &payloads {
            assert!(
                p.items() >= 1 && p.items() as usize <= limits.max_items,
                "{} items",
                p.items()
            );
            assert!(
                p.body.len() <= limits.max_body,
                "body of {} > {}",
                p.body.len(),
                limits.max_body
            );
            let raw = payload::decompress(&p.body, p.compression).expect("decompresses");
            assert!(raw.len() <= limits.max_raw, "raw body of {} > {}", raw.len(), limits.max_raw);
            let json: Value = serde_json::from_slice(&raw).expect("payload JSON");
            match kind {
                Kind::Event => assert!(json["title"].is_string() && json["text"].is_string()),
                _ => assert_eq!(
                    json["series"].as_array().map(Vec::len),
                    Some(p.items() as usize),
                    "items in the body"
                ),
            }
            sent += p.items();
        }
        let too_large = losses.get(DropCause::TooLarge);
        assert_eq!(sent + too_large, items.len() as u64, "{kind:?}: every item sent or counted");
        outcome.payloads += payloads.len();
        outcome.items += sent;
        outcome.lost += too_large;
    }
    outcome.lost += lost(&series_losses) + lost(&point_losses) + lost(&event_losses);
    outcome
}
