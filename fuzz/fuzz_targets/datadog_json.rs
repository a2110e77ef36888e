//! Datadog series, distribution points and events, chunked into request bodies, from arbitrary
//! batches.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tracing_tally::fuzzing::DatadogInput;
use tracing_tally_fuzz::BatchSpec;

#[derive(Debug, Arbitrary)]
struct Input {
    mode: u8,
    aggregates: Vec<u8>,
    max_distribution_values: u32,
    compression: u8,
    host: Option<String>,
    small_limits: u16,
    batch: BatchSpec,
}

fuzz_target!(|input: Input| {
    tracing_tally::fuzzing::datadog(&DatadogInput {
        mode: input.mode,
        aggregates: input.aggregates,
        max_distribution_values: input.max_distribution_values,
        compression: input.compression,
        host: input.host,
        small_limits: input.small_limits,
        batch: input.batch.build(),
    });
});
