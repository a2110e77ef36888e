//! Plain StatsD against a real Etsy statsd: what it aggregates equals what was emitted.

use tracing::info;
use tracing_tally::sink::statsd::StatsdOptions;

use crate::peers::Statsd;
use crate::{pipeline, WAIT};

/// Etsy statsd's key for a name with the global tags and `tags` in Graphite's syntax.
fn key(name: &str, tags: &str) -> String {
    format!("{name};environment=test;host=test-host;service=shop{tags}")
}

#[test]
fn etsy_statsd_aggregates_to_the_emitted_numbers() {
    let mut statsd = Statsd::start();
    let options = StatsdOptions::statsd(&format!("udp://127.0.0.1:{}", statsd.port)).unwrap();
    let (dispatch, guard) = pipeline(options);
    let values: Vec<f64> = (0..300).map(|i| f64::from(i % 97).mul_add(1.5, 2.0)).collect();
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 0..2 {
            for i in 0..150u64 {
                let route = if i % 3 == 0 { "/users" } else { "/orders" };
                info!(monotonic_counter.requests = 2, route);
                info!(set.visitors = i % 40);
            }
            for v in &values[round * 150..(round + 1) * 150] {
                info!(timing.render = *v);
            }
            info!(gauge.balance = 10);
            info!(gauge.balance = -5);
            assert!(guard.flush(WAIT));
        }
    });
    drop(guard);
    let totals = statsd.totals();
    assert_eq!(totals["bad_lines"], 0, "{}", totals["bad_line_texts"]);
    let counters = &totals["counters"];
    assert_eq!(counters[key("requests", ";route=_users")].as_f64(), Some(200.0), "{counters}");
    assert_eq!(counters[key("requests", ";route=_orders")].as_f64(), Some(400.0), "{counters}");
    assert_eq!(
        totals["gauges"][key("balance", "")].as_f64(),
        Some(-5.0),
        "a negative gauge is set, not a delta"
    );
    let timer = &totals["timers"][key("render", "")];
    assert_eq!(timer["count"].as_f64(), Some(300.0), "{timer}");
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!((timer["lower"].as_f64(), timer["upper"].as_f64()), (Some(min), Some(max)));
    let sum: f64 = values.iter().sum();
    let got = timer["sum"].as_f64().unwrap();
    assert!((got - sum).abs() / sum < 0.008, "sum within the sketch's accuracy: {got} vs {sum}");
    let sets = &totals["sets"][key("visitors", "")];
    assert_eq!(sets["max"].as_f64(), Some(40.0), "{sets}");
}
