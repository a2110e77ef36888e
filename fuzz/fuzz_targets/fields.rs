//! Field names: the metric prefix, name, unit and tag-key rules, tag-value cutting, and the
//! StatsD name rules, on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|field: &str| {
    tracing_tally::fuzzing::fields(field);
});
