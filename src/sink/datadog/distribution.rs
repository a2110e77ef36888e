//! Distributions as distribution points (`POST /api/v1/distribution_points`).
//!
//! The intake takes raw values and no weights, so each record's values are rebuilt from its
//! sketch: every bucket's midpoint (within 0.79% of each value in it), repeated as many times
//! as the bucket counted, with the first and last values replaced by the exact minimum and
//! maximum. An interval with more values than
//! [`max_distribution_values`](super::DatadogOptions::max_distribution_values) sends that many,
//! taken at evenly spaced ranks (so the sample follows the distribution and percentiles stay
//! right), still with the exact extremes; the values left out are counted (`sampled`).
//!
//! ```text
//! {"metric":"latency","points":[[1700000000,[1.0,2.0,5.0]]],"type":"distribution",
//!  "host":"web-1","tags":["env:prod"]}
//! ```

use super::context::{self, Context};
use super::losses::DropCause;
use super::payload::{Input, Items};
use super::window::{self};
use crate::batch::{DistributionValue, MetricValue};
use crate::sink::json::{self, Object};
use crate::stats::Carried;

/// Every distribution record of `batch` as a distribution-point series (when points are on).
pub(crate) fn encode(input: Input<'_>) -> Items {
    let Input { batch, options, window, losses } = input;
    let mut items = Items::default();
    if !options.distributions.points() {
        return items;
    }
    for record in batch.metrics() {
        let MetricValue::Distribution(d) = record.value() else { continue };
        if d.count == 0 {
            continue;
        }
        let timestamp = window::unix(record.timestamp());
        let carried = Carried::of(record);
        if !window.admit(timestamp, 1, Some(&carried), losses) {
            continue;
        }
        let (values, left_out) = values(d, options.max_distribution_values);
        losses.record(DropCause::Sampled, left_out);
        if values.is_empty() {
            losses.record_items(DropCause::NonFinite, 1, [&carried]);
            continue;
        }
        let context = Context::new(batch.global_tags(), record.tags(), &options.host);
        let name = context::metric_name(record.name());
        items.push(timestamp, Some(carried), |out| {
            let mut o = Object::new(out);
            o.field("metric", name.as_ref());
            o.with("points", |out| {
                out.extend_from_slice(b"[[");
                json::value(out, &timestamp);
                out.extend_from_slice(b",[");
                for (i, &value) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::float(out, value);
                }
                out.extend_from_slice(b"]]]");
            });
            o.field("type", "distribution");
            context.end(o);
        });
    }
    items
}

/// The values to send for `d`: [`DistributionValue::sample`].
pub(crate) fn values(d: &DistributionValue, max: usize) -> (Vec<f64>, u64) {
    d.sample(max)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    use crate::sink::datadog::losses::testing::recording;
    use crate::sink::datadog::options::DatadogOptions;
    use crate::sink::datadog::options::DistributionMode;
    use crate::sink::datadog::testing::{
        batch, counter, distribution, distribution_value, KEY, NOW,
    };
    use crate::sink::datadog::window::Window;

    #[test]
    fn small_distributions_send_every_value_with_exact_extremes() {
        let d = distribution_value(&[3.0, 1.0, 2.0, 2.0, 1000.0]);
        let (values, left_out) = values(&d, 1000);
        assert_eq!(left_out, 0);
        assert_eq!(values.len(), 5);
        assert_eq!((values[0], values[4]), (1.0, 1000.0));
        for (got, want) in values.iter().zip([1.0, 2.0, 2.0, 3.0, 1000.0]) {
            assert!((got - want).abs() / want < 0.008, "{values:?}");
        }
    }

    #[test]
    fn large_distributions_are_sampled_at_even_ranks() {
        let all: Vec<f64> = (1..=10_000).map(f64::from).collect();
        let d = distribution_value(&all);
        let (values, left_out) = values(&d, 100);
        assert_eq!((values.len(), left_out), (100, 9_900));
        assert_eq!((values[0], values[99]), (1.0, 10_000.0));
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "ascending");
        // The k-th value stands for rank (k + 1/2) * 100.
        for (k, want) in [(10, 1050.0), (50, 5050.0), (90, 9050.0)] {
            assert!((values[k] - want).abs() / want < 0.01, "{k}: {}", values[k]);
        }
    }

    #[test]
    fn single_values_and_negative_values() {
        assert_eq!(values(&distribution_value(&[-4.5]), 10), (vec![-4.5], 0));
        assert_eq!(values(&distribution_value(&[-2.0, 0.0, 3.0]), 10), (vec![-2.0, 0.0, 3.0], 0));
    }

    #[test]
    fn distribution_points_golden() {
        let (losses, _) = recording();
        let batch = batch(vec![
            distribution("span.duration", Some("millisecond"), &[("span", "handle")], &[1.0, 4.0]),
            counter("not.a.distribution", None, &[], 1.0),
        ]);
        let options = DatadogOptions::new(KEY).unwrap();
        let window = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64));
        let items =
            encode(Input { batch: &batch, options: &options, window: &window, losses: &losses });
        assert_eq!(items.len(), 1);
        assert_eq!(
            std::str::from_utf8(items.get(0).unwrap().0).unwrap(),
            r#"{"metric":"span.duration","points":[[1700000000,[1.0,4.0]]],"type":"distribution","host":"web-1","tags":["env:prod","service:api","span:handle"]}"#
        );
        let aggregates = options.distributions(DistributionMode::Aggregates);
        assert!(encode(Input {
            batch: &batch,
            options: &aggregates,
            window: &window,
            losses: &losses
        })
        .is_empty());
    }

    #[test]
    fn sampled_values_are_counted() {
        use crate::stats::DropReason;
        let (losses, forwarded) = recording();
        let all: Vec<f64> = (1..=50).map(f64::from).collect();
        let batch = batch(vec![distribution("d", None, &[], &all)]);
        let options = DatadogOptions::new(KEY).unwrap().max_distribution_values(20);
        let window = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64));
        let items =
            encode(Input { batch: &batch, options: &options, window: &window, losses: &losses });
        let item: serde_json::Value = serde_json::from_slice(items.get(0).unwrap().0).unwrap();
        assert_eq!(item["points"][0][1].as_array().unwrap().len(), 20);
        assert_eq!(losses.get(DropCause::Sampled), 30);
        // Summarised, not dropped: its record was sent.
        assert_eq!(*forwarded.lock().unwrap(), vec![(DropReason::SinkSampled, 30)]);
    }
}
