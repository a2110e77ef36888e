//! What any HTTP backend needs, whatever its intake's rules: the agent, one request and its
//! answer, and the time a request or a backoff wait may take on the lane.

use std::time::{Duration, Instant, SystemTime};

use super::backoff;
use crate::sink::http::tls::ExtraRoots;
use crate::sink::SinkContext;

/// The least time left before a deadline worth starting a request in.
pub(crate) const MIN_REQUEST: Duration = Duration::from_millis(50);

/// Bytes of an answer's body read (for diagnostics, and to keep the connection reusable).
const MAX_ANSWER: u64 = 64 * 1024;

/// The agent: TLS with the web's roots (plus `roots`), status codes as answers rather than
/// errors, and no redirects followed.
pub(crate) fn agent(
    connect_timeout: Duration,
    timeout: Duration,
    roots: &ExtraRoots,
) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(connect_timeout))
        .tls_config(roots.tls_config())
        .timeout_global(Some(timeout))
        .user_agent(format!("tracing-tally/{}", env!("CARGO_PKG_VERSION")))
        // Answer a redirect with the redirect: a POST body is not replayed elsewhere.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .max_idle_connections(2)
        .build()
        .into()
}

/// An answer to a request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The `Retry-After` header, read as a wait (bounded, see [`backoff::parse_retry_after`]).
    pub(crate) retry_after: Option<Duration>,
    /// The start of the body (at most 64 KiB).
    pub(crate) body: Vec<u8>,
}

/// Posts `body` to `url` with `headers`, giving the whole exchange at most `timeout`.
///
/// # Errors
///
/// When no answer came (connection, TLS, timeout).
pub(crate) fn post(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, ureq::Error> {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.config().timeout_global(Some(timeout)).build();
    let mut response = request.send(body)?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| backoff::parse_retry_after(v, SystemTime::now()));
    let body =
        response.body_mut().with_config().limit(MAX_ANSWER).read_to_vec().unwrap_or_default();
    Ok(Answer { status: response.status().as_u16(), retry_after, body })
}

/// The deadlines a sender keeps on its lane, and its waits.
pub(crate) struct Clock {
    /// The sink's context, once started: a pending flush's deadline, and pauses it cuts short.
    cx: Option<SinkContext>,
    /// The deadline of the flush (or shutdown) being run.
    pub(crate) flushing: Option<Instant>,
    /// The configured request timeout.
    timeout: Duration,
}

impl Clock {
    pub(crate) fn new(timeout: Duration) -> Clock {
        Clock { cx: None, flushing: None, timeout }
    }

    pub(crate) fn start(&mut self, cx: SinkContext) {
        self.cx = Some(cx);
    }

    pub(crate) fn context(&self) -> Option<&SinkContext> {
        self.cx.as_ref()
    }

    /// The earliest deadline to keep: the flush being run, or one waiting on the lane.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let pending = self.cx.as_ref().and_then(SinkContext::deadline);
        match (self.flushing, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time a request may take now: the configured timeout, shortened to the deadline;
    /// `None` when less than [`MIN_REQUEST`] is left.
    pub(crate) fn request_timeout(&self) -> Option<Duration> {
        let Some(deadline) = self.deadline() else { return Some(self.timeout) };
        let left = deadline.saturating_duration_since(Instant::now());
        (left >= MIN_REQUEST).then(|| left.min(self.timeout))
    }

    /// Waits `wait` before a retry; `false` when the deadline does not leave time for the wait
    /// and a request after it (checked again whenever a flush is asked for meanwhile).
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let now = Instant::now();
        let Some(until) = now.checked_add(wait) else { return false };
        loop {
            if let Some(deadline) = self.deadline() {
                if until.checked_add(MIN_REQUEST).is_none_or(|end| end > deadline) {
                    return false;
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match &self.cx {
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
}
