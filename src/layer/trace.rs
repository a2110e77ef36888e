//! Traces: the sampling decision at the root, the spans of kept traces, the state behind outgoing
//! propagation headers (their format is [`crate::trace_headers`]).
//!
//! Recording is on only when a traces sample rate or sampler is configured. A root span draws
//! (or inherits from upstream) `sample_rand` and decides once; its descendants copy the decision
//! from their parent. An unsampled trace allocates nothing: its spans carry the trace id and the
//! decision inline. A kept trace shares one [`TraceContext`] between its spans; each child span
//! adds its record when it closes, and the root span's close turns them into a
//! [`Transaction`](crate::batch::Transaction) for the flusher.

use std::sync::{Arc, Mutex, PoisonError};

use tracing_core::Metadata;
use tracing_subscriber::registry::{LookupSpan, Registry};

use super::span_data::{Collected, SpanData, TraceContext, TraceLink};
use crate::batch::{Sampling, SpanId, SpanStatus, TraceId, TraceSpan, Transaction};
use crate::config::SamplingContext;
use crate::fields::SpanField;
use crate::pipeline::Shared;
use crate::stats::DropReason;
use crate::trace_headers::{self as headers, TraceHeaders, Upstream};

/// A random number in `[0, 1)` from 64 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Links a new span to its trace: a child copies its parent's link; a root decides.
pub(crate) fn link(
    shared: &Shared,
    meta: &Metadata<'_>,
    data: &mut SpanData,
    parent: Option<(u64, &TraceLink)>,
    mut random: impl FnMut() -> u64,
) {
    let Some(traces) = &shared.config.traces else { return };
    if let Some((parent_id, parent_link)) = parent {
        if parent_link.trace_id().is_some() {
            data.parent_span_id = Some(parent_id);
            data.trace = parent_link.clone();
            if let Some(trace_id) = data.trace.trace_id() {
                data.trace_id = trace_id;
            }
            return;
        }
    }
    let incoming = data.meta.as_ref().and_then(|m| {
        headers::upstream(m.sentry_trace.as_deref(), m.traceparent.as_deref(), m.baggage.as_deref())
    });
    let parent_sampled = incoming.as_ref().and_then(|u| u.sampled);
    let (sample_rate, sampled, sample_rand) = match (&traces.sampler, &incoming) {
        (Some(sampler), _) => {
            let rate = sampler(&SamplingContext { metadata: meta, parent_sampled });
            let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
            let rand =
                incoming.as_ref().and_then(|u| u.sample_rand).unwrap_or_else(|| unit(random()));
            downsample(shared, rate, rand)
        }
        (None, Some(Upstream { sampled: Some(sampled), sample_rate, sample_rand, .. })) => {
            let rate = sample_rate.unwrap_or(traces.sample_rate);
            // Keep `sample_rand < sample_rate` equivalent to `sampled`, as the spec asks.
            let rand = sample_rand.unwrap_or_else(|| {
                let r = unit(random());
                if *sampled {
                    r * rate
                } else {
                    rate + r * (1.0 - rate)
                }
            });
            (rate, *sampled, rand)
        }
        (None, _) => {
            let rand =
                incoming.as_ref().and_then(|u| u.sample_rand).unwrap_or_else(|| unit(random()));
            downsample(shared, traces.sample_rate, rand)
        }
    };
    let trace_id = incoming.as_ref().map_or(data.trace_id, |u| u.trace_id);
    data.trace_id = trace_id;
    let sampling = Sampling { sample_rate, sample_rand, sampled };
    let upstream_baggage = incoming.as_ref().and_then(|u| u.baggage.clone());
    data.trace = if sampled {
        let transaction = data.meta.as_ref().and_then(|m| m.name.as_deref()).unwrap_or(meta.name());
        TraceLink::Sampled(Arc::new(TraceContext {
            trace_id,
            root_span_id: data.span_id,
            sampling,
            upstream_parent: incoming.as_ref().map(|u| u.parent_span_id),
            upstream_baggage,
            transaction: transaction.into(),
            collected: Mutex::new(Collected::default()),
        }))
    } else {
        crate::stats::Counters::bump(&shared.counters.unsampled_traces, 1);
        TraceLink::Unsampled { trace_id, sampling, upstream_baggage }
    };
}

/// A root's own sampling decision at `rate`, lowered by backpressure: the rate in effect,
/// whether the trace is kept, and `rand`. A root that only backpressure left out is counted.
fn downsample(shared: &Shared, rate: f64, rand: f64) -> (f64, bool, f64) {
    let effective = shared.backpressure.scale(rate);
    let sampled = rand < effective;
    if !sampled && rand < rate {
        crate::stats::Counters::bump(&shared.counters.downsampled_traces, 1);
    }
    (effective, sampled, rand)
}

/// The record of a span of a kept trace.
fn record(
    data: &SpanData,
    meta: &'static Metadata<'static>,
    shared: &Shared,
    end: u64,
) -> TraceSpan {
    let extra = data.meta.as_deref();
    let status = extra
        .and_then(|m| m.status.as_deref())
        .and_then(SpanStatus::parse)
        .unwrap_or(if data.errored { SpanStatus::InternalError } else { SpanStatus::Ok });
    TraceSpan {
        span_id: SpanId(data.span_id),
        parent_span_id: data.parent_span_id.map(SpanId),
        name: extra.and_then(|m| m.name.clone()).unwrap_or_else(|| meta.name().to_owned()),
        op: extra.and_then(|m| m.op.clone()).unwrap_or_else(|| meta.name().to_owned()),
        description: extra.and_then(|m| m.description.clone()),
        target: meta.target(),
        start: shared.clock_base.wall(data.start),
        end: shared.clock_base.wall(end),
        status,
        fields: data.fields.to_vec(),
    }
}

/// A span of a kept trace closed: keep its record, or, for the root, send the transaction.
pub(crate) fn finish(shared: &Shared, data: &SpanData, meta: &'static Metadata<'static>, end: u64) {
    let TraceLink::Sampled(context) = &data.trace else { return };
    let Some(traces) = &shared.config.traces else { return };
    if context.root_span_id == data.span_id {
        let mut root = record(data, meta, shared, end);
        root.parent_span_id = context.upstream_parent.map(SpanId);
        let collected = {
            let mut collected = context.collected.lock().unwrap_or_else(PoisonError::into_inner);
            collected.finished = true;
            std::mem::take(&mut *collected)
        };
        shared.submit_transaction(Transaction {
            trace_id: TraceId(context.trace_id),
            root,
            spans: collected.spans,
            dropped_spans: collected.dropped,
            sampling: context.sampling,
            upstream_baggage: context.upstream_baggage.clone(),
        });
        return;
    }
    if crate::pipeline::clock().delta(data.start, end) < traces.min_span_duration {
        return;
    }
    let span = record(data, meta, shared, end);
    let mut collected = context.collected.lock().unwrap_or_else(PoisonError::into_inner);
    if collected.finished {
        drop(collected);
        shared.counters.dropped(DropReason::LateSpan, 1);
    } else if collected.spans.len() >= traces.max_spans {
        collected.dropped = collected.dropped.saturating_add(1);
    } else {
        collected.spans.push(span);
    }
}

/// The dynamic sampling context of a trace: the upstream one unchanged, or ours.
pub(crate) fn dsc(shared: &Shared, link: &TraceLink) -> Option<Vec<(String, String)>> {
    let (trace_id, sampling) = (link.trace_id()?, link.sampling()?);
    let upstream = match link {
        TraceLink::Unsampled { upstream_baggage, .. } => upstream_baggage.as_ref(),
        TraceLink::Sampled(context) => context.upstream_baggage.as_ref(),
        TraceLink::Off => None,
    };
    if let Some(frozen) = upstream {
        return Some(frozen.to_vec());
    }
    let config = &shared.config;
    let mut entries = vec![
        ("trace_id".to_owned(), format!("{trace_id:032x}")),
        ("sample_rate".to_owned(), sampling.sample_rate.to_string()),
        ("sample_rand".to_owned(), format!("{:.6}", sampling.sample_rand.min(0.999_999))),
        ("sampled".to_owned(), sampling.sampled.to_string()),
    ];
    entries.extend(config.release.iter().map(|r| ("release".to_owned(), r.clone())));
    entries.extend(config.environment.iter().map(|e| ("environment".to_owned(), e.clone())));
    if let TraceLink::Sampled(context) = link {
        entries.push(("transaction".to_owned(), context.transaction.to_string()));
    }
    entries.extend(config.dsc_extras.iter().cloned());
    Some(entries)
}

/// Outgoing headers for `span` (see [`crate::propagation::trace_headers`]): the span's trace
/// state, formatted by [`TraceHeaders::new`].
pub(crate) fn headers_for(span: &tracing::Span) -> Option<TraceHeaders> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        let (span_id, link, fallback_trace_id) = {
            let extensions = span.extensions();
            let data = extensions.get::<SpanData>()?;
            (data.span_id, data.trace.clone(), data.trace_id)
        };
        // Without trace recording, the trace is the root span's (as for captured errors).
        let trace_id = link.trace_id().unwrap_or_else(|| {
            span.scope()
                .last()
                .and_then(|root| root.extensions().get::<SpanData>().map(|d| d.trace_id))
                .unwrap_or(fallback_trace_id)
        });
        let sampled = link.sampling().map(|s| s.sampled);
        let baggage =
            crate::pipeline::listed(pipeline_of(&span)?).and_then(|shared| dsc(&shared, &link));
        Some(TraceHeaders::new(trace_id, span_id, sampled, baggage.as_deref()))
    })
    .flatten()
}

fn pipeline_of(span: &tracing_subscriber::registry::SpanRef<'_, Registry>) -> Option<u64> {
    span.extensions().get::<SpanData>().map(|d| d.pipeline)
}

/// Marks the meaning of a span field in its data (for the visitor).
pub(crate) fn set_meta(data: &mut SpanData, field: SpanField, value: String) {
    let meta = data.meta.get_or_insert_with(Box::default);
    let slot = match field {
        SpanField::Op => &mut meta.op,
        SpanField::Name => &mut meta.name,
        SpanField::Description => &mut meta.description,
        SpanField::Status => &mut meta.status,
        SpanField::SentryTrace => &mut meta.sentry_trace,
        SpanField::Baggage => &mut meta.baggage,
        SpanField::TraceParent => &mut meta.traceparent,
    };
    *slot = Some(value);
}
