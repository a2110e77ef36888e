//! Writing datagrams: the sockets, owned by the sink and written on its lane thread. There is
//! no thread or queue of its own here: the lane is the sink's one thread and one queue.
//!
//! Nothing here waits long, so the lane is never held up:
//!
//! * UDP: a connected non-blocking socket (the system's send buffer: 208 KiB by default on
//!   Linux, above the 32 KiB the official clients ask for); a full buffer drops the datagram and
//!   keeps the socket. A host name is resolved again every `resolve_every`, so a restarted Agent
//!   with a new address is found.
//! * Unix datagram: non-blocking; a full buffer (`EAGAIN`, `ENOBUFS`) drops and keeps the
//!   socket; a missing or refusing socket is reconnected with a backoff from 25 ms to 1 s.
//!   `unix://` falls back to a stream socket when the path is one.
//! * Unix stream: each payload prefixed by its length (4 bytes, little-endian), written with a
//!   timeout of 100 ms, or of the time left before the deadline of a pending flush when that is
//!   shorter (a flush due already leaves a write no time to wait: what the socket cannot take at
//!   once is dropped). A write that fails part-way resets the connection (the framing would be
//!   lost otherwise).
//!
//! The first connection is made by the first write, not when the sink is built: an Agent that
//! is not up yet does not fail the build. Two steps of a connection can wait longer, as they
//! did on the sender thread this sink used to have: resolving a host name (the system's
//! resolver has its own timeouts; an IP address or `localhost` is not looked up on the
//! network, and the periodic re-resolution is put off while a flush is pending), and connecting
//! to a Unix stream socket whose listener's backlog is full (the standard library has no
//! connect timeout for Unix sockets; such a listener is a stuck Agent).

use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use super::address::Address;

/// Longest write to a Unix stream socket.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_millis(100);
/// Shortest write timeout a socket takes (zero means "none", that is forever): a write with no
/// time left tries once.
const NO_WAIT: Duration = Duration::from_micros(1);
/// First and longest wait before reconnecting.
const RECONNECT_MIN: Duration = Duration::from_millis(25);
const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// `EPROTOTYPE` (a datagram connect to a stream socket) and `ENOBUFS` (kernel buffer full).
#[cfg(target_os = "linux")]
const EPROTOTYPE: i32 = 91;
#[cfg(target_os = "linux")]
const ENOBUFS: i32 = 105;
#[cfg(not(target_os = "linux"))]
const EPROTOTYPE: i32 = 41;
#[cfg(not(target_os = "linux"))]
const ENOBUFS: i32 = 55;

/// What the transport wrote and dropped since it started, for the client telemetry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) packets_sent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) packets_dropped_writer: u64,
    pub(crate) bytes_dropped_writer: u64,
}

enum Socket {
    Udp(UdpSocket),
    #[cfg(unix)]
    Datagram(UnixDatagram),
    /// The stream and the write timeout it has now (set again only when it changes).
    #[cfg(unix)]
    Stream(UnixStream, Duration),
}

/// Why a write failed, and what to do about the socket.
enum WriteError {
    /// The datagram is lost; the socket stays (a full buffer).
    Dropped,
    /// The datagram is lost and the socket must be connected again.
    Reconnect(io::Error),
}

/// The connection to the StatsD server.
pub(crate) struct Transport {
    address: Address,
    resolve_every: Duration,
    socket: Option<Socket>,
    resolved_at: Option<Instant>,
    /// No connection attempt before this instant (backoff).
    retry_at: Option<Instant>,
    backoff: Duration,
    pub(crate) counts: Counts,
    /// A failure not yet taken by [`take_failure`](Self::take_failure).
    failure: Option<String>,
    /// Whether a failure was noted since the last success: a dead Agent is reported once, not
    /// once per datagram.
    failing: bool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("address", &self.address)
            .field("connected", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport to `address`, not connected yet.
    pub(crate) fn new(address: Address, resolve_every: Duration) -> Transport {
        Transport {
            address,
            resolve_every,
            socket: None,
            resolved_at: None,
            retry_at: None,
            backoff: RECONNECT_MIN,
            counts: Counts::default(),
            failure: None,
            failing: false,
        }
    }

    /// Writes one datagram, connecting first when due; never waits past `deadline` (see the
    /// module's docs). Returns whether the datagram was written; one that was not is counted in
    /// [`counts`](Self::counts) and is the caller's to book.
    pub(crate) fn send(&mut self, bytes: &[u8], deadline: Option<Instant>) -> bool {
        let result = match self.connected(deadline) {
            Some(socket) => write(socket, bytes, deadline),
            None => Err(WriteError::Dropped),
        };
        match result {
            Ok(()) => {
                self.counts.packets_sent += 1;
                self.counts.bytes_sent += bytes.len() as u64;
                self.backoff = RECONNECT_MIN;
                self.failing = false;
                true
            }
            Err(error) => {
                self.counts.packets_dropped_writer += 1;
                self.counts.bytes_dropped_writer += bytes.len() as u64;
                if let WriteError::Reconnect(error) = error {
                    self.fail(format!("write to {} failed: {error}", self.address));
                    self.disconnect();
                }
                false
            }
        }
    }

    /// The first failure since the last successful write, once, for the sink to log.
    pub(crate) fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Closes the connection; the next write connects again.
    pub(crate) fn close(&mut self) {
        self.socket = None;
    }

    fn fail(&mut self, message: String) {
        if !self.failing {
            self.failing = true;
            self.failure = Some(message);
        }
    }

    fn disconnect(&mut self) {
        self.socket = None;
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
    }

    /// The socket, connecting (or resolving a UDP host again) when due. A resolution asks the
    /// system's resolver and may wait on it: one that is only due again waits until no flush
    /// is pending.
    fn connected(&mut self, deadline: Option<Instant>) -> Option<&mut Socket> {
        let now = Instant::now();
        let stale = matches!(self.address, Address::Udp { .. })
            && deadline.is_none()
            && self.resolved_at.is_some_and(|at| now.duration_since(at) >= self.resolve_every);
        if self.socket.is_none() || stale {
            if self.socket.is_none() && self.retry_at.is_some_and(|at| now < at) {
                return None;
            }
            match connect(&self.address) {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.resolved_at = Some(now);
                    self.retry_at = None;
                }
                Err(error) => {
                    self.fail(format!("cannot connect to {}: {error}", self.address));
                    // A failed re-resolution keeps the socket it had.
                    if self.socket.is_none() {
                        self.disconnect();
                    } else {
                        self.resolved_at = Some(now);
                    }
                }
            }
        }
        self.socket.as_mut()
    }
}

fn connect(address: &Address) -> io::Result<Socket> {
    match address {
        Address::Udp { host, port } => {
            let target: SocketAddr = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
            let local: SocketAddr =
                if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let socket = UdpSocket::bind(local)?;
            socket.connect(target)?;
            socket.set_nonblocking(true)?;
            Ok(Socket::Udp(socket))
        }
        #[cfg(unix)]
        Address::UnixDatagram { path, stream_fallback } => {
            let socket = UnixDatagram::unbound()?;
            match socket.connect(path) {
                Ok(()) => {
                    socket.set_nonblocking(true)?;
                    Ok(Socket::Datagram(socket))
                }
                // EPROTOTYPE: the path is a stream socket.
                Err(error) if *stream_fallback && error.raw_os_error() == Some(EPROTOTYPE) => {
                    connect_stream(path)
                }
                Err(error) => Err(error),
            }
        }
        #[cfg(unix)]
        Address::UnixStream { path } => connect_stream(path),
        #[cfg(not(unix))]
        _ => Err(io::Error::new(io::ErrorKind::Unsupported, "Unix sockets need a Unix system")),
    }
}

#[cfg(unix)]
fn connect_stream(path: &std::path::Path) -> io::Result<Socket> {
    let stream = UnixStream::connect(path)?;
    stream.set_write_timeout(Some(STREAM_WRITE_TIMEOUT))?;
    Ok(Socket::Stream(stream, STREAM_WRITE_TIMEOUT))
}

/// How long a stream write may wait: 100 ms, less when a flush is due sooner.
fn stream_timeout(deadline: Option<Instant>, now: Instant) -> Duration {
    match deadline {
        Some(deadline) => {
            deadline.saturating_duration_since(now).clamp(NO_WAIT, STREAM_WRITE_TIMEOUT)
        }
        None => STREAM_WRITE_TIMEOUT,
    }
}

fn write(socket: &mut Socket, bytes: &[u8], deadline: Option<Instant>) -> Result<(), WriteError> {
    let classify = |error: io::Error| match error.kind() {
        io::ErrorKind::WouldBlock => WriteError::Dropped,
        // ENOBUFS: the kernel's buffer is full; keep the socket.
        _ if error.raw_os_error() == Some(ENOBUFS) => WriteError::Dropped,
        _ => WriteError::Reconnect(error),
    };
    // UDP and Unix datagram sockets are non-blocking: `deadline` cannot be missed there.
    #[cfg(not(unix))]
    let _ = deadline;
    match socket {
        Socket::Udp(socket) => match socket.send(bytes) {
            Ok(_) => Ok(()),
            // A connected UDP socket reports an earlier datagram's ICMP "port unreachable" on
            // a later send: the Agent is not listening (yet). Drop, keep the socket.
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                Err(WriteError::Dropped)
            }
            Err(error) => Err(classify(error)),
        },
        #[cfg(unix)]
        Socket::Datagram(socket) => socket.send(bytes).map(|_| ()).map_err(classify),
        #[cfg(unix)]
        Socket::Stream(stream, timeout) => {
            let length = u32::try_from(bytes.len()).map_err(|_| WriteError::Dropped)?;
            let wanted = stream_timeout(deadline, Instant::now());
            if wanted != *timeout {
                stream.set_write_timeout(Some(wanted)).map_err(WriteError::Reconnect)?;
                *timeout = wanted;
            }
            let mut framed = Vec::with_capacity(bytes.len() + 4);
            framed.extend_from_slice(&length.to_le_bytes());
            framed.extend_from_slice(bytes);
            // Any failure, even a timeout part-way, leaves the stream's framing unknown.
            stream.write_all(&framed).map_err(WriteError::Reconnect)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_datagrams_arrive_whole_and_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = server.local_addr().unwrap().port();
        let address = Address::Udp { host: "localhost".into(), port };
        let mut transport = Transport::new(address, Duration::from_secs(30));
        for text in ["a:1|c", "b:2|c\nc:3|c"] {
            assert!(transport.send(text.as_bytes(), None));
        }
        let mut buffer = [0u8; 2048];
        for expected in ["a:1|c", "b:2|c\nc:3|c"] {
            let n = server.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..n], expected.as_bytes());
        }
        assert_eq!(transport.counts.packets_sent, 2);
        assert_eq!(transport.counts.bytes_sent, 16);
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_unix_socket_drops_and_recovers_when_it_appears() {
        let dir = std::env::temp_dir().join(format!("tally-uds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsd.sock");
        let _ = std::fs::remove_file(&path);
        let address = Address::UnixDatagram { path: path.clone(), stream_fallback: false };
        let mut transport = Transport::new(address, Duration::from_secs(30));
        assert!(!transport.send(b"lost:1|c", None));
        assert_eq!(transport.counts.packets_dropped_writer, 1);
        assert_eq!(transport.counts.bytes_dropped_writer, 8);
        assert!(transport.take_failure().is_some_and(|f| f.starts_with("cannot connect")));
        // Within the backoff, no new attempt and no new report.
        assert!(!transport.send(b"lost:1|c", None));
        assert_eq!(transport.take_failure(), None);
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::thread::sleep(RECONNECT_MIN * 2);
        assert!(transport.send(b"found:1|c", None));
        let mut buffer = [0u8; 64];
        let n = server.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"found:1|c");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn unix_stream_payloads_are_length_prefixed() {
        use std::io::Read as _;
        let dir = std::env::temp_dir().join(format!("tally-uss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsd.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // `unix://` tries a datagram socket first, then falls back to the stream.
        let address = Address::UnixDatagram { path: path.clone(), stream_fallback: true };
        let mut transport = Transport::new(address, Duration::from_secs(30));
        assert!(transport.send(b"s:1|c", None));
        let (mut stream, _) = listener.accept().unwrap();
        let mut framed = [0u8; 9];
        stream.read_exact(&mut framed).unwrap();
        assert_eq!(&framed[..4], &5u32.to_le_bytes());
        assert_eq!(&framed[4..], b"s:1|c");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_stream_nobody_reads_never_holds_a_write_past_the_deadline() {
        let dir = std::env::temp_dir().join(format!("tally-usd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsd.sock");
        let _ = std::fs::remove_file(&path);
        // Accepted (in the backlog) and never read: the socket's buffer fills, then writes wait.
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let address = Address::UnixStream { path: path.clone() };
        let mut transport = Transport::new(address, Duration::from_secs(30));
        let payload = vec![b'x'; 8192];
        // A flush due already: writes the socket can take go through, the first it cannot
        // take is dropped at once instead of waiting out the stream's 100 ms.
        let due = Some(Instant::now());
        let mut dropped = 0;
        let mut slowest = Duration::ZERO;
        for _ in 0..10_000 {
            let started = Instant::now();
            let sent = transport.send(&payload, due);
            slowest = slowest.max(started.elapsed());
            if !sent {
                dropped += 1;
                break;
            }
        }
        assert_eq!(dropped, 1, "the buffer never filled");
        assert!(slowest < Duration::from_millis(60), "a write took {slowest:?}");
        assert_eq!(transport.counts.packets_dropped_writer, dropped);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_host_due_for_resolution_is_resolved_again_only_when_no_flush_is_pending() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let address = Address::Udp { host: "localhost".into(), port };
        // Due again at every write.
        let mut transport = Transport::new(address, Duration::ZERO);
        assert!(transport.send(b"a:1|c", None));
        let first = transport.resolved_at;
        assert!(transport.send(b"a:1|c", Some(Instant::now() + Duration::from_secs(1))));
        assert_eq!(transport.resolved_at, first, "put off while a flush waits");
        assert!(transport.send(b"a:1|c", None));
        assert!(transport.resolved_at > first);
    }

    #[test]
    fn stream_writes_wait_less_when_a_flush_is_due_sooner() {
        let now = Instant::now();
        assert_eq!(stream_timeout(None, now), STREAM_WRITE_TIMEOUT);
        let soon = now + Duration::from_millis(40);
        assert_eq!(stream_timeout(Some(soon), now), Duration::from_millis(40));
        let late = now + Duration::from_secs(5);
        assert_eq!(stream_timeout(Some(late), now), STREAM_WRITE_TIMEOUT);
        assert_eq!(stream_timeout(Some(now), now + Duration::from_millis(1)), NO_WAIT);
    }
}
