//! Shared test helpers: a capturing sink and a pipeline on a scoped dispatcher.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, ErrorEvent, MetricRecord, MetricValue, Sink};
use tracing_tally::{Builder, FlushGuard, Tally};

/// A sink that keeps every batch.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl Capture {
    pub(crate) fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }

    /// Every metric record, self-metrics (`tally.*`) left out.
    pub(crate) fn metrics(&self) -> Vec<MetricRecord> {
        self.batches()
            .iter()
            .flat_map(|b| b.metrics().to_vec())
            .filter(|r| !r.name().starts_with("tally."))
            .collect()
    }

    pub(crate) fn self_metrics(&self) -> Vec<MetricRecord> {
        self.batches()
            .iter()
            .flat_map(|b| b.metrics().to_vec())
            .filter(|r| r.name().starts_with("tally."))
            .collect()
    }

    pub(crate) fn errors(&self) -> Vec<ErrorEvent> {
        self.batches().iter().flat_map(|b| b.errors().to_vec()).collect()
    }

    pub(crate) fn named(&self, name: &str) -> Vec<MetricRecord> {
        self.metrics().into_iter().filter(|r| r.name() == name).collect()
    }

    /// Sum of a counter over all records whose tags include `tags`.
    pub(crate) fn counter(&self, name: &str, tags: &[(&str, &str)]) -> f64 {
        self.named(name)
            .iter()
            .filter(|r| has_tags(r, tags))
            .map(|r| match r.value() {
                MetricValue::Counter(c) => c.sum(),
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// Exact integer sum of a counter.
    pub(crate) fn counter_exact(&self, name: &str, tags: &[(&str, &str)]) -> i128 {
        self.named(name)
            .iter()
            .filter(|r| has_tags(r, tags))
            .map(|r| match r.value() {
                MetricValue::Counter(c) => c.exact_integer().expect("integer increments"),
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// The distinct tag sets of a metric's records.
    pub(crate) fn series_of(&self, name: &str) -> Vec<Vec<(String, String)>> {
        let mut out: Vec<Vec<(String, String)>> = self
            .named(name)
            .iter()
            .map(|r| r.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub(crate) fn clear(&self) {
        self.batches.lock().unwrap().clear();
    }
}

pub(crate) fn has_tags(record: &MetricRecord, tags: &[(&str, &str)]) -> bool {
    tags.iter().all(|(k, v)| record.tags().iter().any(|t| t.key() == *k && t.value() == *v))
}

impl Sink for Capture {
    fn name(&self) -> &str {
        "capture"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        self.batches.lock().unwrap().push(batch.clone());
        Ok(())
    }
}

/// A pipeline with a capturing sink, installed on a dispatcher the test scopes itself.
pub(crate) struct Harness {
    pub(crate) dispatch: Dispatch,
    pub(crate) guard: FlushGuard,
    pub(crate) capture: Capture,
}

impl Harness {
    /// Builds with `builder` (no host tag, no other sink) plus a capturing sink.
    pub(crate) fn new(builder: Builder) -> Harness {
        let capture = Capture::default();
        let (layer, guard) = builder.host(None).sink(capture.clone()).build().expect("build");
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        Harness { dispatch, guard, capture }
    }

    /// A manual-mode pipeline: nothing is exported until `flush`.
    pub(crate) fn manual() -> Harness {
        Harness::new(Tally::builder().manual())
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    pub(crate) fn flush(&self) {
        assert!(self.guard.flush(Duration::from_secs(5)), "flush did not complete");
    }
}

/// A handle on one pipeline's own guard, for code running inside that pipeline (a field's
/// `Debug`, a sink, another layer) to flush it, and no other pipeline of the test binary
/// (the global `tracing_tally::flush` reaches whichever pipeline was built last).
#[derive(Clone, Default)]
pub(crate) struct OwnFlush {
    guard: Arc<std::sync::OnceLock<std::sync::Weak<FlushGuard>>>,
    calls: Arc<std::sync::atomic::AtomicU64>,
    detached: Arc<std::sync::atomic::AtomicBool>,
}

impl OwnFlush {
    /// Shares `guard` with the handle; returns it for the test to keep.
    pub(crate) fn attach(&self, guard: FlushGuard) -> Arc<FlushGuard> {
        let guard = Arc::new(guard);
        assert!(self.guard.set(Arc::downgrade(&guard)).is_ok(), "attached twice");
        guard
    }

    /// Flushes the attached pipeline; `None` if none is attached (or it is gone).
    pub(crate) fn flush(&self, timeout: Duration) -> Option<bool> {
        if self.detached.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let guard = self.guard.get()?.upgrade()?;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(guard.flush(timeout))
    }

    /// How many flushes went to the attached pipeline.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes the guard back: no flush starts any more, and the one in progress, if any, is
    /// waited for (10 s at most), so that dropping it is the test's own shutdown, on the test's
    /// thread.
    pub(crate) fn detach(&self, guard: Arc<FlushGuard>) -> FlushGuard {
        self.detached.store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut guard = guard;
        loop {
            match Arc::try_unwrap(guard) {
                Ok(guard) => return guard,
                Err(shared) => {
                    assert!(std::time::Instant::now() < deadline, "a flush kept the guard");
                    guard = shared;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}
