//! What the benchmarks share.

use std::hint::black_box;

use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, Sink};

/// A sink that discards batches (after touching them, so nothing is optimized away).
pub(crate) struct Discard;

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        black_box(batch.metrics().len());
        Ok(())
    }
}
