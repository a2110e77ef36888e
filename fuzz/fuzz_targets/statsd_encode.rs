//! DogStatsD and plain StatsD lines, events and datagrams from arbitrary batches.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tracing_tally::fuzzing::StatsdInput;
use tracing_tally_fuzz::BatchSpec;

#[derive(Debug, Arbitrary)]
struct Input {
    dialect: u8,
    prefix: String,
    max_packet: u16,
    distribution_type: u8,
    batch: BatchSpec,
}

fuzz_target!(|input: Input| {
    tracing_tally::fuzzing::statsd(&StatsdInput {
        dialect: input.dialect,
        prefix: input.prefix,
        max_packet: u32::from(input.max_packet),
        distribution_type: input.distribution_type,
        batch: input.batch.build(),
    });
});
