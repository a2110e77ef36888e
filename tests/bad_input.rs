//! Bad input: the invariants the fuzz targets (`fuzz/`) check, as property tests with a modest
//! number of cases. Both go through `tracing_tally::fuzzing`, which runs the real parsers and
//! encoders and panics on a violation: no panic, no output over the protocol limits, every
//! input either encoded or counted.

use proptest::prelude::*;
use tracing_tally::fuzzing::{
    self, BatchInput, DatadogInput, ErrorInput, MetricInput, SentryInput, StatsdInput,
};

/// Text that breaks encoders: separators of every format, control characters, multi-byte and
/// long text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[a-z:|#,@;=\n\r\t\"\\\\ ]{0,16}",
        ("[é🌍a|]{1,4}", 40..120usize).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6..1e6f64,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -f64::MAX, 5e-324, -0.0, 1e15,
        ]),
    ]
}

fn tags() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((text(), text()), 0..4)
}

fn metric() -> impl Strategy<Value = MetricInput> {
    (
        (text(), any::<bool>(), any::<u8>(), any::<bool>(), prop::option::of(text())),
        (tags(), prop::collection::vec(number(), 0..40), prop_oneof![0..5u64, 1000..20_000u64]),
        0..8000u32,
    )
        .prop_map(|((name, raw_name, kind, monotonic, unit), (tags, values, unique), age)| {
            MetricInput {
                name,
                raw_name,
                kind,
                monotonic,
                unit,
                tags,
                values,
                unique,
                age_secs: age,
            }
        })
}

fn error() -> impl Strategy<Value = ErrorInput> {
    (
        prop::option::of(text()),
        prop::collection::vec(text(), 0..3),
        prop::option::of(text()),
        tags(),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec((any::<u8>(), prop::collection::vec(text(), 0..2)), 0..2),
        0..80_000u32,
    )
        .prop_map(|(message, chain, fingerprint, tags, fields, spans, age_secs)| ErrorInput {
            message,
            chain,
            fingerprint,
            tags,
            fields,
            spans,
            age_secs,
        })
}

fn batch() -> impl Strategy<Value = BatchInput> {
    (prop::collection::vec(metric(), 0..6), prop::collection::vec(error(), 0..3), tags())
        .prop_map(|(metrics, errors, global_tags)| BatchInput { metrics, errors, global_tags })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn field_names_follow_the_rules(field in prop_oneof![
        text(),
        "(monotonic_counter|counter|gauge|histogram|distribution|timing|set|tags)\\.\\PC{0,20}",
        "(counter|timing)\\.[a-z ]{0,8}@\\PC{0,8}",
    ]) {
        fuzzing::fields(&field);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn statsd_lines_and_datagrams_are_valid(
        dialect in any::<u8>(),
        prefix in prop_oneof![Just(String::new()), text()],
        max_packet in prop_oneof![0..400u32, Just(1432), Just(70_000)],
        distribution_type in any::<u8>(),
        batch in batch(),
    ) {
        fuzzing::statsd(&StatsdInput { dialect, prefix, max_packet, distribution_type, batch });
    }

    #[test]
    fn sentry_envelopes_are_valid(
        legacy_statsd in any::<bool>(),
        max_distribution_values in 0..20u16,
        send_default_pii in any::<bool>(),
        batch in batch(),
    ) {
        fuzzing::sentry(&SentryInput { legacy_statsd, max_distribution_values, send_default_pii, batch });
    }

    #[test]
    fn datadog_payloads_are_valid(
        mode in any::<u8>(),
        aggregates in prop::collection::vec(any::<u8>(), 0..4),
        max_distribution_values in 0..50u32,
        compression in any::<u8>(),
        host in prop::option::of(text()),
        small_limits in prop_oneof![Just(0u16), 1..200u16],
        batch in batch(),
    ) {
        fuzzing::datadog(&DatadogInput {
            mode, aggregates, max_distribution_values, compression, host, small_limits, batch,
        });
    }
}

#[test]
fn known_bad_inputs_are_encoded_or_counted() {
    // Sums that overflow, values at the ends of the range, a tag without a key, text with every
    // separator: each encoder sends what it can and counts the rest.
    let metric = |kind: u8, values: Vec<f64>| MetricInput {
        name: "m|:#,@\n".into(),
        kind,
        tags: vec![("tags.".into(), "v|,\n".into()), ("".into(), String::new())],
        values,
        ..MetricInput::default()
    };
    let batch = BatchInput {
        metrics: vec![
            metric(0, vec![1e308, 1e308, 0.5]),
            metric(1, vec![f64::MAX, -f64::MAX]),
            metric(2, vec![-f64::MAX, -f64::MAX, f64::MAX, 5e-324, 0.0]),
            metric(3, vec![f64::NAN, 1.0, 2.0]),
        ],
        errors: vec![ErrorInput {
            message: Some("line\nbreak|pipe".repeat(1000)),
            tags: (0..40).map(|i| (format!("k{i}"), "v".repeat(300))).collect(),
            ..ErrorInput::default()
        }],
        global_tags: vec![("service".into(), "api".into())],
    };
    for dialect in 0..4 {
        let input =
            StatsdInput { dialect, max_packet: 1432, batch: batch.clone(), ..Default::default() };
        fuzzing::statsd(&input);
    }
    for legacy_statsd in [false, true] {
        let outcome = fuzzing::sentry(&SentryInput {
            legacy_statsd,
            batch: batch.clone(),
            ..Default::default()
        });
        assert!(outcome.metric_drops > 0, "the overflowed counter is counted");
    }
    for mode in 0..3 {
        fuzzing::datadog(&DatadogInput {
            mode,
            small_limits: 3,
            batch: batch.clone(),
            ..Default::default()
        });
    }
}
