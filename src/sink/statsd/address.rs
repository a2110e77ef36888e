//! Where datagrams go: a UDP host and port, or a Unix socket (datagram or stream), parsed from
//! the forms the official DogStatsD clients accept, and resolved from the environment in their
//! order of precedence.

use std::fmt;
use std::path::{Path, PathBuf};

/// The StatsD port when none is given.
pub const DEFAULT_PORT: u16 = 8125;
/// The Agent's conventional Unix socket, used when it exists and nothing else is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/datadog/dsd.socket";
/// The longest Unix socket path the kernel accepts (`sun_path`, less the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A StatsD server address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// UDP to a host name or IP address (names are re-resolved periodically).
    Udp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix datagram socket (`unixgram://`, and `unix://`, which falls back to a stream).
    UnixDatagram {
        /// The socket's path.
        path: PathBuf,
        /// Whether a stream connection is tried when the socket is not a datagram socket.
        stream_fallback: bool,
    },
    /// A Unix stream socket (`unixstream://`): each payload prefixed by its length (4 bytes,
    /// little-endian).
    UnixStream {
        /// The socket's path.
        path: PathBuf,
    },
}

/// A StatsD address that cannot be used, naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    input: String,
    reason: String,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid StatsD address {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for AddressError {}

impl AddressError {
    /// The same error, saying which environment variable held the address.
    pub(crate) fn in_variable(self, variable: &str) -> Self {
        AddressError { input: self.input, reason: format!("{} (from {variable})", self.reason) }
    }
}

impl Address {
    /// The transport's name in client telemetry (`client_transport`).
    pub(crate) fn transport(&self) -> &'static str {
        match self {
            Address::Udp { .. } => "udp",
            Address::UnixDatagram { .. } => "uds",
            Address::UnixStream { .. } => "uds-stream",
        }
    }

    /// Whether datagrams go over a Unix socket (which allows larger packets).
    pub(crate) fn is_unix(&self) -> bool {
        !matches!(self, Address::Udp { .. })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Udp { host, port } if host.contains(':') => write!(f, "udp://[{host}]:{port}"),
            Address::Udp { host, port } => write!(f, "udp://{host}:{port}"),
            Address::UnixDatagram { path, stream_fallback: true } => {
                write!(f, "unix://{}", path.display())
            }
            Address::UnixDatagram { path, .. } => write!(f, "unixgram://{}", path.display()),
            Address::UnixStream { path } => write!(f, "unixstream://{}", path.display()),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;

    /// `udp://host[:port]`, `host[:port]`, `[v6]:port`, `unix:///path`, `unixgram:///path`,
    /// `unixstream:///path`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error =
            |reason: &str| AddressError { input: input.to_owned(), reason: reason.to_owned() };
        let text = input.trim();
        if text.is_empty() {
            return Err(error("it is empty"));
        }
        let unix = |rest: &str| -> Result<PathBuf, AddressError> {
            if rest.is_empty() {
                return Err(error("no socket path after the scheme"));
            }
            if !rest.starts_with('/') {
                return Err(error("the socket path must be absolute (unix:///path/to/socket)"));
            }
            if rest.len() > MAX_SOCKET_PATH {
                return Err(error("the socket path is longer than 107 bytes"));
            }
            Ok(PathBuf::from(rest))
        };
        if let Some(rest) = text.strip_prefix("unixgram://") {
            return Ok(Address::UnixDatagram { path: unix(rest)?, stream_fallback: false });
        }
        if let Some(rest) = text.strip_prefix("unixstream://") {
            return Ok(Address::UnixStream { path: unix(rest)? });
        }
        if let Some(rest) = text.strip_prefix("unix://") {
            return Ok(Address::UnixDatagram { path: unix(rest)?, stream_fallback: true });
        }
        let rest = match text.split_once("://") {
            Some(("udp", rest)) => rest,
            Some((scheme, _)) => {
                return Err(error(&format!(
                    "unknown scheme {scheme:?} (expected udp, unix, unixgram or unixstream)"
                )))
            }
            None => text,
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = split_host_port(rest).map_err(&error)?;
        if host.is_empty() {
            return Err(error("no host"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')) {
            return Err(error("the host has characters a host name cannot have"));
        }
        Ok(Address::Udp { host: host.to_owned(), port })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address.
fn split_host_port(text: &str) -> Result<(&str, u16), &'static str> {
    let parse_port = |p: &str| -> Result<u16, &'static str> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err("the port is not a number from 1 to 65535"),
            Ok(port) => Ok(port),
        }
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address misses its ']'")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, DEFAULT_PORT)),
            None => Err("unexpected text after the IPv6 address"),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, DEFAULT_PORT)),
        1 => {
            let (host, port) = text.split_once(':').ok_or("no port")?;
            Ok((host, parse_port(port)?))
        }
        // A bare IPv6 address.
        _ => Ok((text, DEFAULT_PORT)),
    }
}

/// The DogStatsD address from the environment, as the official clients resolve it:
/// `DD_DOGSTATSD_URL`, else `DD_AGENT_HOST` with `DD_DOGSTATSD_PORT` (default 8125), else the
/// Agent's socket at [`DEFAULT_SOCKET`] when it exists, else `127.0.0.1:8125`.
pub(crate) fn from_environment(
    get: impl Fn(&str) -> Option<String>,
    socket_exists: impl Fn(&Path) -> bool,
) -> Result<Address, (&'static str, AddressError)> {
    let set = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(url) = set("DD_DOGSTATSD_URL") {
        return url.parse().map_err(|e| ("DD_DOGSTATSD_URL", e));
    }
    if let Some(host) = set("DD_AGENT_HOST") {
        let port = match set("DD_DOGSTATSD_PORT") {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    let reason = "not a port number from 1 to 65535".to_owned();
                    return Err(("DD_DOGSTATSD_PORT", AddressError { input: port, reason }));
                }
            },
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let address: Address =
            format!("udp://[{host}]:{port}").parse().map_err(|e| ("DD_AGENT_HOST", e))?;
        return Ok(address);
    }
    if socket_exists(Path::new(DEFAULT_SOCKET)) {
        return Ok(Address::UnixDatagram {
            path: PathBuf::from(DEFAULT_SOCKET),
            stream_fallback: true,
        });
    }
    Ok(Address::Udp { host: "127.0.0.1".to_owned(), port: DEFAULT_PORT })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(host: &str, port: u16) -> Address {
        Address::Udp { host: host.to_owned(), port }
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            ("udp://agent:9125", udp("agent", 9125)),
            ("udp://agent", udp("agent", 8125)),
            ("agent:9125", udp("agent", 9125)),
            ("127.0.0.1", udp("127.0.0.1", 8125)),
            ("[::1]:9000", udp("::1", 9000)),
            ("udp://[fe80::1]", udp("fe80::1", 8125)),
            ("::1", udp("::1", 8125)),
            (
                "unix:///var/run/datadog/dsd.socket",
                Address::UnixDatagram { path: DEFAULT_SOCKET.into(), stream_fallback: true },
            ),
            (
                "unixgram:///tmp/d.sock",
                Address::UnixDatagram { path: "/tmp/d.sock".into(), stream_fallback: false },
            ),
            ("unixstream:///tmp/d.sock", Address::UnixStream { path: "/tmp/d.sock".into() }),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Address>(), Ok(expected.clone()), "{text}");
            // Display round-trips.
            assert_eq!(expected.to_string().parse::<Address>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("tcp://host:1", "scheme"),
            ("udp://:8125", "no host"),
            ("host:0", "port"),
            ("host:99999", "port"),
            ("host:abc", "port"),
            ("[::1", "]"),
            ("unix://", "path"),
            ("unix://relative/path", "absolute"),
            ("bad host!:1", "characters"),
        ];
        for (text, part) in cases {
            let error = text.parse::<Address>().unwrap_err().to_string();
            assert!(error.contains(part), "{text:?}: {error}");
        }
        let long = format!("unix:///{}", "x".repeat(120));
        assert!(long.parse::<Address>().unwrap_err().to_string().contains("107"));
    }

    #[test]
    fn the_environment_is_read_in_the_clients_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let none = |_: &Path| false;
        let url = env(&[("DD_DOGSTATSD_URL", "unix:///tmp/a.sock"), ("DD_AGENT_HOST", "agent")]);
        assert!(matches!(from_environment(url, none), Ok(Address::UnixDatagram { .. })));
        let host = env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "9000")]);
        assert_eq!(from_environment(host, none), Ok(udp("agent", 9000)));
        let v6 = env(&[("DD_AGENT_HOST", "fe80::2")]);
        assert_eq!(from_environment(v6, none), Ok(udp("fe80::2", 8125)));
        let socket = |p: &Path| p == Path::new(DEFAULT_SOCKET);
        assert!(matches!(from_environment(env(&[]), socket), Ok(Address::UnixDatagram { .. })));
        assert_eq!(from_environment(env(&[]), none), Ok(udp("127.0.0.1", 8125)));
        let bad = env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "eighty")]);
        assert_eq!(from_environment(bad, none).unwrap_err().0, "DD_DOGSTATSD_PORT");
    }
}
