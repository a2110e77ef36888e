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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Parses `Retry-After`: delay seconds, or an IMF-fixdate resolved against `wall_now` (a date in
/// the past means no delay).
fn parse_retry_after(value: &str, wall_now: SystemTime) -> Option<Duration> {
    if let Some(delay) = parse_seconds(value) {
        return Some(delay);
    }
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(parse_imf_fixdate(value.trim())?))?;
    Some(at.duration_since(wall_now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) into Unix seconds.
///
/// The day name must be valid but is not checked against the date. Dates before 1970 are
/// rejected.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = s.as_bytes();
    if b.len() != 29 || !s.is_ascii() {
        return None;
    }
    let text = |range: std::ops::Range<usize>| s.get(range);
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let t = s.get(range)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let separators =
        [(3, b','), (4, b' '), (7, b' '), (11, b' '), (16, b' '), (19, b':'), (22, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c)) || text(25..29)? != " GMT" {
        return None;
    }
    if !DAYS.contains(&text(0..3)?) {
        return None;
    }
    let day = number(5..7)?;
    let month = MONTHS.iter().position(|&m| Some(m) == text(8..11))? as u64 + 1;
    let year = number(12..16)?;
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if year < 1970 || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Number of days in `month` (1-12) of `year` (Gregorian).
fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid Gregorian date with `year >= 1970` (H. Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
