//! The Sentry sink's settings: [`SentryOptions`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::dsn::{Dsn, DsnError};
use crate::batch::{ErrorEvent, Transaction};
use crate::sink::http::spool::SpoolOptions;
use crate::sink::http::tls::ExtraRoots;
use crate::sink::http::{HttpTransport, SharedTransport};

pub(super) type BeforeSend = Arc<dyn Fn(ErrorEvent) -> Option<ErrorEvent> + Send + Sync>;
pub(super) type BeforeSendTransaction =
    Arc<dyn Fn(Transaction) -> Option<Transaction> + Send + Sync>;

/// Settings of the Sentry sink.
///
/// ```
/// use std::time::Duration;
/// use tracing_tally::sink::sentry::SentryOptions;
///
/// let options = SentryOptions::new("https://public@o1.ingest.sentry.io/42")?
///     .send_default_pii(false)
///     .timeout(Duration::from_secs(10))
///     .before_send(|mut event| {
///         event.fields.retain(|(name, _)| *name != "user_email");
///         Some(event)
///     });
/// let (layer, guard) = tracing_tally::Tally::builder().sentry_options(options).build()?;
/// # use tracing_subscriber::prelude::*;
/// # let subscriber = tracing_subscriber::registry().with(layer);
/// # drop((subscriber, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct SentryOptions {
    pub(super) dsn: Dsn,
    pub(super) send_default_pii: bool,
    pub(super) scrub_keys: Vec<String>,
    pub(super) before_send: Option<BeforeSend>,
    pub(super) before_send_transaction: Option<BeforeSendTransaction>,
    pub(super) send_metrics: bool,
    pub(super) legacy_statsd: bool,
    pub(super) max_distribution_values: usize,
    pub(super) connect_timeout: Duration,
    pub(super) roots: ExtraRoots,
    pub(super) timeout: Duration,
    pub(super) queue: usize,
    pub(super) max_retries: u32,
    pub(super) compress_min: usize,
    pub(super) client_reports: bool,
    pub(super) spool: Option<SpoolOptions>,
    pub(super) http: Option<SharedTransport>,
}

impl fmt::Debug for SentryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The DSN prints without its keys.
        f.debug_struct("SentryOptions")
            .field("dsn", &self.dsn)
            .field("send_default_pii", &self.send_default_pii)
            .field("send_metrics", &self.send_metrics)
            .field("legacy_statsd", &self.legacy_statsd)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .field("roots", &self.roots)
            .field("spool", &self.spool)
            .field("transport", &self.http.as_ref().map_or("ureq", |_| "custom"))
            .finish_non_exhaustive()
    }
}

impl SentryOptions {
    /// Options for a DSN (`https://<public key>@<host>/<project id>`).
    ///
    /// # Errors
    ///
    /// A [`DsnError`] naming the malformed part (scheme, key, host, port, project id, path).
    pub fn new(dsn: &str) -> Result<Self, DsnError> {
        Ok(SentryOptions::from_dsn(dsn.parse()?))
    }

    /// Options for a parsed DSN.
    pub fn from_dsn(dsn: Dsn) -> Self {
        SentryOptions {
            dsn,
            send_default_pii: false,
            scrub_keys: Vec::new(),
            before_send: None,
            before_send_transaction: None,
            send_metrics: true,
            legacy_statsd: false,
            max_distribution_values: 100,
            connect_timeout: Duration::from_secs(5),
            roots: ExtraRoots::default(),
            timeout: Duration::from_secs(30),
            queue: 30,
            max_retries: 3,
            compress_min: 1024,
            client_reports: true,
            spool: None,
            http: None,
        }
    }

    /// The same options for another DSN.
    pub(crate) fn with_dsn(mut self, dsn: Dsn) -> Self {
        self.dsn = dsn;
        self
    }

    /// The DSN (prints without its keys).
    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// Sends personal data: IP addresses and forwarded-for headers are not scrubbed from the
    /// envelopes. Off by default: values of the keys in Sentry's default deny lists become
    /// `"[Filtered]"`. The pipeline filters fields before any sink sees them, with
    /// [`Builder::send_default_pii`](crate::Builder::send_default_pii) (also off by default):
    /// to send personal data to Sentry, turn both on.
    pub fn send_default_pii(mut self, send: bool) -> Self {
        self.send_default_pii = send;
        self
    }

    /// More field names whose values are scrubbed from the envelopes (case-insensitive, exact),
    /// on top of [`Builder::scrub_keys`](crate::Builder::scrub_keys), which applies to every
    /// sink.
    pub fn scrub_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.scrub_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Inspects or changes every error before it is sent; `None` drops it (counted as
    /// `before_send` in client reports). Runs on the sink's thread; a panic drops the event.
    pub fn before_send(
        mut self,
        hook: impl Fn(ErrorEvent) -> Option<ErrorEvent> + Send + Sync + 'static,
    ) -> Self {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// Inspects or changes every transaction before it is sent; `None` drops it.
    pub fn before_send_transaction(
        mut self,
        hook: impl Fn(Transaction) -> Option<Transaction> + Send + Sync + 'static,
    ) -> Self {
        self.before_send_transaction = Some(Arc::new(hook));
        self
    }

    /// Sends metric records (on by default).
    pub fn send_metrics(mut self, send: bool) -> Self {
        self.send_metrics = send;
        self
    }

    /// Sends metrics as legacy `statsd` items, for self-hosted Sentry from before Application
    /// Metrics (sentry.io rejects them since October 2024).
    pub fn legacy_statsd(mut self, legacy: bool) -> Self {
        self.legacy_statsd = legacy;
        self
    }

    /// Distribution values sent per series and interval (default 100; the rest are counted as
    /// `buffer_overflow`).
    pub fn max_distribution_values(mut self, max: usize) -> Self {
        self.max_distribution_values = max;
        self
    }

    /// Trusts the certificate authorities of `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks) besides Mozilla's root certificates: for a self-hosted Sentry behind a private
    /// CA, or a TLS-inspecting proxy. Certificates are always verified; there is no option to
    /// turn that off.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pem = std::fs::read("/etc/ssl/certs/my-company-ca.pem")?;
    /// let options = tracing_tally::sink::sentry::SentryOptions::new("https://key@sentry.internal/1")?
    ///     .add_root_certificates(&pem)?;
    /// # drop(options); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`CertificateError`](crate::sink::CertificateError) when `pem` holds no certificate or
    /// is not valid PEM.
    pub fn add_root_certificates(
        mut self,
        pem: &[u8],
    ) -> Result<Self, crate::sink::CertificateError> {
        self.roots = self.roots.add_pem(pem)?;
        Ok(self)
    }

    /// Connection timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total timeout of one request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Kept for compatibility; it has no effect. The sink no longer has a queue of envelopes
    /// of its own: it sends on its lane, whose rooms (one per kind of data, set by
    /// [`Builder::sink_queue`](crate::Builder::sink_queue),
    /// [`Builder::error_queue`](crate::Builder::error_queue) and
    /// [`Builder::transaction_queue`](crate::Builder::transaction_queue)) bound what waits, and
    /// what they refuse is reported as `queue_overflow`.
    #[deprecated(
        since = "0.2.0",
        note = "the lane's rooms bound what waits: see Builder::sink_queue"
    )]
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// Retries of an envelope after a 5xx answer or a connection failure (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Bodies of at least this many bytes are gzipped (default 1024).
    pub fn compress_min(mut self, bytes: usize) -> Self {
        self.compress_min = bytes;
        self
    }

    /// Sends client reports of dropped data (on by default).
    pub fn client_reports(mut self, send: bool) -> Self {
        self.client_reports = send;
        self
    }

    /// Keeps envelopes on disk while Sentry cannot be reached, instead of dropping them: an
    /// envelope that still fails with a connection failure or a 5xx answer after its retries
    /// is written to the spool (under `<dir>/sentry/`) and sent, oldest first, once an envelope
    /// is accepted again, at the next flush, or when the next process starts with the same
    /// directory, like the offline cache of Sentry's mobile SDKs. Rate-limited (429) and
    /// refused envelopes are not spooled. What the spool deletes unsent is reported as
    /// `cache_overflow`. Off by default. See [`SpoolOptions`] for the caps and the file format.
    ///
    /// ```
    /// use tracing_tally::sink::{SpoolOptions, sentry::SentryOptions};
    ///
    /// let options = SentryOptions::new("https://public@o1.ingest.sentry.io/42")?
    ///     .spool(SpoolOptions::new(std::env::temp_dir().join("my-app-spool")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool(mut self, spool: SpoolOptions) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Sends through `transport` instead of the default ureq agent: another HTTP client, or no
    /// network at all in a test or a benchmark. Rate limits, retries, gzip, the spool and
    /// client reports stay the sink's. Clones of these options share the transport.
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.http = Some(SharedTransport::new(transport));
        self
    }

    /// Entries the Sentry project adds to the dynamic sampling context.
    pub(crate) fn dsc_extras(&self) -> Vec<(String, String)> {
        let mut extras = vec![("public_key".to_owned(), self.dsn.public_key().to_owned())];
        if let Some(org_id) = self.dsn.org_id() {
            extras.push(("org_id".to_owned(), org_id.to_string()));
        }
        extras
    }
}
