//! The HTTP stack the HTTP sinks share (Sentry, Datadog, and the backends to come). A backend
//! module keeps only what is its own: its encoder, its status rules, its rate-limit headers,
//! its payload kinds.
//!
//! | module | what lives there |
//! |---|---|
//! | `url` | one URL parser (`scheme://[userinfo@]host[:port][path]`), user information checked before the host so that errors never echo a secret |
//! | `transport` | the replaceable [`HttpTransport`] and its request, answer and error types; `SharedTransport` for cloneable options |
//! | `ureq` | the default transport: a ureq agent (TLS roots, no redirects, answers read up to 64 KiB) |
//! | `tls` | the root certificates added to Mozilla's (`ExtraRoots`) |
//! | `gzip` | request bodies compressed |
//! | `backoff` | exponential backoff with jitter (each backend's policy), `Retry-After` parsing, the wait before a retry within a flush's deadline |
//! | `breaker` | the circuit breaker for refused credentials |
//! | `spool` | the durable spool: payloads kept on disk until the backend can be reached |

mod backoff;
#[cfg(feature = "datadog")]
mod breaker;
mod gzip;
pub(crate) mod spool;
pub(crate) mod tls;
mod transport;
mod ureq;
pub(crate) mod url;

pub(crate) use self::backoff::{parse_retry_after, wait_for_retry, Backoff, Jitter};
#[cfg(feature = "datadog")]
pub(crate) use self::breaker::Breaker;
pub(crate) use self::gzip::gzip;
pub use self::transport::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpTransport};
pub(crate) use self::transport::{SharedTransport, MIN_REQUEST};
pub(crate) use self::ureq::UreqTransport;
