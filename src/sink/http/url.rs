//! One parser for the URLs of every HTTP backend (a Sentry DSN, a Datadog URL override, and the
//! endpoints of the backends to come): `scheme://[userinfo@]host[:port][path]`.
//!
//! * The scheme is `http` or `https`, in any case. Text before `://` that is not a scheme at
//!   all (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`) is never echoed in errors:
//!   it may hold a key.
//! * The authority ends at the first `/`, `?` or `#` (RFC 3986 §3.2); user information is what
//!   comes before its last `@`.
//! * The host is a bracketed IPv6 address, or a name (or IPv4 address) of letters, digits,
//!   `-`, `_` and `.`, with no empty label except a trailing one (`host.`); it comes back in
//!   lower case. A host never holds `:`, so `host:1:2` is a malformed port, not a host.
//! * The port is 1 to 5 digits with a value in `1..=65535`.
//!
//! What the path may hold, and whether user information is expected, is the backend's rule.

use std::net::Ipv6Addr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain HTTP, default port 80.
    Http,
    /// HTTP over TLS, default port 443.
    Https,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port a URL of this scheme uses when it names none.
    #[cfg_attr(not(feature = "sentry"), allow(dead_code))] // Datadog keeps its URL as written
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    pub(crate) scheme: Scheme,
    /// What comes before the host's `@`, if anything does.
    pub(crate) userinfo: Option<&'a str>,
    /// Lower case; an IPv6 address keeps its brackets.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// Everything after the authority (may be empty; starts with `/`, `?` or `#` otherwise).
    pub(crate) path: &'a str,
}

/// Why a URL cannot be taken apart; each backend words it in its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Empty, or only whitespace.
    Empty,
    /// No `scheme://` at the start.
    MissingScheme,
    /// A scheme other than `http` or `https` (lower case).
    UnsupportedScheme(String),
    /// No host.
    MissingHost,
    /// A malformed host, as written.
    InvalidHost(String),
    /// A malformed port, as written.
    InvalidPort(String),
}

/// A URL split at its scheme, user information and path, its host and port not yet checked:
/// a backend can check the user information first, so that a malformed URL whose secret sits
/// where a host or port should be is reported without echoing it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split<'a> {
    pub(crate) scheme: Scheme,
    pub(crate) userinfo: Option<&'a str>,
    host_port: &'a str,
    pub(crate) path: &'a str,
}

impl<'a> Split<'a> {
    /// Checks the host and port.
    pub(crate) fn parse_host(self) -> Result<Url<'a>, UrlError> {
        let (host, port) = parse_host_port(self.host_port)?;
        Ok(Url { scheme: self.scheme, userinfo: self.userinfo, host, port, path: self.path })
    }
}

/// Splits `text` (surrounding whitespace ignored) at its scheme, user information and path.
pub(crate) fn split(text: &str) -> Result<Split<'_>, UrlError> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return Err(UrlError::Empty);
    }
    let (scheme, rest) = text.split_once("://").ok_or(UrlError::MissingScheme)?;
    let scheme = parse_scheme(scheme)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    Ok(Split { scheme, userinfo, host_port, path })
}

fn parse_scheme(scheme: &str) -> Result<Scheme, UrlError> {
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(UrlError::MissingScheme);
    }
    if scheme.eq_ignore_ascii_case("https") {
        Ok(Scheme::Https)
    } else if scheme.eq_ignore_ascii_case("http") {
        Ok(Scheme::Http)
    } else {
        Err(UrlError::UnsupportedScheme(scheme.to_ascii_lowercase()))
    }
}

/// `host[:port]` or `[ipv6][:port]`.
fn parse_host_port(host_port: &str) -> Result<(String, Option<u16>), UrlError> {
    let invalid_host = || UrlError::InvalidHost(host_port.to_owned());
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid_host)?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidHost(format!("[{address}]")));
        }
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(invalid_host)?),
        };
        (format!("[{}]", address.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        if !is_host_name(host) {
            return Err(UrlError::InvalidHost(host.to_owned()));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(text) => Some(parse_port(text).ok_or_else(|| UrlError::InvalidPort(text.to_owned()))?),
    };
    Ok((host, port))
}

/// Labels of letters, digits, `-` and `_` separated by dots; only the last may be empty.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}

/// A port: 1 to 5 ASCII digits, value in `1..=65535`.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&port| port != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_apart_with_lower_case_scheme_and_host() {
        let url =
            split(" HTTPS://Key:S@Host.Example:8443/a/b?q#f ").and_then(Split::parse_host).unwrap();
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.userinfo, Some("Key:S"));
        assert_eq!((url.host.as_str(), url.port), ("host.example", Some(8443)));
        assert_eq!(url.path, "/a/b?q#f");
        let url = split("http://[::1]:9/").and_then(Split::parse_host).unwrap();
        assert_eq!((url.host.as_str(), url.port, url.userinfo), ("[::1]", Some(9), None));
        assert_eq!(split("http://a@b@host_1.").unwrap().userinfo, Some("a@b"));
    }

    #[test]
    fn malformed_parts_are_named() {
        use UrlError::*;
        let cases: &[(&str, UrlError)] = &[
            ("", Empty),
            ("host/1", MissingScheme),
            ("k@https://host", MissingScheme),
            ("ftp://host", UnsupportedScheme("ftp".into())),
            ("http://", MissingHost),
            ("http://:80", MissingHost),
            ("http://ho st", InvalidHost("ho st".into())),
            ("http://a..b", InvalidHost("a..b".into())),
            ("http://.a", InvalidHost(".a".into())),
            ("http://[::1", InvalidHost("[::1".into())),
            ("http://[nope]", InvalidHost("[nope]".into())),
            ("http://[::1]x", InvalidHost("[::1]x".into())),
            ("http://host:", InvalidPort("".into())),
            ("http://host:0", InvalidPort("0".into())),
            ("http://host:65536", InvalidPort("65536".into())),
            ("http://host:1:2", InvalidPort("1:2".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(
                split(input).and_then(Split::parse_host).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
    }
}
