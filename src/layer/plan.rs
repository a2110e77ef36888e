//! Callsite plans: what each field of a callsite means, decided once per callsite.
//!
//! tracing gives every event and span a static callsite with a fixed list of fields. The layer
//! classifies that list the first time it sees the callsite (which field is which metric, which
//! are tags, whether the callsite captures errors or breadcrumbs) and caches the result, so the
//! hot path never parses a field name.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use smallvec::SmallVec;
use tracing_core::{Level, LevelFilter, Metadata};

use crate::aggregate::hash::{hash_str, hash_value_text, tag_hash, BuildPassThrough};
use crate::aggregate::series::MetricDesc;
use crate::aggregate::tag::TagKeyText;
use crate::batch::session_counter::SESSIONS_METRIC;
use crate::batch::MetricKind;
use crate::fields::{self, FieldName, SpanField, SPAN_TAG};
use crate::pipeline::{clock, Shared};
use crate::scrub::{Scrubber, FILTERED};
use crate::stats::{Counters, DropReason};

/// The key of a callsite in plan tables: the address of its static metadata.
#[inline]
pub(crate) fn callsite_key(meta: &Metadata<'_>) -> usize {
    meta as *const Metadata<'_> as usize
}

/// A tag key with its precomputed hash.
#[derive(Debug, Clone)]
pub(crate) struct TagKey {
    pub(crate) key: TagKeyText,
    pub(crate) hash: u64,
}

impl TagKey {
    pub(crate) fn new(key: &str) -> Self {
        TagKey { key: TagKeyText::new(key), hash: hash_str(key) }
    }
}

/// What the layer does with one field of an event.
#[derive(Debug, Clone)]
pub(crate) enum FieldRole {
    /// The n-th metric of the plan.
    Metric(u8),
    /// A tag.
    Tag(TagKey),
    /// A tag whose values are filtered: it always has the value `[Filtered]` (see
    /// [`Builder::send_default_pii`](crate::Builder::send_default_pii)).
    FilteredTag(TagKey),
    /// The message.
    Message,
    /// The error.
    Error,
    /// Nothing (an invalid metric name, or a tag shadowed by a later field).
    Ignored,
}

impl FieldRole {
    /// The tag key, for a tag (filtered or not).
    pub(crate) fn tag_key(&self) -> Option<&TagKey> {
        match self {
            FieldRole::Tag(key) | FieldRole::FilteredTag(key) => Some(key),
            _ => None,
        }
    }
}

/// Bit `i` set when field `i` of `meta` is sensitive: its name, or its tag key, is on the
/// scrubber's lists. (tracing callsites have at most 32 fields.)
fn sensitive_fields(meta: &Metadata<'_>, scrubber: &Scrubber) -> u64 {
    let mut bits = 0;
    for (i, field) in meta.fields().iter().enumerate().take(64) {
        let name = field.name();
        let key = name.strip_prefix(fields::TAGS_PREFIX).unwrap_or(name);
        if scrubber.is_sensitive(name) || scrubber.is_sensitive(key) {
            bits |= 1 << i;
        }
    }
    bits
}

/// Whether field `index` is set in the `sensitive` bits.
#[inline]
pub(crate) fn is_sensitive(sensitive: u64, index: usize) -> bool {
    index < 64 && sensitive & (1 << index) != 0
}

/// The plan of an event callsite.
#[derive(Debug)]
pub(crate) struct EventPlan {
    /// One role per field, by field index.
    pub(crate) roles: Box<[FieldRole]>,
    /// The metrics the event records, in field order.
    pub(crate) metrics: SmallVec<[Arc<MetricDesc>; 1]>,
    /// Set when the event captures an error: the callsite's rate limiter.
    pub(crate) error: Option<RateLimiter>,
    /// Whether the event is kept as a breadcrumb.
    pub(crate) breadcrumb: bool,
    /// Configured span tags that the event's own fields override (bit `i` for key `i`).
    pub(crate) shadowed_span_tags: u64,
    /// Fields whose values are filtered (bit `i` for field `i`).
    pub(crate) sensitive: u64,
    /// The hash contribution of the filtered tags, whose value is always `[Filtered]`.
    pub(crate) filtered_tags_hash: u64,
    /// Metric fields whose names broke the rules (sanitized or ignored).
    invalid_names: u64,
    /// Whether `invalid_names` has been counted for this pipeline.
    reported: AtomicBool,
}

impl EventPlan {
    #[inline]
    pub(crate) fn has_metrics(&self) -> bool {
        !self.metrics.is_empty()
    }

    /// Counts the callsite's invalid metric names, once, when the pipeline first sees an event
    /// from it. (Plans are also built for callsites registered but never used here.)
    #[inline]
    pub(crate) fn report_invalid_names(&self, counters: &Counters) {
        if self.invalid_names > 0 && !self.reported.swap(true, Ordering::Relaxed) {
            counters.dropped(DropReason::InvalidName, self.invalid_names);
        }
    }
}

/// The plan of a span callsite.
#[derive(Debug)]
pub(crate) struct SpanPlan {
    /// The span-duration distribution.
    pub(crate) duration: Arc<MetricDesc>,
    /// `span.busy` and `span.idle`, when busy/idle time is on.
    pub(crate) busy_idle: Option<(Arc<MetricDesc>, Arc<MetricDesc>)>,
    /// The `span:<name>` tag's hash contribution.
    pub(crate) name_tag: u64,
    /// For each field: the index of the configured span tag it provides, if any.
    pub(crate) tag_fields: Box<[Option<u8>]>,
    /// For each field: its meaning, when it has one (`sentry.op`, `otel.name`, `baggage`...).
    pub(crate) specials: Box<[Option<SpanField>]>,
    /// Whether the span is a request session.
    pub(crate) request_session: bool,
    /// Fields whose values are filtered (bit `i` for field `i`).
    pub(crate) sensitive: u64,
}

/// What a callsite means to the layer.
#[derive(Debug)]
pub(crate) enum Plan {
    Event(EventPlan),
    Span(SpanPlan),
    /// Nothing: the layer does not look at this callsite.
    Ignored,
}

impl Plan {
    /// Whether the layer wants to see the callsite at all.
    #[inline]
    pub(crate) fn is_interesting(&self) -> bool {
        match self {
            Plan::Event(e) => e.has_metrics() || e.error.is_some() || e.breadcrumb,
            Plan::Span(_) => true,
            Plan::Ignored => false,
        }
    }
}

const VERDICTS: usize = 1024;

/// Whether each callsite interests the layer, readable with one atomic load: the filter asks
/// for every event that reaches it, so this must be cheaper than the plan lookup.
///
/// A slot holds a callsite's address (metadata is 8-byte aligned) with bit 1 set and bit 0 the
/// verdict; a collision just sends the filter to the plan table.
struct Verdicts {
    slots: Box<[AtomicUsize; VERDICTS]>,
}

impl Verdicts {
    fn new() -> Self {
        Verdicts { slots: Box::new([const { AtomicUsize::new(0) }; VERDICTS]) }
    }

    #[inline]
    fn slot(&self, key: usize) -> &AtomicUsize {
        &self.slots[((key >> 3) ^ (key >> 13)) % VERDICTS]
    }

    #[inline]
    fn get(&self, key: usize) -> Option<bool> {
        let value = self.slot(key).load(Ordering::Relaxed);
        (value & !0b11 == key).then_some(value & 1 == 1)
    }

    fn set(&self, key: usize, interesting: bool) {
        self.slot(key).store(key | 0b10 | usize::from(interesting), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Verdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdicts").finish_non_exhaustive()
    }
}

/// Every plan of a pipeline, built on first sight of each callsite.
#[derive(Debug)]
pub(crate) struct Plans {
    pub(crate) shared: Arc<Shared>,
    table: RwLock<HashMap<usize, Arc<Plan>, BuildPassThrough>>,
    verdicts: Verdicts,
    /// The configured span tags, in configuration order (at most 64).
    pub(crate) span_tag_keys: Box<[TagKey]>,
    /// The `sessions` counter (request sessions).
    pub(crate) sessions_metric: Arc<MetricDesc>,
    event_level: LevelFilter,
}

impl Plans {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let span_tag_keys = shared
            .config
            .span_tags
            .iter()
            .take(64)
            .map(|k| TagKey::new(&fields::sanitize_tag_key(k)))
            .collect();
        let event_level = shared.config.event_level();
        let sessions_metric =
            shared.registry.metric(SESSIONS_METRIC, MetricKind::Counter, true, None);
        Plans {
            shared,
            table: RwLock::default(),
            verdicts: Verdicts::new(),
            span_tag_keys,
            sessions_metric,
            event_level,
        }
    }

    /// The plan of `meta`, built now if this is the first time the callsite is seen.
    pub(crate) fn get(&self, meta: &Metadata<'_>) -> Arc<Plan> {
        let key = callsite_key(meta);
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(plan) = table.get(&key) {
            return plan.clone();
        }
        drop(table);
        let plan =
            Arc::new(if meta.is_span() { self.build_span(meta) } else { self.build_event(meta) });
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let plan = match table.entry(key) {
            Entry::Occupied(existing) => existing.get().clone(),
            Entry::Vacant(slot) => slot.insert(plan).clone(),
        };
        self.verdicts.set(key, plan.is_interesting());
        plan
    }

    /// Whether the callsite interests the layer, if known without building its plan.
    #[inline]
    pub(crate) fn verdict(&self, meta: &Metadata<'_>) -> Option<bool> {
        self.verdicts.get(callsite_key(meta))
    }

    fn span_passes(&self, meta: &Metadata<'_>) -> bool {
        let config = &self.shared.config;
        config.span_level >= *meta.level() && config.span_filter.as_ref().is_none_or(|f| f(meta))
    }

    fn build_span(&self, meta: &Metadata<'_>) -> Plan {
        if !self.span_passes(meta) {
            return Plan::Ignored;
        }
        let registry = &self.shared.registry;
        let config = &self.shared.config;
        let (name, _) = fields::sanitize_name(&config.span_metric);
        let duration = registry.metric(&name, MetricKind::Distribution, false, Some("millisecond"));
        let busy_idle = config.busy_idle.then(|| {
            let busy =
                registry.metric("span.busy", MetricKind::Distribution, false, Some("millisecond"));
            let idle =
                registry.metric("span.idle", MetricKind::Distribution, false, Some("millisecond"));
            (busy, idle)
        });
        let tag_fields = meta
            .fields()
            .iter()
            .map(|field| {
                let key = fields::sanitize_tag_key(
                    field.name().strip_prefix(fields::TAGS_PREFIX).unwrap_or(field.name()),
                );
                self.span_tag_keys.iter().position(|k| *k.key == *key).map(|i| i as u8)
            })
            .collect();
        let specials = meta.fields().iter().map(|field| fields::span_field(field.name())).collect();
        let request_session = config.request_sessions.iter().any(|n| n == meta.name());
        Plan::Span(SpanPlan {
            sensitive: sensitive_fields(meta, &config.scrubber),
            specials,
            request_session,
            duration,
            busy_idle,
            name_tag: tag_hash(hash_str(SPAN_TAG), hash_value_text(meta.name().as_bytes())),
            tag_fields,
        })
    }

    fn build_event(&self, meta: &Metadata<'_>) -> Plan {
        let config = &self.shared.config;
        let registry = &self.shared.registry;
        let sensitive = sensitive_fields(meta, &config.scrubber);
        let mut roles = Vec::with_capacity(meta.fields().len());
        let mut invalid_names = 0;
        let mut metrics = SmallVec::new();
        for (index, field) in meta.fields().iter().enumerate() {
            let role = match fields::parse(field.name()) {
                FieldName::Metric(m) if metrics.len() < usize::from(u8::MAX) => {
                    invalid_names += u64::from(m.sanitized);
                    metrics.push(registry.metric(&m.name, m.kind, m.monotonic, m.unit.as_deref()));
                    FieldRole::Metric((metrics.len() - 1) as u8)
                }
                FieldName::Metric(_) | FieldName::InvalidMetric => {
                    invalid_names += 1;
                    FieldRole::Ignored
                }
                FieldName::Tag(key) if is_sensitive(sensitive, index) => {
                    FieldRole::FilteredTag(TagKey::new(&key))
                }
                FieldName::Tag(key) => FieldRole::Tag(TagKey::new(&key)),
                FieldName::Message => FieldRole::Message,
                FieldName::Error => FieldRole::Error,
            };
            roles.push(role);
        }
        // When two fields name the same tag, the last one wins.
        for i in 0..roles.len() {
            let Some(key) = roles[i].tag_key() else {
                continue;
            };
            let key = key.key.clone();
            if roles[i + 1..].iter().any(|r| r.tag_key().is_some_and(|k| k.key == key)) {
                roles[i] = FieldRole::Ignored;
            }
        }
        let mut shadowed_span_tags = 0u64;
        for (i, span_key) in self.span_tag_keys.iter().enumerate() {
            if roles.iter().any(|r| r.tag_key().is_some_and(|k| k.key == span_key.key)) {
                shadowed_span_tags |= 1 << i;
            }
        }
        let filtered = hash_value_text(FILTERED.as_bytes());
        let filtered_tags_hash = roles
            .iter()
            .filter_map(|r| match r {
                FieldRole::FilteredTag(key) => Some(tag_hash(key.hash, filtered)),
                _ => None,
            })
            .fold(0u64, u64::wrapping_add);
        let has_metrics = !metrics.is_empty();
        let level = *meta.level();
        let error = config
            .error_level
            .filter(|threshold| level <= *threshold)
            .map(|_| RateLimiter::new(config.error_rate, config.error_burst));
        let breadcrumb = !has_metrics
            && error.is_none()
            && config.breadcrumbs > 0
            && config.breadcrumb_level >= level;
        let plan = EventPlan {
            roles: roles.into_boxed_slice(),
            metrics,
            error,
            breadcrumb,
            shadowed_span_tags,
            sensitive,
            filtered_tags_hash,
            invalid_names,
            reported: AtomicBool::new(false),
        };
        if plan.has_metrics() || plan.error.is_some() || plan.breadcrumb {
            Plan::Event(plan)
        } else {
            Plan::Ignored
        }
    }

    /// Whether an event at `level` interests the layer regardless of its fields.
    #[inline]
    pub(crate) fn level_interests(&self, level: &Level) -> bool {
        self.event_level >= *level
    }
}

/// A lock-free token bucket (the generic cell rate algorithm): `rate` per second sustained,
/// bursts of up to `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Theoretical arrival time, in clock nanoseconds.
    tat: AtomicU64,
    emission_ns: u64,
    tolerance_ns: u64,
    base: u64,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let emission_ns = if rate == 0 { u64::MAX / 4 } else { 1_000_000_000 / u64::from(rate) };
        RateLimiter {
            tat: AtomicU64::new(0),
            emission_ns,
            tolerance_ns: emission_ns.saturating_mul(u64::from(burst.saturating_sub(1))),
            base: clock().raw(),
        }
    }

    /// Takes one token; `false` when the bucket is empty.
    pub(crate) fn try_acquire(&self) -> bool {
        let now = clock().delta_as_nanos(self.base, clock().raw());
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance_ns {
                return false;
            }
            let next = start.saturating_add(self.emission_ns);
            match self.tat.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(1, 5);
        let allowed = (0..20).filter(|_| limiter.try_acquire()).count();
        assert_eq!(allowed, 5);
        let none = RateLimiter::new(0, 1);
        assert!(none.try_acquire());
        assert!(!none.try_acquire());
    }
}
