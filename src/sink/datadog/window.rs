//! The time window the intake accepts, checked before sending (and again before a retry).
//!
//! Metric points may be at most one hour old and ten minutes ahead of Datadog's clock; the
//! sink keeps points from the last 55 minutes (a margin for clock skew and slow retries) up to
//! ten minutes ahead. Events may be 18 hours old; the sink keeps the last 17.

use std::time::{SystemTime, UNIX_EPOCH};

use super::losses::{DropCause, Losses};
use crate::stats::Carried;

/// Oldest metric point kept, in seconds before now.
pub(crate) const METRIC_MAX_AGE: i64 = 55 * 60;
/// Oldest event kept, in seconds before now.
pub(crate) const EVENT_MAX_AGE: i64 = 17 * 3600;
/// Furthest a point or event may be in the future, in seconds.
pub(crate) const MAX_AHEAD: i64 = 10 * 60;

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Where a timestamp falls relative to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Inside: send it.
    Inside,
    /// Too old.
    Stale,
    /// Too far ahead.
    Future,
}

/// The accepted range of timestamps at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    oldest: i64,
    newest: i64,
}

impl Window {
    /// The window for metric points at `now`.
    pub(crate) fn metrics(now: SystemTime) -> Self {
        let now = unix(now);
        Window { oldest: now.saturating_sub(METRIC_MAX_AGE), newest: now.saturating_add(MAX_AHEAD) }
    }

    /// The window for events at `now`.
    pub(crate) fn events(now: SystemTime) -> Self {
        let now = unix(now);
        Window { oldest: now.saturating_sub(EVENT_MAX_AGE), newest: now.saturating_add(MAX_AHEAD) }
    }

    /// Where `timestamp` (Unix seconds) falls.
    pub(crate) fn fit(&self, timestamp: i64) -> Fit {
        if timestamp < self.oldest {
            Fit::Stale
        } else if timestamp > self.newest {
            Fit::Future
        } else {
            Fit::Inside
        }
    }

    /// Whether something stamped `timestamp` (Unix seconds) fits; if not, books its `items`
    /// items (and the metric point `carried`, if any) as `stale` or `future`.
    pub(crate) fn admit(
        &self,
        timestamp: i64,
        items: u64,
        carried: Option<&Carried>,
        losses: &Losses,
    ) -> bool {
        let cause = match self.fit(timestamp) {
            Fit::Inside => return true,
            Fit::Stale => DropCause::Stale,
            Fit::Future => DropCause::Future,
        };
        losses.record_items(cause, items, carried);
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn metric_window_is_55_minutes_back_and_10_ahead() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let window = Window::metrics(now);
        let at = |offset: i64| window.fit(1_700_000_000 + offset);
        assert_eq!(at(0), Fit::Inside);
        assert_eq!(at(-55 * 60), Fit::Inside);
        assert_eq!(at(-55 * 60 - 1), Fit::Stale);
        assert_eq!(at(600), Fit::Inside);
        assert_eq!(at(601), Fit::Future);
    }

    #[test]
    fn event_window_is_17_hours_back() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let window = Window::events(now);
        assert_eq!(window.fit(1_700_000_000 - 17 * 3600), Fit::Inside);
        assert_eq!(window.fit(1_700_000_000 - 17 * 3600 - 1), Fit::Stale);
    }

    #[test]
    fn unix_handles_times_before_the_epoch() {
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(5)), -5);
        assert_eq!(unix(UNIX_EPOCH + Duration::from_millis(1500)), 1);
    }
}
