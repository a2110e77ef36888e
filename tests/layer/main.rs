//! The layer through a real subscriber: field conventions, spans, errors, limits, intervals,
//! composition with other layers, flushing.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod builder;
mod composition;
mod errors;
mod fields;
mod flushing;
mod intervals;
mod jsonl;
mod limits;
mod misbehaving;
mod properties;
mod scrubbing;
mod spans;
mod traces;
