//! The default transport: a ureq agent.

use std::time::Duration;

use super::transport::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpTransport};
use crate::sink::http::tls::ExtraRoots;

/// Bytes of an answer's body read (for diagnostics, and to keep the connection reusable).
const MAX_ANSWER: u64 = 64 * 1024;

/// The ureq agent every HTTP sink uses unless given another transport: certificates verified
/// against Mozilla's roots plus the added ones, no redirects followed (a POST body is never
/// replayed elsewhere), statuses returned as answers, two idle connections kept.
pub(crate) struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    pub(crate) fn new(roots: &ExtraRoots, connect_timeout: Duration) -> UreqTransport {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect_timeout))
            .tls_config(roots.tls_config())
            .user_agent(format!("tracing-tally/{}", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .max_idle_connections(2)
            .build()
            .into();
        UreqTransport { agent }
    }
}

impl HttpTransport for UreqTransport {
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let mut builder = match request.method {
            "PUT" => self.agent.put(request.url),
            _ => self.agent.post(request.url),
        };
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        let builder = builder.config().timeout_global(Some(request.timeout)).build();
        match builder.send(request.body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                    })
                    .collect();
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER)
                    .read_to_vec()
                    .unwrap_or_default();
                Ok(HttpResponse { status, headers, body })
            }
            Err(error) => Err(HttpError::new(kind(&error), error.to_string())),
        }
    }
}

/// What a ureq error means for sending again.
fn kind(error: &ureq::Error) -> HttpErrorKind {
    match error {
        // The whole request may have reached the server.
        ureq::Error::Timeout(
            ureq::Timeout::RecvResponse
            | ureq::Timeout::RecvBody
            | ureq::Timeout::Global
            | ureq::Timeout::PerCall,
        ) => HttpErrorKind::NoAnswer,
        // A request that cannot be built or a redirect fails the same way every time.
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::RedirectFailed
        | ureq::Error::TooManyRedirects
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::RequireHttpsOnly(_) => HttpErrorKind::Invalid,
        _ => HttpErrorKind::NotSent,
    }
}
