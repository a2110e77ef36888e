//! Rate-limit state of one DSN: which data categories the server asked us to stop sending, and
//! until when.
//!
//! Rules (spec `sentry.md` §5.1 and §11.1 item 5):
//!
//! 1. `X-Sentry-Rate-Limits` is parsed on *every* response, whatever the status. It is a
//!    comma-separated list of `retry_after:categories:scope[:reason[:...]]` groups:
//!    `retry_after` is integer or float seconds, rounded up; `categories` is `;`-separated and
//!    empty means "all"; scope, reason and any further fields are ignored.
//! 2. Otherwise, on a 429, `Retry-After` (seconds, or an IMF-fixdate HTTP-date) applies to all
//!    categories.
//! 3. A 429 with neither header blocks all categories for 60 s.
//!
//! One deadline is kept per category plus one for "all", and overlapping limits keep the later
//! deadline (max-merge; the Python and Rust SDKs let the last one win). Unknown categories are
//! never mapped to a default, and a group naming only unknown categories is ignored. Any single
//! limit is capped at one day, so a bogus header cannot silence the sink forever.
//!
//! Decisions where the spec is silent:
//!
//! - Groups with at least `retry_after:categories` are accepted (the scope is optional, as in both
//!   SDKs); a group with no `:`, or with a `retry_after` that is not `digits[.digits]`, is
//!   malformed and skipped.
//! - If the `X-Sentry-Rate-Limits` header is present but *no* group in it is well-formed, a 429 is
//!   handled as if the header were absent (rule 2/3), so garbage never disables the back-off.
//! - `Retry-After` that is neither seconds nor a valid IMF-fixdate is treated as absent (so a 429
//!   falls back to 60 s). The obsolete RFC 850 and asctime date forms are not supported.
//! - `internal` (client reports) is only ever blocked by the "all" deadline (spec §4.2).

use std::time::{Duration, Instant, SystemTime};

/// Upper bound of any single rate limit: one day.
const MAX_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The back-off applied to a 429 that carries no usable header (spec §5.1 rule 3).
const DEFAULT_429_LIMIT: Duration = Duration::from_secs(60);

/// Number of [`Category`] variants (the length of [`Category::ALL`]).
pub(crate) const N_CATEGORIES: usize = 17;

/// A Sentry data category, the unit of rate limits and client reports (spec §5.1, §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Category {
    /// `default`: events that are not errors (e.g. message events).
    Default,
    /// `error`: error events.
    Error,
    /// `transaction`: transaction events.
    Transaction,
    /// `monitor`: cron monitor check-ins.
    Monitor,
    /// `span`: spans (inside transactions or as span items).
    Span,
    /// `log_item`: log records.
    LogItem,
    /// `log_byte`: log payload bytes.
    LogByte,
    /// `security`: CSP and other security reports.
    Security,
    /// `attachment`: attachment bytes.
    Attachment,
    /// `session`: release-health sessions.
    Session,
    /// `profile`: transaction profiles.
    Profile,
    /// `profile_chunk`: continuous-profiling chunks.
    ProfileChunk,
    /// `replay`: session replays.
    Replay,
    /// `feedback`: user feedback.
    Feedback,
    /// `trace_metric`: `trace_metric` items (application metrics).
    TraceMetric,
    /// `trace_metric_byte`: `trace_metric` payload bytes.
    TraceMetricByte,
    /// `internal`: client reports; only the "all" limit applies to it.
    Internal,
}

impl Category {
    /// Every category, in declaration order (`ALL[c.index()] == c`).
    pub(crate) const ALL: [Category; N_CATEGORIES] = [
        Category::Default,
        Category::Error,
        Category::Transaction,
        Category::Monitor,
        Category::Span,
        Category::LogItem,
        Category::LogByte,
        Category::Security,
        Category::Attachment,
        Category::Session,
        Category::Profile,
        Category::ProfileChunk,
        Category::Replay,
        Category::Feedback,
        Category::TraceMetric,
        Category::TraceMetricByte,
        Category::Internal,
    ];

    /// The wire name, e.g. `"log_item"`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Category::Default => "default",
            Category::Error => "error",
            Category::Transaction => "transaction",
            Category::Monitor => "monitor",
            Category::Span => "span",
            Category::LogItem => "log_item",
            Category::LogByte => "log_byte",
            Category::Security => "security",
            Category::Attachment => "attachment",
            Category::Session => "session",
            Category::Profile => "profile",
            Category::ProfileChunk => "profile_chunk",
            Category::Replay => "replay",
            Category::Feedback => "feedback",
            Category::TraceMetric => "trace_metric",
            Category::TraceMetricByte => "trace_metric_byte",
            Category::Internal => "internal",
        }
    }

    /// The category with this exact (case-sensitive) wire name, if it is one we know.
    pub(crate) fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Position in [`Category::ALL`], for per-category tables.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// Per-category rate-limit deadlines for one DSN.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateLimits {
    /// Deadline that applies to every category, including `internal`.
    all: Option<Instant>,
    /// Deadline per category, indexed by [`Category::index`]; `internal` is never set.
    categories: [Option<Instant>; N_CATEGORIES],
}

impl RateLimits {
    /// No limits.
    pub(crate) fn new() -> Self {
        RateLimits::default()
    }

    /// Applies the rate-limit headers of one response (any status), per the rules in the module
    /// docs. `now` is the monotonic clock; `wall_now` is only used to resolve an HTTP-date in
    /// `Retry-After`.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        status: u16,
        sentry_rate_limits: Option<&str>,
        retry_after: Option<&str>,
        wall_now: SystemTime,
    ) {
        let header = sentry_rate_limits.map(str::trim).filter(|h| !h.is_empty());
        let mut understood = false;
        if let Some(header) = header {
            for group in header.split(',') {
                understood |= self.apply_group(now, group);
            }
        }
        if status == 429 && !understood {
            let limit = retry_after
                .and_then(|value| parse_retry_after(value, wall_now))
                .unwrap_or(DEFAULT_429_LIMIT);
            set_max(&mut self.all, now, limit);
        }
    }

    /// Applies one `retry_after:categories:...` group. Returns whether it was well-formed (even
    /// if all its categories are unknown).
    fn apply_group(&mut self, now: Instant, group: &str) -> bool {
        let mut fields = group.trim().split(':');
        let (Some(seconds), Some(categories)) = (fields.next(), fields.next()) else {
            return false;
        };
        let Some(limit) = parse_seconds(seconds) else {
            return false;
        };
        let mut names = categories.split(';').map(str::trim).filter(|n| !n.is_empty()).peekable();
        if names.peek().is_none() {
            set_max(&mut self.all, now, limit);
            return true;
        }
        for category in names.filter_map(Category::from_name) {
            if category != Category::Internal {
                if let Some(slot) = self.categories.get_mut(category.index()) {
                    set_max(slot, now, limit);
                }
            }
        }
        true
    }

    /// The deadline that blocks `category`, if it is after `now`: the later of its own deadline and
    /// the "all" deadline (`internal` only has the latter). `limited_until(Category::Internal, ..)`
    /// is therefore the "all" deadline.
    pub(crate) fn limited_until(&self, category: Category, now: Instant) -> Option<Instant> {
        let own = match category {
            Category::Internal => None,
            _ => self.categories.get(category.index()).copied().flatten(),
        };
        own.max(self.all).filter(|&deadline| deadline > now)
    }

    /// Whether `category` must not be sent at `now`.
    pub(crate) fn is_limited(&self, category: Category, now: Instant) -> bool {
        self.limited_until(category, now).is_some()
    }
}

/// Raises `slot` to `now + limit` (limit capped at [`MAX_LIMIT`]) unless it is already later.
fn set_max(slot: &mut Option<Instant>, now: Instant, limit: Duration) {
    if let Some(deadline) = now.checked_add(limit.min(MAX_LIMIT)) {
        *slot = (*slot).max(Some(deadline));
    }
}

/// Parses `digits[.digits]` seconds (surrounding spaces allowed), rounded up to whole seconds.
fn parse_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    // Anything above a day is capped later, so huge values need not be parsed exactly.
    let significant = whole.trim_start_matches('0');
    let mut seconds = match significant.len() {
        0 => 0,
        1..=9 => significant.parse::<u64>().ok()?,
        _ => u64::MAX,
    };
    if fraction.bytes().any(|b| b != b'0') {
        seconds = seconds.saturating_add(1);
    }
    Some(Duration::from_secs(seconds))
}

/// Parses `Retry-After` (the shared HTTP stack's parser), rounded up to whole seconds as
/// `X-Sentry-Rate-Limits` is.
fn parse_retry_after(value: &str, wall_now: SystemTime) -> Option<Duration> {
    let wait = crate::sink::http::parse_retry_after(value, wall_now)?;
    let round_up = u64::from(wait.subsec_nanos() > 0);
    Some(Duration::from_secs(wait.as_secs().saturating_add(round_up)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
