use std::sync::{Arc, Mutex, PoisonError};

use super::{Batch, ErrorEvent, MetricRecord, Sink};
use crate::error::ExportError;

/// A sink that keeps every batch in memory, for tests.
///
/// Clones share the same storage: keep one clone, give the other to the builder.
///
/// ```
/// use tracing_tally::sink::MemorySink;
/// use tracing_subscriber::prelude::*;
///
/// let sink = MemorySink::new();
/// let (layer, guard) = tracing_tally::Tally::builder().manual().sink(sink.clone()).build()?;
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info!(monotonic_counter.hits = 3);
/// });
/// guard.flush(std::time::Duration::from_secs(1));
/// assert_eq!(sink.counter_total("hits", &[]), 3.0);
/// # Ok::<(), tracing_tally::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// Every batch received so far.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every metric record received so far.
    pub fn metrics(&self) -> Vec<MetricRecord> {
        self.batches().iter().flat_map(|b| b.metrics().to_vec()).collect()
    }

    /// Every error received so far.
    pub fn errors(&self) -> Vec<ErrorEvent> {
        self.batches().iter().flat_map(|b| b.errors().to_vec()).collect()
    }

    /// The sum of a counter over every record whose tags include all of `tags`.
    pub fn counter_total(&self, name: &str, tags: &[(&str, &str)]) -> f64 {
        self.metrics()
            .iter()
            .filter(|r| r.name() == name && has_tags(r, tags))
            .filter_map(|r| match r.value() {
                super::MetricValue::Counter(c) => Some(c.sum()),
                _ => None,
            })
            .sum()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

fn has_tags(record: &MetricRecord, tags: &[(&str, &str)]) -> bool {
    tags.iter().all(|(k, v)| record.tags().iter().any(|t| t.key() == *k && t.value() == *v))
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).push(batch.clone());
        Ok(())
    }
}
