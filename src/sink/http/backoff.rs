//! When to try again: exponential backoff with jitter, and `Retry-After`. The policy (first
//! wait, longest wait, how much of it is random) is each backend's; the arithmetic is shared.
//!
//! * [`Backoff::wait`]: the nominal wait doubles from `first` at each retry, up to `max`; a
//!   fraction `spread` of it is random, so that clients that failed together do not retry
//!   together.
//! * [`parse_retry_after`]: a `Retry-After` value, delay-seconds or an IMF-fixdate, unbounded:
//!   each backend caps it as its own rules say.
//! * [`wait_for_retry`]: the wait itself, on the sink's lane, within a pending flush's
//!   deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::MIN_REQUEST;
use crate::sink::SinkContext;

/// A backend's backoff policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    /// The nominal wait before the first retry.
    pub(crate) first: Duration,
    /// The longest nominal wait.
    pub(crate) max: Duration,
    /// The random part of each wait, in `[0, 1]`: a wait lies between `1 - spread` and all of
    /// the nominal wait (0.5 is "equal jitter").
    pub(crate) spread: f64,
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry), given `random` in
    /// `[0, 1)`.
    pub(crate) fn wait(&self, attempt: u32, random: f64) -> Duration {
        // Past 2^16 the cap has long been reached; the shift must not overflow.
        let doublings = attempt.saturating_sub(1).min(16);
        let nominal = self.first.saturating_mul(1 << doublings).min(self.max);
        let spread = self.spread.clamp(0.0, 1.0);
        nominal.mul_f64(1.0 - spread + spread * random.clamp(0.0, 1.0))
    }
}

/// Waits `wait` before a retry, on the sink's lane: `false` when `deadline()` (the earliest
/// deadline the backend keeps; read again whenever a flush is asked for meanwhile) does not
/// leave time for the wait and a request after it ([`MIN_REQUEST`]). Without a context (a
/// sender never started) it sleeps.
pub(crate) fn wait_for_retry(
    cx: Option<&SinkContext>,
    wait: Duration,
    deadline: impl Fn() -> Option<Instant>,
) -> bool {
    let Some(until) = Instant::now().checked_add(wait) else { return false };
    loop {
        if let Some(deadline) = deadline() {
            if until.checked_add(MIN_REQUEST).is_none_or(|end| end > deadline) {
                return false;
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        match cx {
            Some(cx) => {
                if cx.pause(left) {
                    return true;
                }
                // A flush was asked for: check its deadline.
            }
            None => {
                std::thread::sleep(left);
                return true;
            }
        }
    }
}

/// A small random source for jitter (xorshift64*), seeded from the clock and the process: it
/// only has to differ between clients, not to be unpredictable.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let seed = crate::aggregate::hash::mix(nanos ^ u64::from(std::process::id()) << 32);
        // xorshift never leaves zero.
        Jitter(seed | 1)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Parses a `Retry-After` value (surrounding spaces allowed): delay-seconds, `digits[.digits]`
/// (fractions are not in RFC 9110, but some servers send them), or an IMF-fixdate resolved
/// against `now` (a date in the past means no wait). Not bounded: huge delays saturate, and the
/// backend caps them. Anything else (negative numbers, the obsolete date forms) is `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(delay) = parse_delay(value) {
        return Some(delay);
    }
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(parse_imf_fixdate(value)?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `digits[.digits]` seconds; a fraction finer than a nanosecond rounds up, so that a
/// backend that waits whole seconds rounds `1.0000000001` up as it reads.
fn parse_delay(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let seconds = whole.parse::<u64>().unwrap_or(u64::MAX);
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    let finer = u64::from(fraction.bytes().skip(9).any(|b| b != b'0'));
    Some(Duration::from_secs(seconds).saturating_add(Duration::from_nanos(nanos + finer)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7, the only date form
/// senders may generate) into Unix seconds.
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
    // The year starts in March, so that the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const EQUAL: Backoff =
        Backoff { first: Duration::from_millis(500), max: Duration::from_secs(10), spread: 0.5 };

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        assert_eq!(EQUAL.wait(1, 0.0), Duration::from_millis(250));
        assert_eq!(EQUAL.wait(1, 0.999_999), Duration::from_millis(500).mul_f64(0.999_999_5));
        assert_eq!(EQUAL.wait(2, 0.0), Duration::from_millis(500));
        assert_eq!(EQUAL.wait(3, 0.5), Duration::from_millis(1500));
        assert_eq!(EQUAL.wait(10, 0.0), Duration::from_secs(5));
        assert_eq!(EQUAL.wait(u32::MAX, 0.0), Duration::from_secs(5));
        let exact = Backoff { spread: 0.0, ..EQUAL };
        assert_eq!(exact.wait(2, 0.7), Duration::from_secs(1));
        let mut jitter = Jitter::new();
        for _ in 0..1000 {
            let j = jitter.next();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("2.", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("1.0000000001", now), Some(Duration::new(1, 1)));
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        for bad in [
            "",
            "-1",
            ".5",
            "1e3",
            "soon",
            "Sun, 06 Nov 1994 08:50:07 UTC",
            "Sun, 32 Nov 1994 08:50:07 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
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

    #[test]
    fn civil_dates_convert_to_unix_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2023, 11, 14), 19_675);
    }
}
