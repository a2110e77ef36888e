//! Release-health sessions as metrics: the `sessions` counter, tagged `mode` and `status`.
//!
//! Request sessions are spans with a configured name: each one that closes adds 1 to
//! `sessions{mode:request,status:exited|errored}` through the ordinary aggregation path. The
//! process session's end is added by the flusher (`mode:application`). Sinks with a notion of
//! sessions (Sentry) turn these counters back into session aggregates; the others see counters.

use std::sync::Arc;

use super::local::Series;
use super::plan::Plans;
use crate::aggregate::hash::{hash_str, hash_value_text, series_hash, tag_hash};
use crate::aggregate::series::{MetricDesc, SeriesEntry, SeriesTags};
use crate::aggregate::tag::Tag;
use crate::aggregate::value::Number;
use crate::batch::session_counter::{MODE_TAG, SESSIONS_METRIC, STATUS_TAG};
use crate::fields::MetricKind;
use crate::pipeline::Shared;

/// Whether a session is the whole process or one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionMode {
    Application,
    Request,
}

impl SessionMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SessionMode::Application => "application",
            SessionMode::Request => "request",
        }
    }
}

fn tags(mode: SessionMode, status: &str) -> (u64, SeriesTags) {
    let hash = tag_hash(hash_str(MODE_TAG), hash_value_text(mode.as_str().as_bytes()))
        .wrapping_add(tag_hash(hash_str(STATUS_TAG), hash_value_text(status.as_bytes())));
    (hash, SeriesTags::from_iter([Tag::new(MODE_TAG, mode.as_str()), Tag::new(STATUS_TAG, status)]))
}

/// The series of the session counter with this mode and status (outside the series limits).
pub(crate) fn session_entry(shared: &Shared, mode: SessionMode, status: &str) -> Arc<SeriesEntry> {
    let metric = sessions_metric(shared);
    let (tags_hash, tags) = tags(mode, status);
    Arc::new(SeriesEntry::new(series_hash(metric.hash, tags_hash), metric, tags, false, 0))
}

/// Counts one finished request session.
pub(crate) fn record_request(plans: &Plans, series: &mut Series, epoch: u64, errored: bool) {
    let shared = &plans.shared;
    let metric = &plans.sessions_metric;
    let status = if errored { "errored" } else { "exited" };
    let (tags_hash, _) = tags(SessionMode::Request, status);
    let owned = || tags(SessionMode::Request, status).1;
    series.with_cell(shared, epoch, series_hash(metric.hash, tags_hash), metric, owned, |cell| {
        cell.record(Number::Int(1));
    });
}

/// The session counter's metric (also held by the plans, for the hot path).
fn sessions_metric(shared: &Shared) -> Arc<MetricDesc> {
    shared.registry.metric(SESSIONS_METRIC, MetricKind::Counter, true, None)
}
