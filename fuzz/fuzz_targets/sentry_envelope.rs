//! Sentry envelopes (events, `trace_metric` containers, legacy `statsd` items) from arbitrary
//! batches.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tracing_tally::fuzzing::SentryInput;
use tracing_tally_fuzz::BatchSpec;

#[derive(Debug, Arbitrary)]
struct Input {
    legacy_statsd: bool,
    max_distribution_values: u16,
    send_default_pii: bool,
    batch: BatchSpec,
}

fuzz_target!(|input: Input| {
    tracing_tally::fuzzing::sentry(&SentryInput {
        legacy_statsd: input.legacy_statsd,
        max_distribution_values: input.max_distribution_values,
        send_default_pii: input.send_default_pii,
        batch: input.batch.build(),
    });
});
