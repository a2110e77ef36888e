//! What to do with an answer: Datadog's retry policy.
//!
//! | answer | verdict |
//! |---|---|
//! | 2xx | delivered |
//! | 413 | split the payload in half and send both halves (one series left: dropped, `too_large`) |
//! | 401, 403 | dropped (`unauthorized`); feeds the circuit breaker ([`super::breaker`]) |
//! | 408, 429, 5xx | retried with backoff (honouring `Retry-After`), then kept for the next flush |
//! | other answers (400, 404, 3xx, ...) | dropped (`rejected`) |
//! | connection failures, timeouts before the request was sent | retried |
//! | timeouts after it was sent | retried for series (sending a series point twice overwrites it); dropped (`timeout`) for distribution points and events, which would count twice |
//!
//! How long to wait before a retry is the shared HTTP stack's (`sink::http`'s `Backoff`, with
//! Datadog's policy in the transport).

use std::time::Duration;

use super::losses::DropCause;
use crate::sink::http::HttpErrorKind;

/// What to do after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted.
    Delivered,
    /// Too large: split and resend.
    Split,
    /// The API key was refused.
    Unauthorized,
    /// Never retried.
    Drop(DropCause),
    /// Retry, after `after` if the server said.
    Retry { after: Option<Duration> },
}

/// The verdict for an HTTP answer.
pub(crate) fn classify_status(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        413 => Verdict::Split,
        401 | 403 => Verdict::Unauthorized,
        408 | 429 | 500..=599 => Verdict::Retry { after: retry_after },
        _ => Verdict::Drop(DropCause::Rejected),
    }
}

/// The verdict for a request that got no answer.
pub(crate) fn classify_error(error: HttpErrorKind, idempotent: bool) -> Verdict {
    match error {
        // The intake may have the whole request already: sending it again would count twice
        // what is not idempotent.
        HttpErrorKind::NoAnswer if !idempotent => Verdict::Drop(DropCause::Timeout),
        // A request that cannot be built or a redirect will fail the same way every time.
        HttpErrorKind::Invalid => Verdict::Drop(DropCause::Rejected),
        _ => Verdict::Retry { after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_per_the_policy() {
        assert_eq!(classify_status(200, None), Verdict::Delivered);
        assert_eq!(classify_status(202, None), Verdict::Delivered);
        assert_eq!(classify_status(413, None), Verdict::Split);
        assert_eq!(classify_status(401, None), Verdict::Unauthorized);
        assert_eq!(classify_status(403, None), Verdict::Unauthorized);
        let wait = Some(Duration::from_secs(3));
        assert_eq!(classify_status(429, wait), Verdict::Retry { after: wait });
        for status in [408, 500, 502, 503, 504, 599] {
            assert_eq!(classify_status(status, None), Verdict::Retry { after: None }, "{status}");
        }
        for status in [400, 404, 405, 422, 301, 302, 100] {
            assert_eq!(
                classify_status(status, None),
                Verdict::Drop(DropCause::Rejected),
                "{status}"
            );
        }
    }

    #[test]
    fn errors_are_retried_unless_a_resend_could_double_count() {
        use HttpErrorKind::*;
        assert_eq!(classify_error(NotSent, false), Verdict::Retry { after: None });
        assert_eq!(classify_error(NotSent, true), Verdict::Retry { after: None });
        assert_eq!(classify_error(NoAnswer, true), Verdict::Retry { after: None });
        assert_eq!(classify_error(NoAnswer, false), Verdict::Drop(DropCause::Timeout));
        assert_eq!(classify_error(Invalid, true), Verdict::Drop(DropCause::Rejected));
        assert_eq!(classify_error(Invalid, false), Verdict::Drop(DropCause::Rejected));
    }
}
