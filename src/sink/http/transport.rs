//! The replaceable part of the HTTP stack: what sends one request.

use std::fmt;
use std::time::Duration;

/// The least time left before a deadline worth starting a request in: a shorter request would
/// end in a timeout, and one that reached the server would be counted as failed.
pub(crate) const MIN_REQUEST: Duration = Duration::from_millis(50);

/// Sends HTTP requests for a sink: the default is a [ureq](https://docs.rs/ureq) agent with
/// Mozilla's root certificates (and those added with `add_root_certificates`). Plug your own
/// to use another HTTP client, a proxy with custom authentication, or no network at all in a
/// test or a benchmark (`SentryOptions::transport`, `DatadogOptions::transport`).
///
/// Everything else of the stack (rate limits, retries with backoff within the flush deadline,
/// `Retry-After`, gzip, the spool, loss accounting) stays the sink's: a transport only moves
/// one request and its answer. It runs on the sink's own thread; it may block, but not past
/// `request.timeout`.
///
/// ```
/// use tracing_tally::sink::http::{HttpError, HttpRequest, HttpResponse, HttpTransport};
///
/// /// Answers every request with 200, sending nothing (for a benchmark).
/// struct NoNetwork;
///
/// impl HttpTransport for NoNetwork {
///     fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
///         let _ = (request.url, request.body.len());
///         Ok(HttpResponse::new(200))
///     }
/// }
///
/// let options = tracing_tally::sink::sentry::SentryOptions::new("https://key@o1.ingest.sentry.io/1")?
///     .transport(NoNetwork);
/// # drop(options);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait HttpTransport: Send + 'static {
    /// Sends one request and returns its answer (any status: a 500 is an `Ok` answer).
    ///
    /// # Errors
    ///
    /// An [`HttpError`] when no answer came, saying whether the request may have reached the
    /// server (which decides whether it may be sent again).
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError>;
}

impl<T: HttpTransport + ?Sized> HttpTransport for Box<T> {
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        (**self).send(request)
    }
}

/// One request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HttpRequest<'a> {
    /// `POST` or `PUT`.
    pub method: &'a str,
    /// The full URL.
    pub url: &'a str,
    /// Headers to send besides those of the transport itself (a `User-Agent`, say).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, already compressed when a `Content-Encoding` header says so.
    pub body: &'a [u8],
    /// The longest the whole request may take.
    pub timeout: Duration,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The start of the body (transports may cut it: sinks read it only for diagnostics).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// An answer with this status, no headers and no body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header (the name is kept in lower case).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of a header, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// Nothing reached the server (no connection, a name that did not resolve, a refused TLS
    /// handshake): the request can be sent again.
    NotSent,
    /// The request was sent but its answer did not come in time: the server may have it, so
    /// sending it again may duplicate it.
    NoAnswer,
    /// The request cannot be sent as it is (a malformed URL, a redirect): it would fail the same
    /// way again.
    Invalid,
}

/// A request that got no answer.
#[derive(Debug, Clone)]
pub struct HttpError {
    kind: HttpErrorKind,
    message: String,
}

impl HttpError {
    /// An error of `kind`, described by `message` (no secrets: it may be logged).
    pub fn new(kind: HttpErrorKind, message: impl Into<String>) -> HttpError {
        HttpError { kind, message: message.into() }
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// A transport given in options that can be cloned: the clones share it (each sink built from
/// them sends through it, one request at a time).
#[derive(Clone)]
pub(crate) struct SharedTransport(std::sync::Arc<std::sync::Mutex<Box<dyn HttpTransport>>>);

impl SharedTransport {
    pub(crate) fn new(transport: impl HttpTransport) -> SharedTransport {
        SharedTransport(std::sync::Arc::new(std::sync::Mutex::new(Box::new(transport))))
    }
}

impl fmt::Debug for SharedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTransport(..)")
    }
}

impl HttpTransport for SharedTransport {
    fn send(&mut self, request: HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let mut transport = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        transport.send(request)
    }
}
