//! Spans: timings, ids, captured fields and span tags.
//!
//! A span costs one clock read when it opens and one when it closes; nothing happens on enter or
//! exit unless busy/idle time is on. Its state lives in one [`SpanData`] in the span's extensions.

use std::fmt;
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::guard;
use super::local::{Series, ThreadState};
use super::plan::{is_sensitive, Plan, Plans, SpanPlan};
use super::session;
use super::span_data::{BusyIdle, SpanData, SpanMeta, SpanTag};
use super::trace;
use crate::aggregate::hash::{hash_value_text, series_hash, tag_hash};
use crate::aggregate::series::{MetricDesc, SeriesTags};
use crate::aggregate::value::Number;
use crate::batch::{FieldValue, Tag};
use crate::fields::{truncate_tag_value, SPAN_TAG};
use crate::pipeline::clock;
use crate::scrub::FILTERED;
use crate::stats::Counters;

/// Records a span's field values into its data: captured fields and configured span tags.
struct SpanVisitor<'a> {
    plan: &'a SpanPlan,
    plans: &'a Plans,
    data: &'a mut SpanData,
    capture: bool,
}

impl SpanVisitor<'_> {
    fn value(&mut self, field: &Field, value: FieldValue) {
        if let Some(Some(special)) = self.plan.specials.get(field.index()) {
            trace::set_meta(self.data, *special, value.to_string());
            return;
        }
        let value = if is_sensitive(self.plan.sensitive, field.index()) {
            FieldValue::Str(FILTERED.to_owned())
        } else {
            value
        };
        if let Some(Some(index)) = self.plan.tag_fields.get(field.index()) {
            if let Some(key) = self.plans.span_tag_keys.get(usize::from(*index)) {
                let text = value.to_string();
                let (text, _) = truncate_tag_value(&text);
                self.data.set_tag(SpanTag {
                    index: *index,
                    value: text.into(),
                    hash: tag_hash(key.hash, hash_value_text(text.as_bytes())),
                });
            }
        }
        if self.capture {
            let name = field.name();
            match self.data.fields.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.data.fields.push((name, value)),
            }
        }
    }

    fn wants(&self, field: &Field) -> bool {
        self.capture
            || matches!(self.plan.tag_fields.get(field.index()), Some(Some(_)))
            || matches!(self.plan.specials.get(field.index()), Some(Some(_)))
    }
}

/// `record_*` methods that keep a value of a plain type as its [`FieldValue`] variant.
macro_rules! record_plain {
    ($($method:ident($type:ty) => $variant:ident),* $(,)?) => {$(
        fn $method(&mut self, field: &Field, value: $type) {
            if self.wants(field) {
                self.value(field, FieldValue::$variant(value));
            }
        }
    )*};
}

impl Visit for SpanVisitor<'_> {
    record_plain! {
        record_i64(i64) => I64,
        record_u64(u64) => U64,
        record_i128(i128) => I128,
        record_u128(u128) => U128,
        record_f64(f64) => F64,
        record_bool(bool) => Bool,
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.wants(field) {
            self.value(field, FieldValue::Str(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.wants(field) {
            let counters = &self.plans.shared.counters;
            if let Some(text) = guard::user_code(counters, || format!("{value:?}")) {
                self.value(field, FieldValue::Text(text));
            }
        }
    }
}

fn visitor<'a>(plans: &'a Plans, plan: &'a SpanPlan, data: &'a mut SpanData) -> SpanVisitor<'a> {
    let capture = plans.shared.config.capture_span_fields;
    SpanVisitor { plan, plans, data, capture }
}

/// A span opened: read the clock, give it ids, capture its fields.
pub(crate) fn on_new_span<S>(
    plans: &Plans,
    ts: &mut ThreadState,
    attrs: &Attributes<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let start = clock().raw();
    let span_id = ts.random();
    let trace_id = (u128::from(ts.random()) << 64) | u128::from(ts.random());
    let mut seed = ts.random();
    let random = move || {
        seed = crate::aggregate::hash::mix(seed.wrapping_add(0x9e37_79b9_7f4a_7c15));
        seed
    };
    let Plan::Span(plan) = ts.plans.get(attrs.metadata(), plans) else {
        return;
    };
    let busy_idle =
        plans.shared.config.busy_idle.then_some(BusyIdle { last: start, ..BusyIdle::default() });
    let pipeline = plans.shared.id;
    let mut data = SpanData { start, pipeline, span_id, trace_id, busy_idle, ..SpanData::empty() };
    if !attrs.fields().is_empty() {
        // User `Debug` code runs here, before any extension lock is taken.
        attrs.record(&mut visitor(plans, plan, &mut data));
    }
    let Some(span) = ctx.span(id) else { return };
    let traces = plans.shared.config.traces.is_some();
    if traces || !plans.span_tag_keys.is_empty() {
        let parent = span.parent();
        let parent_extensions = parent.as_ref().map(|p| p.extensions());
        let parent_data = parent_extensions.as_ref().and_then(|e| e.get::<SpanData>());
        if let Some(parent) = parent_data {
            for tag in &parent.tags {
                if !data.tags.iter().any(|t| t.index == tag.index) {
                    data.tags.push(tag.clone());
                }
            }
        }
        if traces {
            let parent = parent_data.map(|p| (p.span_id, &p.trace));
            trace::link(&plans.shared, attrs.metadata(), &mut data, parent, random);
        }
    }
    span.extensions_mut().insert(data);
}

/// Values recorded on an open span.
pub(crate) fn on_record<S>(
    plans: &Plans,
    ts: &mut ThreadState,
    id: &Id,
    values: &Record<'_>,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    let Plan::Span(plan) = ts.plans.get(span.metadata(), plans) else {
        return;
    };
    // Visit into a scratch copy first: user `Debug` code must not run under the extensions lock.
    let mut update = SpanData::empty();
    values.record(&mut visitor(plans, plan, &mut update));
    let mut extensions = span.extensions_mut();
    let Some(data) = extensions.get_mut::<SpanData>() else {
        return;
    };
    for tag in update.tags {
        data.set_tag(tag);
    }
    for (name, value) in update.fields {
        data.set_field(name, value);
    }
    if let Some(update) = update.meta {
        let meta = data.meta.get_or_insert_with(Box::default);
        let SpanMeta { op, name, description, status, sentry_trace, baggage, traceparent } =
            *update;
        for (slot, value) in [
            (&mut meta.op, op),
            (&mut meta.name, name),
            (&mut meta.description, description),
            (&mut meta.status, status),
            (&mut meta.sentry_trace, sentry_trace),
            (&mut meta.baggage, baggage),
            (&mut meta.traceparent, traceparent),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
    }
}

/// Entering a span (busy/idle time only): the time since the span was last left was idle.
pub(crate) fn on_enter<S>(id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    with_busy_idle(id, ctx, |t, now| {
        if t.entered == 0 {
            t.idle += clock().delta_as_nanos(t.last, now);
            t.last = now;
        }
        t.entered += 1;
    });
}

/// Leaving a span (busy/idle time only): the time since it was first entered was busy.
pub(crate) fn on_exit<S>(id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    with_busy_idle(id, ctx, |t, now| {
        t.entered = t.entered.saturating_sub(1);
        if t.entered == 0 {
            t.busy += clock().delta_as_nanos(t.last, now);
            t.last = now;
        }
    });
}

/// Runs `f` on the busy/idle times of span `id`, if it keeps them, with the clock's reading.
#[inline]
fn with_busy_idle<S>(id: &Id, ctx: &Context<'_, S>, f: impl FnOnce(&mut BusyIdle, u64))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    let now = clock().raw();
    let mut extensions = span.extensions_mut();
    if let Some(t) = extensions.get_mut::<SpanData>().and_then(|d| d.busy_idle.as_mut()) {
        f(t, now);
    }
}

/// A span closed: record its duration.
pub(crate) fn on_close<S>(plans: &Plans, ts: &mut ThreadState, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    // Read in place, not removed: the registry clears the span's extensions once every layer
    // has seen the close, and moving the data out would copy it for nothing. Nothing below
    // takes this span's extensions lock (no user code runs here).
    let extensions = span.extensions();
    let Some(data) = extensions.get::<SpanData>() else {
        return;
    };
    let end = clock().raw();
    let meta = span.metadata();
    let epoch = ts.epoch();
    let Plan::Span(plan) = ts.plans.get(meta, plans) else {
        return;
    };
    let series = &mut ts.series;
    let tags_hash = plan.name_tag.wrapping_add(data.tags_hash());
    let nanos = clock().delta_as_nanos(data.start, end);
    record_ms(plans, series, epoch, &plan.duration, tags_hash, meta.name(), data, nanos);
    if plan.request_session {
        session::record_request(plans, series, epoch, data.errored);
    }
    trace::finish(&plans.shared, data, meta, end);
    if let (Some((busy, idle)), Some(mut t)) = (&plan.busy_idle, data.busy_idle) {
        if t.entered == 0 {
            t.idle += clock().delta_as_nanos(t.last, end);
        } else {
            t.busy += clock().delta_as_nanos(t.last, end);
        }
        record_ms(plans, series, epoch, busy, tags_hash, meta.name(), data, t.busy);
        record_ms(plans, series, epoch, idle, tags_hash, meta.name(), data, t.idle);
    }
}

#[allow(clippy::too_many_arguments)]
fn record_ms(
    plans: &Plans,
    series: &mut Series,
    epoch: u64,
    metric: &Arc<MetricDesc>,
    tags_hash: u64,
    name: &'static str,
    data: &SpanData,
    nanos: u64,
) {
    let shared = &plans.shared;
    let tags = || span_tags(plans, name, data);
    series.with_cell(shared, epoch, series_hash(metric.hash, tags_hash), metric, tags, |cell| {
        if cell.entry().is_overflow {
            Counters::bump(&shared.counters.overflowed, 1);
        }
        cell.record(Number::Float(nanos as f64 / 1e6));
    });
}

/// The owned tags of a span metric: `span:<name>` and the configured span tags.
fn span_tags(plans: &Plans, name: &'static str, data: &SpanData) -> SeriesTags {
    let mut tags = SeriesTags::new();
    tags.push(Tag::new(SPAN_TAG, name));
    for tag in &data.tags {
        if let Some(key) = plans.span_tag_keys.get(usize::from(tag.index)) {
            if *key.key != *SPAN_TAG {
                tags.push(Tag::with_key(&key.key, &tag.value));
            }
        }
    }
    tags
}

/// The configured span tags of an event's enclosing span, leaving out the keys in `shadowed`:
/// their summed hash, and their owned form when `owned` is given.
pub(crate) fn inherited_tags<S>(
    plans: &Plans,
    shadowed: u64,
    event: &tracing_core::Event<'_>,
    ctx: &Context<'_, S>,
    mut owned: Option<&mut SeriesTags>,
) -> u64
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.event_span(event) else {
        return 0;
    };
    let extensions = span.extensions();
    let Some(data) = extensions.get::<SpanData>() else {
        return 0;
    };
    let mut hash = 0u64;
    for tag in data.tags.iter().filter(|t| shadowed & (1u64 << t.index) == 0) {
        hash = hash.wrapping_add(tag.hash);
        if let (Some(out), Some(key)) =
            (owned.as_deref_mut(), plans.span_tag_keys.get(usize::from(tag.index)))
        {
            out.push(Tag::with_key(&key.key, &tag.value));
        }
    }
    hash
}
