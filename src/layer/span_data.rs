//! The state the layer keeps for an open span ([`SpanData`], in the span's extensions), and how
//! the span belongs to a trace ([`TraceLink`]). The callbacks that fill it are in
//! [`super::span`]; the trace decisions in [`super::trace`].

use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use crate::batch::{FieldValue, Sampling, TraceSpan};

/// A configured span field's value, carried by the span and its descendants.
#[derive(Debug, Clone)]
pub(crate) struct SpanTag {
    /// Index of the key in the configured span tags.
    pub(crate) index: u8,
    pub(crate) value: Box<str>,
    /// The tag's hash contribution.
    pub(crate) hash: u64,
}

/// Busy/idle accounting (opt-in).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BusyIdle {
    pub(crate) busy: u64,
    pub(crate) idle: u64,
    pub(crate) last: u64,
    pub(crate) entered: u32,
}

/// Span fields with a meaning of their own (see [`crate::fields::SpanField`]), as text.
#[derive(Debug, Default)]
pub(crate) struct SpanMeta {
    pub(crate) op: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) sentry_trace: Option<String>,
    pub(crate) baggage: Option<String>,
    pub(crate) traceparent: Option<String>,
}

/// What the layer keeps for an open span.
#[derive(Debug)]
pub(crate) struct SpanData {
    pub(crate) start: u64,
    /// The pipeline the span belongs to.
    pub(crate) pipeline: u64,
    pub(crate) span_id: u64,
    /// The trace's id (a span's own random id until it is linked to its trace).
    pub(crate) trace_id: u128,
    pub(crate) parent_span_id: Option<u64>,
    pub(crate) trace: TraceLink,
    pub(crate) meta: Option<Box<SpanMeta>>,
    /// Set when an error was captured inside the span.
    pub(crate) errored: bool,
    pub(crate) tags: SmallVec<[SpanTag; 2]>,
    /// Inline for the usual handful of fields: the span's one allocation is its extension box.
    pub(crate) fields: SmallVec<[(&'static str, FieldValue); 2]>,
    pub(crate) busy_idle: Option<BusyIdle>,
}

impl SpanData {
    pub(crate) fn empty() -> Self {
        SpanData {
            start: 0,
            pipeline: 0,
            span_id: 0,
            trace_id: 0,
            parent_span_id: None,
            trace: TraceLink::Off,
            meta: None,
            errored: false,
            tags: SmallVec::new(),
            fields: SmallVec::new(),
            busy_idle: None,
        }
    }

    pub(crate) fn set_tag(&mut self, tag: SpanTag) {
        match self.tags.iter_mut().find(|t| t.index == tag.index) {
            Some(existing) => *existing = tag,
            None => self.tags.push(tag),
        }
    }

    pub(crate) fn set_field(&mut self, name: &'static str, value: FieldValue) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The sum of the span tags' hashes.
    pub(crate) fn tags_hash(&self) -> u64 {
        self.tags.iter().fold(0u64, |sum, t| sum.wrapping_add(t.hash))
    }
}

/// The child spans a kept trace has collected so far.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) spans: Vec<TraceSpan>,
    pub(crate) dropped: u32,
    /// Set when the root closed: later spans are late.
    pub(crate) finished: bool,
}

/// What the spans of one kept trace share.
#[derive(Debug)]
pub(crate) struct TraceContext {
    pub(crate) trace_id: u128,
    pub(crate) root_span_id: u64,
    pub(crate) sampling: Sampling,
    pub(crate) upstream_parent: Option<u64>,
    pub(crate) upstream_baggage: Option<Arc<[(String, String)]>>,
    /// The root's name when it opened (the DSC's `transaction`).
    pub(crate) transaction: Box<str>,
    pub(crate) collected: Mutex<Collected>,
}

/// How a span belongs to a trace.
#[derive(Debug, Clone, Default)]
pub(crate) enum TraceLink {
    /// Traces are not recorded.
    #[default]
    Off,
    /// The trace is not kept.
    Unsampled {
        trace_id: u128,
        sampling: Sampling,
        upstream_baggage: Option<Arc<[(String, String)]>>,
    },
    /// The trace is kept.
    Sampled(Arc<TraceContext>),
}

impl TraceLink {
    /// The trace id, when traces are recorded.
    pub(crate) fn trace_id(&self) -> Option<u128> {
        match self {
            TraceLink::Off => None,
            TraceLink::Unsampled { trace_id, .. } => Some(*trace_id),
            TraceLink::Sampled(context) => Some(context.trace_id),
        }
    }

    pub(crate) fn sampling(&self) -> Option<Sampling> {
        match self {
            TraceLink::Off => None,
            TraceLink::Unsampled { sampling, .. } => Some(*sampling),
            TraceLink::Sampled(context) => Some(context.sampling),
        }
    }
}
