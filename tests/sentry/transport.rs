//! A transport of the user's own: every envelope goes through it, and its answers drive the
//! sink as a server's would (rate limits, client reports), with no network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::error;
use tracing_tally::sink::http::{HttpError, HttpRequest, HttpResponse, HttpTransport};
use tracing_tally::sink::sentry::SentryOptions;
use tracing_tally::Tally;

use crate::pipeline;

/// A request as the transport saw it: URL, headers, body.
type Seen = (String, Vec<(String, String)>, Vec<u8>);

/// Records every request; answers the first with a 429 that limits errors for a minute.
#[derive(Clone, Default)]
struct Recording {
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl HttpTransport for Recording {
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let mut requests = self.requests.lock().unwrap();
        let headers = request.headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        requests.push((request.url.to_owned(), headers, request.body.to_vec()));
        Ok(if requests.len() == 1 {
            HttpResponse::new(429).with_header("X-Sentry-Rate-Limits", "60:error:organization")
        } else {
            HttpResponse::new(200)
        })
    }
}

#[test]
fn a_custom_transport_carries_every_envelope_and_its_answers_drive_rate_limits() {
    let transport = Recording::default();
    let options = SentryOptions::new("https://public@o1.ingest.example/42")
        .unwrap()
        .compress_min(usize::MAX)
        .transport(transport.clone());
    let (dispatch, guard) = pipeline(Tally::builder().manual().sentry_options(options));
    tracing::dispatcher::with_default(&dispatch, || error!("first"));
    assert!(guard.flush(Duration::from_secs(5)));
    // Errors are limited now: the second is dropped before sending, and reported.
    tracing::dispatcher::with_default(&dispatch, || error!("second"));
    assert!(guard.flush(Duration::from_secs(5)));
    let requests = transport.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the first error, then the client report alone");
    let (url, headers, first) = &requests[0];
    assert_eq!(url, "https://o1.ingest.example/api/42/envelope/");
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("Content-Type"), Some("application/x-sentry-envelope"));
    assert!(header("X-Sentry-Auth").unwrap().contains("sentry_key=public"));
    assert!(String::from_utf8_lossy(first).contains("\"first\""));
    let report = String::from_utf8_lossy(&requests[1].2).into_owned();
    assert!(!report.contains("\"second\""), "{report}");
    assert!(report.contains("\"reason\":\"ratelimit_backoff\""), "{report}");
    assert!(report.contains("\"category\":\"error\""), "{report}");
}
