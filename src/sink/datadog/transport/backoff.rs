//! When to try again: exponential backoff with jitter, and `Retry-After`. Nothing here is
//! Datadog's: any HTTP intake's retries wait this way.
//!
//! Backoff: 0.5 s, 1 s, 2 s, 4 s, ... (at most 10 s), each between half and all of that
//! ("equal jitter"). A `Retry-After` (seconds or an HTTP date) replaces the backoff; it is
//! bounded to 5 minutes.

use std::time::{Duration, SystemTime};

/// First backoff.
const BASE: Duration = Duration::from_millis(500);
/// Longest backoff.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait before retry number `attempt` (1 for the first retry), given `jitter` in `[0, 1)`.
pub(crate) fn backoff(attempt: u32, jitter: f64) -> Duration {
    let full = BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(MAX_BACKOFF);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Parses a `Retry-After` value: delay-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`), relative to `now`; bounded by [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else if let Ok(seconds) = value.parse::<f64>() {
        // Not in the RFC, but some servers send fractions.
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = parse_http_date(value)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An IMF-fixdate (RFC 9110 §5.6.7), the only HTTP date form senders may generate.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let year: u64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    if *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + h * 3600 + m * 60 + s;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (years 1970 to 9999).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Shift the year to start in March, so the leap day is the last day of the year.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let year_of_era = y % 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

/// A small random source for jitter (xorshift64*), seeded from the clock and the thread.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = crate::aggregate::hash::mix(nanos ^ u64::from(std::process::id()) << 32);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_equal_jitter_and_a_cap() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 0.999_999), Duration::from_millis(500).mul_f64(0.999_999_5));
        assert_eq!(backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 0.5), Duration::from_millis(1500));
        assert_eq!(backoff(10, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX, 0.0), Duration::from_secs(5));
        let mut jitter = Jitter::new();
        for _ in 0..1000 {
            let j = jitter.next();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_dates_and_is_bounded() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("99999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", now), Some(MAX_RETRY_AFTER));
        for bad in
            ["", "-1", "soon", "Sun, 06 Nov 1994 08:50:07 UTC", "Sun, 32 Nov 1994 08:50:07 GMT"]
        {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn civil_dates_convert_to_unix_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2023, 11, 14), 19_675);
    }
}
