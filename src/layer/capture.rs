//! Error capture: a small record taken on the emitting thread, queued for the flusher.
//!
//! The emitting thread formats what only it can see (the message, the field values, the error
//! chain, the enclosing spans' data) and copies its breadcrumbs. Everything else, encoding and
//! delivery, happens on the flusher and sink threads.

use std::backtrace::Backtrace;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::SystemTime;

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::breadcrumbs::Breadcrumbs;
use super::plan::{is_sensitive, EventPlan, FieldRole, Plans};
use super::span_data::SpanData;
use crate::batch::{ErrorEvent, FieldValue, Fields, SpanId, SpanRecord, Tag, TraceId};
use crate::fields;
use crate::scrub::FILTERED;
use crate::stats::DropReason;

/// The field that sets an error's grouping fingerprint.
pub(crate) const FINGERPRINT_FIELD: &str = "fingerprint";

/// Longest error chain kept.
const MAX_CHAIN: usize = 32;

/// Captures an error event, subject to its callsite's rate limit.
pub(crate) fn capture<S>(
    plans: &Plans,
    plan: &EventPlan,
    breadcrumbs: &Breadcrumbs,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let shared = &plans.shared;
    let Some(limiter) = &plan.error else { return };
    if !limiter.try_acquire() {
        shared.counters.dropped(DropReason::RateLimited, 1);
        return;
    }
    let mut visitor = CaptureVisitor { plan, capture: Capture::default() };
    event.record(&mut visitor);
    let Capture { message, fields, error_chain, error_types, mut tags, fingerprint } =
        visitor.capture;

    let mut spans = Vec::new();
    let mut trace_id = None;
    if let Some(scope) = ctx.event_scope(event) {
        for (depth, span) in scope.enumerate() {
            if depth == 0 {
                // The span the error happened in ends with an error status (and an errored
                // request session).
                if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
                    data.errored = true;
                }
            }
            let extensions = span.extensions();
            let Some(data) = extensions.get::<SpanData>() else {
                continue;
            };
            for tag in &data.tags {
                let shadowed = plan.shadowed_span_tags & (1u64 << tag.index) != 0;
                if let Some(key) = plans.span_tag_keys.get(usize::from(tag.index)) {
                    if !shadowed && !tags.iter().any(|t: &Tag| t.key() == &*key.key) {
                        tags.push(Tag::with_key(&key.key, &tag.value));
                    }
                }
            }
            spans.push(SpanRecord {
                name: span.name(),
                target: span.metadata().target(),
                span_id: SpanId(data.span_id),
                fields: data.fields.to_vec(),
            });
            // The scope ends at the root: its trace id is the trace's.
            trace_id = Some(TraceId(data.trace_id));
        }
    }
    tags.sort_by(|a, b| a.key().cmp(b.key()));
    let span_id = spans.first().map(|s| s.span_id);
    let stacktrace = shared.config.attach_stacktrace.then(|| Arc::new(Backtrace::force_capture()));
    shared.submit_error(ErrorEvent {
        timestamp: SystemTime::now(),
        metadata: event.metadata(),
        message,
        fields,
        error_chain,
        error_types,
        spans,
        trace_id,
        span_id,
        breadcrumbs: breadcrumbs.snapshot(),
        tags,
        fingerprint,
        handled: true,
        stacktrace,
        thread: std::thread::current().name().map(str::to_owned),
    });
}

#[derive(Default)]
struct Capture {
    message: Option<String>,
    fields: Fields,
    error_chain: Vec<String>,
    error_types: Vec<String>,
    tags: SmallVec<[Tag; 2]>,
    fingerprint: Option<String>,
}

/// The type an error's `Debug` form starts with (`Custom { .. }` → `Custom`), or `Error`.
fn debug_type(error: &(dyn Error + 'static)) -> String {
    let debug = format!("{error:?}");
    let name: String =
        debug.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':')).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        "Error".to_owned()
    } else {
        name
    }
}

struct CaptureVisitor<'a> {
    plan: &'a EventPlan,
    capture: Capture,
}

impl CaptureVisitor<'_> {
    fn value(&mut self, field: &Field, value: FieldValue) {
        let name = field.name();
        let value = if is_sensitive(self.plan.sensitive, field.index()) {
            FieldValue::Str(FILTERED.to_owned())
        } else {
            value
        };
        match self.plan.roles.get(field.index()) {
            Some(FieldRole::Metric(_)) => {}
            Some(FieldRole::Message) => self.capture.message = Some(value.into_string()),
            Some(FieldRole::Error) => {
                self.capture.error_chain.push(value.into_string());
                self.capture.error_types.push("Error".to_owned());
            }
            _ if name == FINGERPRINT_FIELD => self.capture.fingerprint = Some(value.into_string()),
            Some(FieldRole::Tag(key) | FieldRole::FilteredTag(key))
                if name.starts_with(fields::TAGS_PREFIX) =>
            {
                let text = value.to_string();
                let (text, _) = fields::truncate_tag_value(&text);
                self.capture.tags.push(Tag::with_key(&key.key, text));
            }
            _ => self.capture.fields.push((name, value)),
        }
    }
}

impl Visit for CaptureVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, FieldValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.value(field, FieldValue::I128(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.value(field, FieldValue::U128(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, FieldValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, FieldValue::Str(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if !matches!(self.plan.roles.get(field.index()), Some(FieldRole::Error)) {
            self.value(field, FieldValue::Text(value.to_string()));
            return;
        }
        let capture = &mut self.capture;
        let mut next: Option<&(dyn Error + 'static)> = Some(value);
        while let Some(error) = next {
            if capture.error_chain.len() >= MAX_CHAIN {
                break;
            }
            capture.error_chain.push(error.to_string());
            capture.error_types.push(debug_type(error));
            next = error.source();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // One allocation for the usual message or error text, instead of a few as it grows.
        let mut text = String::with_capacity(64);
        let _ = write!(text, "{value:?}");
        self.value(field, FieldValue::Text(text));
    }
}
