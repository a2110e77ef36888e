//! The per-layer filter: which callsites the layer sees.
//!
//! The filter tells tracing, once per callsite, whether the layer wants it. A callsite the layer
//! does not want costs nothing when no other layer wants it either, and never disables it for
//! the layers that do (the layer's own `register_callsite` never returns `Interest::never()`).

use std::sync::Arc;

use tracing_core::subscriber::Interest;
use tracing_core::{LevelFilter, Metadata};
use tracing_subscriber::layer::{Context, Filter};

use super::local::with_thread;
use super::plan::{Plan, Plans};

/// Selects the spans and events the layer records.
#[derive(Debug, Clone)]
pub(crate) struct CallsiteFilter {
    plans: Arc<Plans>,
}

impl CallsiteFilter {
    pub(crate) fn new(plans: Arc<Plans>) -> Self {
        CallsiteFilter { plans }
    }
}

impl<S> Filter<S> for CallsiteFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        let config = &self.plans.shared.config;
        if meta.is_span() {
            if config.span_level < *meta.level() {
                return false;
            }
            if config.span_filter.is_none() {
                return true;
            }
        } else if self.plans.level_interests(meta.level()) {
            return true;
        }
        // Below the error and breadcrumb levels only metric events matter; spans with a span
        // filter: the cached verdict. Both come from the callsite's plan.
        if let Some(verdict) = self.plans.verdict(meta) {
            return verdict;
        }
        with_thread(&self.plans.shared, |ts| match ts.plans.get(meta, &self.plans) {
            Plan::Event(plan) => plan.has_metrics(),
            Plan::Span(_) => true,
            Plan::Ignored => false,
        })
        .unwrap_or(false)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.plans.get(meta).is_interesting() {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Metric events count at any level.
        None
    }
}
