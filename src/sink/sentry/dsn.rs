//! Parsing a Sentry DSN and deriving the envelope endpoint and the auth header from it.
//!
//! A DSN has the form `{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{path/}{project_id}`
//! (spec `sentry.md` §4.4). The last path segment is the project id; everything before it is a
//! path prefix that is kept in the endpoint URL (§4.3):
//! `POST {scheme}://{host}[:{port}]{prefix}api/{project_id}/envelope/`, with the default ports
//! 80 and 443 omitted. Authentication goes in `X-Sentry-Auth` (§4.3, §11.1 item 2).
//!
//! The parser is hand-written and deliberately stricter than a general URL parser, because a DSN
//! is pasted from the Sentry UI and a typo should fail at build time rather than at the first
//! export:
//!
//! - the scheme is `http` or `https` (ASCII case-insensitive, normalised to lower case);
//! - keys are limited to URL "unreserved" characters and `%` (Sentry keys are 32 hex digits), so
//!   that they can never break or inject into the auth header;
//! - the host is an ASCII registered name (use the punycode form of international names) or a
//!   bracketed IPv6 address; it is normalised to lower case;
//! - queries, fragments, whitespace and control characters are rejected;
//! - the project id is one or more ASCII digits; one trailing `/` after it is tolerated, as in
//!   sentry-rust.
//!
//! Keys are secrets: they never appear in the `Debug`/`Display` output of [`Dsn`], nor in any
//! [`DsnError`] message.

use std::fmt;
use std::str::FromStr;

use crate::sink::http::url::{self, Scheme, Url, UrlError};

/// The Sentry protocol version sent in the auth header (`sentry_version=7`, spec §4.3).
const PROTOCOL_VERSION: u8 = 7;

/// What `Display`/`Debug` print in place of the keys.
const REDACTED: &str = "***";

/// A parsed Sentry DSN: where to send envelopes and how to authenticate.
///
/// Parse it with [`str::parse`] (or [`Dsn::from_str`]). `Display` and `Debug` redact the keys:
/// `https://***@o1.ingest.sentry.io/42`.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    /// `http` or `https`, lower case.
    scheme: Scheme,
    /// The public key (`sentry_key`).
    public_key: String,
    /// The legacy secret key (`sentry_secret`); `None` when absent or empty.
    secret_key: Option<String>,
    /// Lower-case host; IPv6 addresses keep their brackets.
    host: String,
    /// The port as written in the DSN, if any.
    port: Option<u16>,
    /// Path before the project id; starts and ends with `/` (just `/` when there is none).
    path_prefix: String,
    /// The project id: one or more ASCII digits.
    project_id: String,
}

/// Why a string is not a valid DSN.
///
/// Messages name the malformed part but never include a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsnError {
    /// The DSN is empty (or only whitespace).
    Empty,
    /// There is no `scheme://` at the start.
    MissingScheme,
    /// The scheme is not `http` or `https`; carries the scheme.
    UnsupportedScheme(String),
    /// There is no public key (`{public_key}@` before the host).
    MissingPublicKey,
    /// The public key contains characters other than letters, digits, `-._~%`.
    InvalidPublicKey,
    /// The secret key contains characters other than letters, digits, `-._~%`.
    InvalidSecretKey,
    /// There is no host after the `@`.
    MissingHost,
    /// The host is malformed; carries the host.
    InvalidHost(String),
    /// The port is not a number in `1..=65535`; carries the port as written.
    InvalidPort(String),
    /// The path is malformed (query, fragment, whitespace, control characters); carries the
    /// offending part.
    InvalidPath(String),
    /// There is no project id (the path is empty or `/`).
    MissingProjectId,
    /// The project id is not made of ASCII digits; carries the last path segment.
    InvalidProjectId(String),
}

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DsnError::Empty => f.write_str("invalid Sentry DSN: the DSN is empty"),
            DsnError::MissingScheme => {
                f.write_str("invalid Sentry DSN: missing scheme (expected `https://` or `http://`)")
            }
            DsnError::UnsupportedScheme(scheme) => write!(
                f,
                "invalid Sentry DSN: unsupported scheme `{scheme}` (expected `https` or `http`)"
            ),
            DsnError::MissingPublicKey => {
                f.write_str("invalid Sentry DSN: missing public key (expected `{public_key}@` before the host)")
            }
            DsnError::InvalidPublicKey => f.write_str(
                "invalid Sentry DSN: the public key contains characters other than letters, digits and `-._~%`",
            ),
            DsnError::InvalidSecretKey => f.write_str(
                "invalid Sentry DSN: the secret key contains characters other than letters, digits and `-._~%`",
            ),
            DsnError::MissingHost => f.write_str("invalid Sentry DSN: missing host after `@`"),
            DsnError::InvalidHost(host) => write!(f, "invalid Sentry DSN: invalid host `{host}`"),
            DsnError::InvalidPort(port) => {
                write!(f, "invalid Sentry DSN: invalid port `{port}` (expected 1 to 65535)")
            }
            DsnError::InvalidPath(path) => write!(
                f,
                "invalid Sentry DSN: invalid path `{path}` (no query, fragment, whitespace or control characters allowed)"
            ),
            DsnError::MissingProjectId => {
                f.write_str("invalid Sentry DSN: missing project id (the last path segment)")
            }
            DsnError::InvalidProjectId(id) => {
                write!(f, "invalid Sentry DSN: invalid project id `{id}` (expected digits)")
            }
        }
    }
}

impl std::error::Error for DsnError {}

impl From<UrlError> for DsnError {
    fn from(error: UrlError) -> Self {
        match error {
            UrlError::Empty => DsnError::Empty,
            UrlError::MissingScheme => DsnError::MissingScheme,
            UrlError::UnsupportedScheme(scheme) => DsnError::UnsupportedScheme(scheme),
            UrlError::MissingHost => DsnError::MissingHost,
            UrlError::InvalidHost(host) => DsnError::InvalidHost(host),
            UrlError::InvalidPort(port) => DsnError::InvalidPort(port),
        }
    }
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let split = url::split(s).map_err(DsnError::from)?;
        // The keys first: without an `@`, a secret may sit where the host or port should be,
        // and the host's errors echo it.
        let userinfo = split.userinfo.ok_or(DsnError::MissingPublicKey)?;
        let (public_key, secret_key) = parse_userinfo(userinfo)?;
        let url = split.parse_host().map_err(DsnError::from)?;
        let (path_prefix, project_id) = parse_path(url.path)?;
        let Url { scheme, host, port, .. } = url;
        Ok(Dsn { scheme, public_key, secret_key, host, port, path_prefix, project_id })
    }
}

/// Whether `key` is a non-empty run of URL "unreserved" characters or `%`.
fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
}

/// Parses `public_key[:secret]`. An empty secret counts as absent.
fn parse_userinfo(userinfo: &str) -> Result<(String, Option<String>), DsnError> {
    let (public, secret) = match userinfo.split_once(':') {
        Some((public, secret)) => (public, Some(secret)),
        None => (userinfo, None),
    };
    if public.is_empty() {
        return Err(DsnError::MissingPublicKey);
    }
    if !is_valid_key(public) {
        return Err(DsnError::InvalidPublicKey);
    }
    let secret = match secret {
        None | Some("") => None,
        Some(secret) if is_valid_key(secret) => Some(secret.to_owned()),
        Some(_) => return Err(DsnError::InvalidSecretKey),
    };
    Ok((public.to_owned(), secret))
}

/// Splits the path into its prefix (starting and ending with `/`) and the project id.
fn parse_path(path: &str) -> Result<(String, String), DsnError> {
    if let Some(at) = path.find(['?', '#']) {
        return Err(DsnError::InvalidPath(path.get(at..).unwrap_or(path).to_owned()));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DsnError::InvalidPath(path.to_owned()));
    }
    // Tolerate one trailing slash after the project id, as sentry-rust does.
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let (prefix, project_id) = trimmed.rsplit_once('/').ok_or(DsnError::MissingProjectId)?;
    if project_id.is_empty() {
        return Err(DsnError::MissingProjectId);
    }
    if !project_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DsnError::InvalidProjectId(project_id.to_owned()));
    }
    Ok((format!("{prefix}/"), project_id.to_owned()))
}

impl Dsn {
    /// The scheme: `"http"` or `"https"`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// The host, in lower case; an IPv6 address keeps its brackets (`[::1]`), as in a URL.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port written in the DSN, if any (even when it is the scheme's default).
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The project id (ASCII digits).
    #[must_use]
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The public key (`sentry_key`). Crate-private: it is a credential.
    #[must_use]
    pub(crate) fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The organization id, from a host whose first label is `o<digits>` followed by a dot
    /// (`o123.ingest.sentry.io` → `Some(123)`), as Python's `^o(\d+)\.`.
    #[must_use]
    pub fn org_id(&self) -> Option<u64> {
        let (label, _) = self.host.split_once('.')?;
        let digits = label.strip_prefix('o')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The envelope endpoint: `{scheme}://{host}[:{port}]{prefix}api/{project_id}/envelope/`.
    ///
    /// The port is omitted when it is the scheme's default (80 for http, 443 for https).
    #[must_use]
    pub fn envelope_url(&self) -> String {
        let mut url = format!("{}://{}", self.scheme.as_str(), self.host);
        if let Some(port) = self.port.filter(|&p| p != self.scheme.default_port()) {
            url.push(':');
            url.push_str(&port.to_string());
        }
        url.push_str(&self.path_prefix);
        url.push_str("api/");
        url.push_str(&self.project_id);
        url.push_str("/envelope/");
        url
    }

    /// The `X-Sentry-Auth` header value:
    /// `Sentry sentry_key=<key>, sentry_version=7, sentry_client=<client>[, sentry_secret=<secret>]`.
    ///
    /// `client` is the SDK identifier, e.g. `tracing-tally/0.1.0`. The result contains the keys:
    /// never log it.
    #[must_use]
    pub fn auth_header(&self, client: &str) -> String {
        let mut header = format!(
            "Sentry sentry_key={}, sentry_version={PROTOCOL_VERSION}, sentry_client={client}",
            self.public_key
        );
        if let Some(secret) = &self.secret_key {
            header.push_str(", sentry_secret=");
            header.push_str(secret);
        }
        header
    }
}

impl fmt::Display for Dsn {
    /// Writes the DSN with the keys replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{REDACTED}@{}", self.scheme.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}{}", self.path_prefix, self.project_id)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dsn").field(&format_args!("{self}")).finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
