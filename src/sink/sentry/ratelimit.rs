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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    fn wall() -> SystemTime {
        // Wed, 21 Oct 2015 07:28:00 GMT
        UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    fn limits(
        status: u16,
        header: Option<&str>,
        retry_after: Option<&str>,
    ) -> (RateLimits, Instant) {
        let now = Instant::now();
        let mut limits = RateLimits::new();
        limits.update(now, status, header, retry_after, wall());
        (limits, now)
    }

    fn until(limits: &RateLimits, now: Instant, category: Category) -> Option<Duration> {
        limits.limited_until(category, now).map(|d| d - now)
    }

    #[test]
    fn categories_round_trip() {
        assert_eq!(Category::ALL.len(), N_CATEGORIES);
        for (i, c) in Category::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Category::from_name(c.as_str()), Some(c));
        }
        assert_eq!(Category::from_name("metric_bucket"), None);
        assert_eq!(Category::from_name("Error"), None);
        assert_eq!(Category::from_name(""), None);
    }

    #[test]
    fn sentry_header_rules() {
        use Category::*;
        // (header, status, [(category, expected limit in seconds)])
        type Case = (&'static str, u16, &'static [(Category, Option<u64>)]);
        let cases: &[Case] = &[
            ("60:error:project", 200, &[(Error, Some(60)), (Transaction, None), (Internal, None)]),
            ("60::organization", 200, &[(Error, Some(60)), (Span, Some(60)), (Internal, Some(60))]),
            ("2.1:error:key", 200, &[(Error, Some(3))]),
            ("2.0:error:key", 200, &[(Error, Some(2))]),
            ("00000000000042:error:key", 200, &[(Error, Some(42))]),
            ("000.000:error:key", 200, &[(Error, None)]),
            ("0.001:error:key", 200, &[(Error, Some(1))]),
            ("10:error;transaction:project", 200, &[(Error, Some(10)), (Transaction, Some(10))]),
            (" 10 : error ; span :project", 200, &[(Error, Some(10)), (Span, Some(10))]),
            ("10:error:org, 20:span:org", 200, &[(Error, Some(10)), (Span, Some(20))]),
            ("10:error:org,20:span:org,", 200, &[(Error, Some(10)), (Span, Some(20))]),
            ("10:error", 200, &[(Error, Some(10))]),
            ("10:error:org:reason:ns:extra", 200, &[(Error, Some(10))]),
            ("10:error;metric_bucket:org", 200, &[(Error, Some(10)), (Default, None)]),
            ("10:metric_bucket;foo:org", 429, &[(Error, None), (Internal, None)]),
            ("10:internal:org", 200, &[(Internal, None), (Error, None)]),
            ("0:error:org", 200, &[(Error, None)]),
            ("999999:error:org", 200, &[(Error, Some(86_400))]),
            ("99999999999999999999999:error:org", 200, &[(Error, Some(86_400))]),
            ("10:error:org", 500, &[(Error, Some(10)), (Span, None)]),
            ("10:error:org", 429, &[(Error, Some(10)), (Span, None)]),
        ];
        for &(header, status, expected) in cases {
            let (limits, now) = limits(status, Some(header), Some("5"));
            for &(category, secs) in expected {
                assert_eq!(
                    until(&limits, now, category),
                    secs.map(Duration::from_secs),
                    "{header:?} {category:?}"
                );
            }
        }
    }

    #[test]
    fn malformed_groups_are_skipped() {
        for header in
            ["error:60", "abc:error:org", "-1:error:org", "1e3:error:org", ":error:org", "60"]
        {
            let (l, now) = limits(200, Some(&format!("{header}, 7:span:org")), None);
            assert_eq!(until(&l, now, Category::Error), None, "{header}");
            assert_eq!(until(&l, now, Category::Span), Some(7 * S), "{header}");
            // Only malformed groups on a 429: fall back to Retry-After.
            let (l, now) = limits(429, Some(header), Some("5"));
            assert_eq!(until(&l, now, Category::Error), Some(5 * S), "{header}");
        }
    }

    #[test]
    fn max_merge() {
        let now = Instant::now();
        let mut l = RateLimits::new();
        l.update(now, 200, Some("30:error:org, 10:error:org"), None, wall());
        assert_eq!(until(&l, now, Category::Error), Some(30 * S));
        l.update(now, 200, Some("5:error:org"), None, wall());
        assert_eq!(until(&l, now, Category::Error), Some(30 * S));
        l.update(now, 200, Some("40:error:org"), None, wall());
        assert_eq!(until(&l, now, Category::Error), Some(40 * S));
        // The "all" deadline wins when later than the category's.
        l.update(now, 429, None, Some("100"), wall());
        assert_eq!(until(&l, now, Category::Error), Some(100 * S));
        l.update(now, 429, None, Some("1"), wall());
        assert_eq!(until(&l, now, Category::Internal), Some(100 * S));
    }

    #[test]
    fn fallbacks_on_429() {
        // (status, X-Sentry-Rate-Limits, Retry-After, expected limit of every category)
        type Case = (u16, Option<&'static str>, Option<&'static str>, Option<u64>);
        let cases: &[Case] = &[
            (429, None, Some("120"), Some(120)),
            (429, None, Some(" 1.5 "), Some(2)),
            (429, Some(""), Some("7"), Some(7)),
            (429, Some("  "), None, Some(60)),
            (429, None, None, Some(60)),
            (429, None, Some("soon"), Some(60)),
            (429, None, Some("Wed, 21 Oct 2015 07:29:00 GMT"), Some(60)),
            (429, None, Some("Wed, 21 Oct 2015 07:28:30 GMT"), Some(30)),
            (429, None, Some("Wed, 21 Oct 2015 07:27:00 GMT"), None),
            (429, None, Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
            (429, None, Some("Thu, 22 Oct 2015 07:28:00 GMT"), Some(86_400)),
            (429, None, Some("Fri, 01 Jan 2016 00:00:00 GMT"), Some(86_400)),
            (429, None, Some("Wed, 32 Oct 2015 07:28:00 GMT"), Some(60)),
            (429, None, Some("1000000"), Some(86_400)),
            (503, None, Some("120"), None),
            (200, None, None, None),
        ];
        for &(status, header, retry_after, secs) in cases {
            let (l, now) = limits(status, header, retry_after);
            for category in Category::ALL {
                assert_eq!(
                    until(&l, now, category),
                    secs.map(Duration::from_secs),
                    "{status} {retry_after:?} {category:?}"
                );
            }
        }
    }

    #[test]
    fn expiry() {
        let now = Instant::now();
        let mut l = RateLimits::new();
        l.update(now, 200, Some("10:error:org"), None, wall());
        assert!(l.is_limited(Category::Error, now));
        assert!(l.is_limited(Category::Error, now + 9 * S));
        assert!(!l.is_limited(Category::Error, now + 10 * S));
        assert!(!l.is_limited(Category::Transaction, now));
    }

    #[test]
    fn imf_fixdates() {
        let cases: &[(&str, Option<u64>)] = &[
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(1_445_412_480)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
            ("Mon, 29 Feb 2100 12:00:00 GMT", None),
            ("Fri, 31 Dec 1999 23:59:60 GMT", Some(946_684_800)),
            ("Wed, 21 Oct 2015 24:00:00 GMT", None),
            ("Wed, 21 Oct 2015 07:60:00 GMT", None),
            ("Wed, 00 Oct 2015 07:28:00 GMT", None),
            ("Wed, 31 Sep 2015 07:28:00 GMT", None),
            ("Xyz, 21 Oct 2015 07:28:00 GMT", None),
            ("Wed, 21 Foo 2015 07:28:00 GMT", None),
            ("Wed, 21 Oct 2015 07:28:00 UTC", None),
            ("Wed, 21 Oct 1969 07:28:00 GMT", None),
            ("Wed,  1 Oct 2015 07:28:00 GMT", None),
            ("Wed, 21 Oct 2015 07:28:0a GMT", None),
            ("Wed, +1 Oct 2015 07:28:00 GMT", None),
            ("Sunday, 06-Nov-94 08:49:37 GMT", None),
            ("Sun Nov  6 08:49:37 1994", None),
            ("Wed, 21 Oct 2015 07:28:00 GMTé", None),
            ("", None),
        ];
        for &(input, expected) in cases {
            assert_eq!(parse_imf_fixdate(input), expected, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            status in prop_oneof![Just(200u16), Just(429u16), any::<u16>()],
            header in proptest::option::of("\\PC*"),
            retry_after in proptest::option::of("\\PC*"),
            wall_secs in any::<u32>(),
        ) {
            let now = Instant::now();
            let mut l = RateLimits::new();
            l.update(now, status, header.as_deref(), retry_after.as_deref(), UNIX_EPOCH + Duration::from_secs(wall_secs.into()));
            for c in Category::ALL {
                if let Some(deadline) = l.limited_until(c, now) {
                    prop_assert!(deadline - now <= MAX_LIMIT);
                }
            }
        }

        #[test]
        fn header_like_strings_never_panic(
            header in "[0-9.: ,;a-z_-]{0,60}",
            retry_after in "[A-Za-z0-9 ,:.]{0,32}",
        ) {
            let now = Instant::now();
            let mut l = RateLimits::new();
            l.update(now, 429, Some(&header), Some(&retry_after), wall());
            for c in Category::ALL {
                if let Some(deadline) = l.limited_until(c, now) {
                    prop_assert!(deadline - now <= MAX_LIMIT);
                }
            }
        }

        #[test]
        fn max_merge_is_order_independent(a in 0u64..200_000, b in 0u64..200_000) {
            let now = Instant::now();
            let mut one = RateLimits::new();
            one.update(now, 200, Some(&format!("{a}:error:org, {b}:error:org")), None, wall());
            let mut two = RateLimits::new();
            two.update(now, 200, Some(&format!("{b}:error:org")), None, wall());
            two.update(now, 200, Some(&format!("{a}:error:org")), None, wall());
            let expected = Some(Duration::from_secs(a.max(b).min(86_400))).filter(|d| !d.is_zero());
            prop_assert_eq!(until(&one, now, Category::Error), expected);
            prop_assert_eq!(until(&two, now, Category::Error), expected);
        }
    }
}
