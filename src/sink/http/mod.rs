//! The HTTP stack the HTTP sinks share (Sentry, Datadog, and the backends to come): one URL
//! parser, one replaceable transport ([`HttpTransport`], a ureq agent with Mozilla's root
//! certificates by default), gzip, and backoff with jitter. A backend module keeps only what is
//! its own: its encoder, its status rules, its rate-limit headers.

mod gzip;
pub(crate) mod spool;
pub(crate) mod tls;
mod transport;
mod ureq;
pub(crate) mod url;

pub(crate) use self::gzip::gzip;
pub(crate) use self::transport::SharedTransport;
pub use self::transport::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpTransport};
pub(crate) use self::ureq::UreqTransport;
