//! Release-health sessions as metrics: the `sessions` counter, tagged `mode` and `status`.
//!
//! Request sessions are spans with a configured name: each one that closes adds 1 to
//! `sessions{mode:request,status:exited|errored}` through the ordinary aggregation path. The
//! process session's end is added by the flusher (`mode:application`); the series both use are
//! named in [`crate::pipeline`]. Sinks with a notion of sessions (Sentry) turn these counters back
//! into session aggregates; the others see counters.

use super::local::Series;
use super::plan::Plans;
use crate::aggregate::hash::series_hash;
use crate::aggregate::value::Number;
use crate::pipeline::{session_tags, SessionMode};

/// Counts one finished request session.
pub(crate) fn record_request(plans: &Plans, series: &mut Series, epoch: u64, errored: bool) {
    let shared = &plans.shared;
    let metric = &plans.sessions_metric;
    let status = if errored { "errored" } else { "exited" };
    let (tags_hash, _) = session_tags(SessionMode::Request, status);
    let owned = || session_tags(SessionMode::Request, status).1;
    series.with_cell(shared, epoch, series_hash(metric.hash, tags_hash), metric, owned, |cell| {
        cell.record(Number::Int(1));
    });
}
