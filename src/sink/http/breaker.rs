//! The circuit breaker for refused credentials, for any backend whose key can be refused.
//!
//! A 401 or 403 usually means a wrong or revoked key, and every later request will be refused
//! the same way. It can also be transient: a new key takes a short while to propagate. So:
//!
//! * after 3 refusals in a row the breaker **opens** for 30 s: nothing is sent, payloads wait
//!   (in the backend's retry buffer: bounded, the oldest dropped first);
//! * when the pause ends, the next request is a probe: accepted closes the breaker (and what
//!   waits drains); refused opens it again for twice as long, up to 5 minutes;
//! * any accepted request closes it.
//!
//! So a bad key costs a handful of requests per pause rather than one per payload, and a key
//! that starts working is noticed within 5 minutes, never a long blackout. Which answers count
//! as a refusal is the backend's rule (Datadog: 401 and 403).

use std::time::{Duration, Instant};

/// Refusals in a row that open the breaker.
pub(crate) const THRESHOLD: u32 = 3;
/// The first pause.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_secs(30);
/// The longest pause.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(300);

/// The breaker's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Breaker {
    /// Refusals since the last accepted request.
    refusals: u32,
    /// When the current (or last) pause ends; `Some` once the breaker has opened, until a
    /// request is accepted.
    open_until: Option<Instant>,
    /// The length of the last pause.
    pause: Duration,
}

impl Breaker {
    /// Whether sending is paused at `now`.
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }

    /// A request was accepted: close.
    pub(crate) fn success(&mut self) {
        *self = Breaker::default();
    }

    /// A request was refused (401/403) at `now`. Returns the pause when this opens the breaker.
    pub(crate) fn refused(&mut self, now: Instant) -> Option<Duration> {
        self.refusals = self.refusals.saturating_add(1);
        let pause = if self.open_until.is_some() {
            // The probe after a pause failed.
            self.pause.saturating_mul(2).min(MAX_PAUSE)
        } else if self.refusals >= THRESHOLD {
            FIRST_PAUSE
        } else {
            return None;
        };
        self.pause = pause;
        self.open_until = Some(now + pause);
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_three_refusals_and_backs_off_to_five_minutes() {
        let start = Instant::now();
        let mut breaker = Breaker::default();
        assert_eq!(breaker.refused(start), None);
        assert_eq!(breaker.refused(start), None);
        assert!(!breaker.is_open(start));
        assert_eq!(breaker.refused(start), Some(FIRST_PAUSE));
        assert!(breaker.is_open(start + Duration::from_secs(29)));
        assert!(!breaker.is_open(start + FIRST_PAUSE));
        // The pause ends: half-open, the next request is a probe.
        let later = start + FIRST_PAUSE;
        assert!(!breaker.is_open(later));
        let mut pauses = Vec::new();
        let mut now = later;
        for _ in 0..6 {
            let pause = breaker.refused(now).unwrap();
            pauses.push(pause.as_secs());
            now += pause;
        }
        assert_eq!(pauses, [60, 120, 240, 300, 300, 300]);
    }

    #[test]
    fn success_closes_and_resets() {
        let now = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..3 {
            breaker.refused(now);
        }
        assert!(breaker.is_open(now));
        breaker.success();
        assert!(!breaker.is_open(now));
        // Counting starts over.
        assert_eq!(breaker.refused(now), None);
        breaker.success();
        assert_eq!(breaker.refused(now), None);
        assert_eq!(breaker.refused(now), None);
        assert_eq!(breaker.refused(now), Some(FIRST_PAUSE));
    }
}
