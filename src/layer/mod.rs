//! The tracing layer: turns spans and events into metric observations and captured errors.
//!
//! [`TallyLayer`] is a per-layer-filtered layer. Its filter ([`filter`]) classifies each callsite
//! once ([`plan`]); the recorder then does per-event work only for callsites that matter:
//!
//! * metric events: validate values, hash tags ([`visit`]), add into this thread's cell;
//! * spans: read the clock at open and close, record the duration ([`span`]);
//! * error events: capture a record and queue it ([`capture`]);
//! * other events at the breadcrumb level: keep them in the thread's ring ([`breadcrumbs`]).
//!
//! Every callback runs inside `catch_unwind` and the thread-local re-entrancy guard ([`local`]),
//! so a panicking `Debug` implementation or an event emitted from inside the layer never reaches
//! the application.

mod breadcrumbs;
mod capture;
mod filter;
mod guard;
pub(crate) mod local;
pub(crate) mod plan;
pub(crate) mod session;
mod span;
mod span_data;
pub(crate) mod trace;
mod visit;

use std::any::TypeId;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use self::filter::CallsiteFilter;
use self::local::{with_thread, Series, ThreadState};
use self::plan::{EventPlan, Plan, Plans};
use self::visit::{MetricVisitor, Observation, TagCollector};
use crate::aggregate::hash::series_hash;
use crate::pipeline::Shared;
use crate::stats::Counters;

/// The tracing-tally layer. Build it with [`Tally::builder`](crate::Tally::builder).
///
/// It composes with any other layer: it filters per layer, so it never hides an event from the
/// layers beside it, and events it has no use for cost it nothing.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (tally, guard) = tracing_tally::Tally::builder().manual().build()?;
/// let subscriber = tracing_subscriber::registry().with(tally);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(monotonic_counter.requests = 1, route = "/users");
/// });
/// assert!(guard.flush(std::time::Duration::from_secs(1)));
/// # Ok::<(), tracing_tally::BuildError>(())
/// ```
pub struct TallyLayer<S> {
    inner: Filtered<Recorder, CallsiteFilter, S>,
    /// Whether spans' enter and exit matter (busy/idle time). When they do not, the layer does
    /// not pass them to the filtered recorder at all: the per-layer filter would look the span up
    /// in the registry on each, only for the recorder to ignore it.
    busy_idle: bool,
}

impl<S> std::fmt::Debug for TallyLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TallyLayer").finish_non_exhaustive()
    }
}

impl<S> TallyLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let busy_idle = shared.config.busy_idle;
        let plans = Arc::new(Plans::new(shared));
        let recorder = Recorder { plans: plans.clone() };
        TallyLayer { inner: recorder.with_filter(CallsiteFilter::new(plans)), busy_idle }
    }
}

impl<S> Layer<S> for TallyLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.busy_idle {
            self.inner.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.busy_idle {
            self.inner.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // tracing-subscriber finds per-layer filters by downcasting through the layer stack; without
    // this, `Layered` would not see the filter inside and could not combine interests correctly.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: `downcast_raw` may return a pointer to `Self` or to a value owned by `self`
        // whose type has the requested `TypeId`. We forward to the one field we own, which
        // upholds that contract for itself; the pointer it returns points into `self.inner`,
        // which lives as long as `self`. Exercised by `tests/layer/composition.rs`.
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// The inner layer that does the recording (behind the per-layer filter).
pub(crate) struct Recorder {
    plans: Arc<Plans>,
}

impl Recorder {
    /// Runs `f` with this thread's state (ignoring re-entrant calls, counted).
    ///
    /// Application code runs inside the layer only where it formats a field (`Debug`, `Display`,
    /// `Error`); those calls are guarded one by one ([`guard`]), so the hot path itself pays for
    /// no `catch_unwind`.
    #[inline]
    fn run(&self, f: impl FnOnce(&mut ThreadState)) {
        let _ = with_thread(&self.plans.shared, f);
    }

    fn event<S>(&self, ts: &mut ThreadState, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let plans = &*self.plans;
        let epoch = ts.epoch();
        let Plan::Event(plan) = ts.plans.get(event.metadata(), plans) else {
            return;
        };
        plan.report_invalid_names(&plans.shared.counters);
        if plan.has_metrics() {
            record_metrics(plans, plan, &mut ts.series, epoch, event, ctx);
        }
        // Error capture and breadcrumbs format whole events (messages, error chains): guard
        // them as a whole.
        let counters = &plans.shared.counters;
        if plan.error.is_some() {
            let breadcrumbs = &ts.breadcrumbs;
            guard::user_code(counters, || capture::capture(plans, plan, breadcrumbs, event, ctx));
        } else if plan.breadcrumb {
            let breadcrumbs = &mut ts.breadcrumbs;
            guard::user_code(counters, || breadcrumbs.push(event, plan.sensitive));
        }
    }
}

/// The hot path: one metric event into this thread's cells.
#[inline]
fn record_metrics<S>(
    plans: &Plans,
    plan: &EventPlan,
    series: &mut Series,
    epoch: u64,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let shared = &plans.shared;
    let mut visitor = MetricVisitor::new(plan, &shared.counters);
    event.record(&mut visitor);
    if visitor.panicked {
        // A field's `Debug`/`Display` panicked: the series is unknown, drop the event.
        shared.counters.dropped(crate::stats::DropReason::Panic, 1);
        return;
    }
    if visitor.observations.is_empty() {
        return;
    }
    let inherit = !plans.span_tag_keys.is_empty();
    let mut tags_hash = visitor.tags_hash;
    if inherit {
        let inherited = span::inherited_tags(plans, plan.shadowed_span_tags, event, ctx, None);
        tags_hash = tags_hash.wrapping_add(inherited);
    }
    for &(index, observation) in &visitor.observations {
        let Some(metric) = plan.metrics.get(usize::from(index)) else {
            continue;
        };
        let tags = || {
            let mut collector = TagCollector::new(plan);
            event.record(&mut collector);
            if collector.truncated {
                Counters::bump(&shared.counters.truncated_tags, 1);
            }
            let mut tags = collector.tags;
            if inherit {
                span::inherited_tags(plans, plan.shadowed_span_tags, event, ctx, Some(&mut tags));
            }
            tags
        };
        let hash = series_hash(metric.hash, tags_hash);
        series.with_cell(shared, epoch, hash, metric, tags, |cell| {
            if cell.entry().is_overflow {
                Counters::bump(&shared.counters.overflowed, 1);
            }
            match observation {
                Observation::Number(number) => cell.record(number),
                Observation::Member(member) => cell.insert_member(member),
            }
        });
    }
}

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.run(|ts| span::on_new_span(&self.plans, ts, attrs, id, &ctx));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.run(|ts| span::on_record(&self.plans, ts, id, values, &ctx));
    }

    // Called only with busy/idle time on (see `TallyLayer::busy_idle`).
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.run(|_| span::on_enter(id, &ctx));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.run(|_| span::on_exit(id, &ctx));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.run(|ts| span::on_close(&self.plans, ts, &id, &ctx));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.run(|ts| self.event(ts, event, &ctx));
    }
}
