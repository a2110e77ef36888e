//! Where the sink sends: a Datadog site (`DD_SITE`) or a full base URL (`DD_URL`).
//!
//! A **site** names a Datadog region; the API lives at `https://api.<site>`:
//!
//! | site | region | API base |
//! |---|---|---|
//! | `datadoghq.com` (default) | US1 | `https://api.datadoghq.com` |
//! | `us3.datadoghq.com` | US3 | `https://api.us3.datadoghq.com` |
//! | `us5.datadoghq.com` | US5 | `https://api.us5.datadoghq.com` |
//! | `datadoghq.eu` | EU1 | `https://api.datadoghq.eu` |
//! | `ap1.datadoghq.com` | AP1 | `https://api.ap1.datadoghq.com` |
//! | `ddog-gov.com` | US1-FED | `https://api.ddog-gov.com` |
//!
//! Sites not in this table are accepted when they are well formed, so new regions work without
//! an update. The rule: after trimming whitespace and lowering ASCII letters, a site is two or
//! more dot-separated labels of letters, digits and `-` (1 to 63 characters each, not starting
//! or ending with `-`), optionally followed by `:<port>`. This is a stricter form of the pattern
//! `^[a-zA-Z0-9._:-]+$` the Datadog serverless tooling uses. A leading `app.` or `api.` (the
//! host names of the web UI and of the API) is removed, so pasting `app.datadoghq.eu` works.
//!
//! A **URL** overrides the site entirely (a proxy, a test server): `http` or `https`, a host
//! (a name of letters, digits, `-` and `_`, an IPv4 address or a bracketed IPv6 address), an
//! optional port (1 to 65535) and an optional path prefix; no credentials, query or fragment.
//! A trailing `/` is ignored. Request paths (`/api/v2/series`, ...) are appended to it. URLs
//! are read by the HTTP stack's one parser, as a Sentry DSN is.

use std::fmt;

use crate::sink::http::url::{self, parse_port, UrlError};

/// The default site (US1).
pub(crate) const DEFAULT_SITE: &str = "datadoghq.com";

/// Why a site or a URL cannot be used.
///
/// Messages name the malformed part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// The site is empty (or only whitespace).
    EmptySite,
    /// The site is not of the form described in the module docs; carries the site.
    InvalidSite(String),
    /// The URL is empty (or only whitespace).
    EmptyUrl,
    /// The URL has no `scheme://`.
    MissingScheme,
    /// The scheme is not `http` or `https`; carries the scheme.
    UnsupportedScheme(String),
    /// The URL carries credentials (`user@host`); the API key goes in its own setting.
    Credentials,
    /// The URL has no host.
    MissingHost,
    /// The host is malformed; carries the host.
    InvalidHost(String),
    /// The port is not a number in `1..=65535`; carries the port as written.
    InvalidPort(String),
    /// The path has a query, a fragment, whitespace or control characters; carries the path.
    InvalidPath(String),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::EmptySite => f.write_str("invalid Datadog site: the site is empty"),
            EndpointError::InvalidSite(site) => write!(
                f,
                "invalid Datadog site `{site}`: expected a domain such as `datadoghq.com`, `datadoghq.eu` or `us5.datadoghq.com` (use a URL setting for a full URL)"
            ),
            EndpointError::EmptyUrl => f.write_str("invalid Datadog URL: the URL is empty"),
            EndpointError::MissingScheme => {
                f.write_str("invalid Datadog URL: missing scheme (expected `https://` or `http://`)")
            }
            EndpointError::UnsupportedScheme(scheme) => write!(
                f,
                "invalid Datadog URL: unsupported scheme `{scheme}` (expected `https` or `http`)"
            ),
            EndpointError::Credentials => f.write_str(
                "invalid Datadog URL: credentials in the URL are not supported (the API key is a setting of its own)",
            ),
            EndpointError::MissingHost => f.write_str("invalid Datadog URL: missing host"),
            EndpointError::InvalidHost(host) => {
                write!(f, "invalid Datadog URL: invalid host `{host}`")
            }
            EndpointError::InvalidPort(port) => {
                write!(f, "invalid Datadog URL: invalid port `{port}` (expected 1 to 65535)")
            }
            EndpointError::InvalidPath(path) => write!(
                f,
                "invalid Datadog URL: invalid path `{path}` (no query, fragment, whitespace or control characters allowed)"
            ),
        }
    }
}

impl std::error::Error for EndpointError {}

/// The API base URL of a site (`https://api.<site>`).
pub(crate) fn site_url(site: &str) -> Result<String, EndpointError> {
    let site = site.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    if site.is_empty() {
        return Err(EndpointError::EmptySite);
    }
    let invalid = || EndpointError::InvalidSite(site.clone());
    let (domain, port) = match site.rsplit_once(':') {
        Some((domain, port)) => (domain, Some(port)),
        None => (site.as_str(), None),
    };
    if port.is_some_and(|port| parse_port(port).is_none()) {
        return Err(invalid());
    }
    let domain = ["app.", "api."]
        .iter()
        .find_map(|prefix| domain.strip_prefix(prefix))
        .filter(|rest| rest.contains('.'))
        .unwrap_or(domain);
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|label| is_label(label)) {
        return Err(invalid());
    }
    Ok(match port {
        Some(port) => format!("https://api.{domain}:{port}"),
        None => format!("https://api.{domain}"),
    })
}

/// The base URL from a full URL override, normalised (lower-case scheme and host, no trailing
/// `/`). The URL is taken apart by the shared parser ([`crate::sink::http::url`]); credentials
/// are refused before the host or port is read, so that no error echoes them.
pub(crate) fn base_url(url: &str) -> Result<String, EndpointError> {
    let split = url::split(url).map_err(endpoint_error)?;
    if split.userinfo.is_some() {
        return Err(EndpointError::Credentials);
    }
    let url = split.parse_host().map_err(endpoint_error)?;
    let path = url.path;
    if path.chars().any(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control()) {
        return Err(EndpointError::InvalidPath(path.to_owned()));
    }
    let path = path.trim_end_matches('/');
    let (scheme, host) = (url.scheme.as_str(), url.host);
    Ok(match url.port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

/// The Datadog wording of a URL the shared parser could not take apart.
fn endpoint_error(error: UrlError) -> EndpointError {
    match error {
        UrlError::Empty => EndpointError::EmptyUrl,
        UrlError::MissingScheme => EndpointError::MissingScheme,
        UrlError::UnsupportedScheme(scheme) => EndpointError::UnsupportedScheme(scheme),
        UrlError::MissingHost => EndpointError::MissingHost,
        UrlError::InvalidHost(host) => EndpointError::InvalidHost(host),
        UrlError::InvalidPort(port) => EndpointError::InvalidPort(port),
    }
}

/// A DNS label: 1 to 63 letters, digits or `-`, not starting or ending with `-` (a site names
/// a Datadog region, so it is held to DNS rules, stricter than the hosts URLs may name).
fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_sites_map_to_api_hosts() {
        for (site, url) in [
            ("datadoghq.com", "https://api.datadoghq.com"),
            ("us3.datadoghq.com", "https://api.us3.datadoghq.com"),
            ("us5.datadoghq.com", "https://api.us5.datadoghq.com"),
            ("datadoghq.eu", "https://api.datadoghq.eu"),
            ("ap1.datadoghq.com", "https://api.ap1.datadoghq.com"),
            ("ddog-gov.com", "https://api.ddog-gov.com"),
            // Not in the table, but well formed: new regions keep working.
            ("ap2.datadoghq.com", "https://api.ap2.datadoghq.com"),
        ] {
            assert_eq!(site_url(site).unwrap(), url, "{site}");
        }
    }

    #[test]
    fn sites_are_normalised() {
        assert_eq!(site_url("  DatadogHQ.EU \n").unwrap(), "https://api.datadoghq.eu");
        assert_eq!(site_url("app.datadoghq.com").unwrap(), "https://api.datadoghq.com");
        assert_eq!(site_url("api.us5.datadoghq.com").unwrap(), "https://api.us5.datadoghq.com");
        assert_eq!(site_url("datadoghq.com:8443").unwrap(), "https://api.datadoghq.com:8443");
        // `app.com` is a domain of its own, not a prefixed site.
        assert_eq!(site_url("app.com").unwrap(), "https://api.app.com");
    }

    #[test]
    fn malformed_sites_are_rejected() {
        assert_eq!(site_url(""), Err(EndpointError::EmptySite));
        for site in [
            "https://datadoghq.com",
            "datadoghq",
            "datadoghq..com",
            ".datadoghq.com",
            "-us5.datadoghq.com",
            "datadog hq.com",
            "datadoghq.com/",
            "datadoghq.com:0",
            "datadoghq.com:http",
            "datadoghq.com:70000",
            "dätadoghq.com",
        ] {
            assert!(matches!(site_url(site), Err(EndpointError::InvalidSite(_))), "{site}");
        }
    }

    #[test]
    fn urls_are_validated_and_normalised() {
        assert_eq!(base_url("http://127.0.0.1:8126").unwrap(), "http://127.0.0.1:8126");
        assert_eq!(
            base_url("HTTPS://Proxy.Example:443/dd/").unwrap(),
            "https://proxy.example:443/dd"
        );
        assert_eq!(base_url("http://[::1]:9000/").unwrap(), "http://[::1]:9000");
        assert_eq!(base_url("https://localhost").unwrap(), "https://localhost");
        // Names with `_` (container service names) are hosts as the shared parser reads them.
        assert_eq!(base_url("http://dd_agent:8126").unwrap(), "http://dd_agent:8126");
    }

    #[test]
    fn malformed_urls_name_the_part() {
        assert_eq!(base_url(" "), Err(EndpointError::EmptyUrl));
        assert_eq!(base_url("127.0.0.1:8126"), Err(EndpointError::MissingScheme));
        assert_eq!(base_url("ftp://host"), Err(EndpointError::UnsupportedScheme("ftp".into())));
        assert_eq!(base_url("https://user:secret@host"), Err(EndpointError::Credentials));
        assert_eq!(base_url("https://"), Err(EndpointError::MissingHost));
        assert_eq!(base_url("https://:80"), Err(EndpointError::MissingHost));
        assert_eq!(base_url("https://ho st"), Err(EndpointError::InvalidHost("ho st".into())));
        assert_eq!(base_url("https://a..b"), Err(EndpointError::InvalidHost("a..b".into())));
        assert_eq!(base_url("https://[::g]"), Err(EndpointError::InvalidHost("[::g]".into())));
        assert_eq!(base_url("https://host:0"), Err(EndpointError::InvalidPort("0".into())));
        assert_eq!(base_url("https://host:x1"), Err(EndpointError::InvalidPort("x1".into())));
        // A host never holds `:`: the rest is a malformed port (it was an invalid host `host:1`).
        assert_eq!(base_url("https://host:1:2"), Err(EndpointError::InvalidPort("1:2".into())));
        assert_eq!(base_url("https://host/a?b"), Err(EndpointError::InvalidPath("/a?b".into())));
        assert_eq!(base_url("https://host/a b"), Err(EndpointError::InvalidPath("/a b".into())));
        // Credentials are refused before the host or port is read: no error echoes them.
        for url in ["https://user:secret@host", "https://key:secret@ho st", "https://secret@:x"] {
            assert_eq!(base_url(url), Err(EndpointError::Credentials), "{url}");
            let message = base_url(url).unwrap_err().to_string();
            assert!(!message.contains("secret"), "{message}");
        }
    }
}
