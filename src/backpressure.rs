//! Backpressure: root spans are sampled less while the pipeline cannot keep up with its traces.
//!
//! As Sentry's SDKs do, the pipeline checks its health at every export: when something could
//! not keep up since the last check (the transaction queue, a sink's room for transactions, or
//! a backend that rate-limits), the *downsampling factor* goes up by one and each new root's
//! sample rate is divided by `2^factor`; at the first healthy check it is back to zero. The
//! decision is made at the root, before anything is recorded, so what is kept is whole traces.
//! Roots left out because of the factor are counted (`Stats::downsampled_traces`, and
//! `backpressure` in Sentry's client reports).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The factor stops here: a rate divided by 2^10 is a thousandth of itself.
const MAX_FACTOR: u32 = 10;

/// The pipeline's backpressure state: written by the flusher and the sinks, read at each root.
#[derive(Debug, Default)]
pub(crate) struct Backpressure {
    factor: AtomicU32,
    /// Whether something could not keep up since the last check.
    strained: AtomicBool,
}

impl Backpressure {
    /// The current downsampling factor.
    pub(crate) fn factor(&self) -> u32 {
        self.factor.load(Ordering::Relaxed)
    }

    /// `rate` divided by `2^factor`.
    pub(crate) fn scale(&self, rate: f64) -> f64 {
        match self.factor() {
            0 => rate,
            factor => rate / f64::from(1u32 << factor.min(MAX_FACTOR)),
        }
    }

    /// Something could not keep up (a queue or room for transactions was full, a backend
    /// rate-limited transactions): the next check lowers the sample rate.
    pub(crate) fn strain(&self) {
        if !self.strained.load(Ordering::Relaxed) {
            self.strained.store(true, Ordering::Relaxed);
        }
    }

    /// The periodic check: halves the rate once more after a strained period, restores it
    /// after a healthy one. Returns the new factor.
    pub(crate) fn check(&self) -> u32 {
        let factor = if self.strained.swap(false, Ordering::Relaxed) {
            (self.factor() + 1).min(MAX_FACTOR)
        } else {
            0
        };
        self.factor.store(factor, Ordering::Relaxed);
        factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_halves_per_strained_check_and_recovers_at_the_first_healthy_one() {
        let backpressure = Backpressure::default();
        assert_eq!(backpressure.scale(0.8), 0.8);
        backpressure.strain();
        assert_eq!(backpressure.check(), 1);
        assert_eq!(backpressure.scale(0.8), 0.4);
        backpressure.strain();
        assert_eq!(backpressure.check(), 2);
        assert_eq!(backpressure.scale(0.8), 0.2);
        for _ in 0..20 {
            backpressure.strain();
            backpressure.check();
        }
        assert_eq!(backpressure.factor(), MAX_FACTOR);
        assert_eq!(backpressure.check(), 0, "a healthy period restores the configured rate");
        assert_eq!(backpressure.scale(0.8), 0.8);
    }
}
