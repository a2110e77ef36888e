//! Aggregation: where values are kept between the hot path and the flusher.
//!
//! * [`hash`]: order-independent series hashing, no allocation.
//! * [`series`]: metric descriptions and series entries (the identity of what is aggregated).
//! * [`tag`]: tags, kept small enough to live inline in a series entry.
//! * [`registry`]: the shared table of live series, with the cardinality limits.
//! * [`cell`]: per-thread cells (a series' home cell, or a thread's own).
//! * [`value`]: what a cell holds, written by one thread with uncontended atomics, drained by swap.
//! * [`accumulator`]: the flusher's merged value of a series over an interval.
//! * [`sketch`] and [`set`]: the bounded structures behind distributions and sets.

pub(crate) mod accumulator;
pub(crate) mod cell;
pub(crate) mod hash;
pub(crate) mod registry;
pub(crate) mod series;
pub(crate) mod set;
pub(crate) mod sketch;
pub(crate) mod tag;
pub(crate) mod value;
