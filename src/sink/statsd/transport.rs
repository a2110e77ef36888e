//! Sending datagrams: one `tally-statsd` thread behind a bounded queue, non-blocking sockets.
//!
//! * A full queue drops the newest datagram (`packets_dropped_queue`).
//! * UDP: a connected non-blocking socket (the system's send buffer: 208 KiB by default on
//!   Linux, above the 32 KiB the official clients ask for); a full buffer drops the datagram and
//!   keeps the socket. A host name is resolved again every `resolve_every`, so a restarted Agent with a
//!   new address is found.
//! * Unix datagram: non-blocking; a full buffer (`EAGAIN`, `ENOBUFS`) drops and keeps the
//!   socket; a missing or refusing socket is reconnected with a backoff from 25 ms to 1 s.
//!   `unix://` falls back to a stream socket when the path is one.
//! * Unix stream: each payload prefixed by its length (4 bytes, little-endian), written with a
//!   100 ms timeout; a write that fails part-way resets the connection (the framing would be
//!   lost otherwise).
//!
//! Nothing here blocks an application thread: `send` is a `try_send`, and flush and shutdown
//! wait at most until their deadline.

use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::stats::Carried;

use super::address::Address;
use super::packet::Datagram;

/// Write timeout of a Unix stream socket.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_millis(100);
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

/// What the transport counted, read by the sink for telemetry and drop accounting.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) packets_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) packets_dropped_queue: AtomicU64,
    pub(crate) bytes_dropped_queue: AtomicU64,
    pub(crate) packets_dropped_writer: AtomicU64,
    pub(crate) bytes_dropped_writer: AtomicU64,
    /// Messages in the datagrams the queue dropped.
    pub(crate) messages_dropped_queue: AtomicU64,
    /// Messages in the datagrams the socket dropped.
    pub(crate) messages_dropped_writer: AtomicU64,
}

enum Task {
    Send(Datagram),
    Flush(Sender<()>),
    Shutdown(Sender<()>),
}

/// Books the records of datagrams given up (the pipeline's per-metric ledger).
pub(crate) type Book = Arc<dyn Fn(&[Carried]) + Send + Sync>;

/// The sender thread's handle.
pub(crate) struct Transport {
    queue: Sender<Task>,
    thread: Option<JoinHandle<()>>,
    pub(crate) counts: Arc<Counts>,
    book: Book,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("queued", &self.queue.len()).finish_non_exhaustive()
    }
}

impl Transport {
    /// Starts the sender thread. The first connection is made there, not here: an Agent that is
    /// not up yet does not fail the build.
    pub(crate) fn start(
        address: Address,
        queue: usize,
        resolve_every: Duration,
        debug: bool,
        book: Book,
    ) -> io::Result<Transport> {
        let (sender, inbox) = crossbeam_channel::bounded(queue.max(1));
        let counts = Arc::new(Counts::default());
        let mut worker = Worker {
            address,
            resolve_every,
            socket: None,
            resolved_at: None,
            retry_at: None,
            backoff: RECONNECT_MIN,
            counts: counts.clone(),
            book: book.clone(),
            debug,
            logged: false,
        };
        let thread = std::thread::Builder::new().name("tally-statsd".into()).spawn(move || {
            crate::reentry::suppress_this_thread();
            worker.run(&inbox);
        })?;
        Ok(Transport { queue: sender, thread: Some(thread), counts, book })
    }

    /// Queues a datagram; a full queue drops it (counted).
    pub(crate) fn send(&self, datagram: Datagram) {
        match self.queue.try_send(Task::Send(datagram)) {
            Ok(()) => {}
            Err(TrySendError::Full(Task::Send(d)) | TrySendError::Disconnected(Task::Send(d))) => {
                self.counts.packets_dropped_queue.fetch_add(1, Ordering::Relaxed);
                self.counts.bytes_dropped_queue.fetch_add(d.bytes.len() as u64, Ordering::Relaxed);
                self.counts
                    .messages_dropped_queue
                    .fetch_add(u64::from(d.messages), Ordering::Relaxed);
                (self.book)(&d.carried);
            }
            Err(_) => {}
        }
    }

    fn barrier(&self, deadline: Instant, shutdown: bool) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        let task = if shutdown { Task::Shutdown(done) } else { Task::Flush(done) };
        let timeout = deadline.saturating_duration_since(Instant::now());
        if self.queue.send_timeout(task, timeout).is_err() {
            return false;
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }

    /// Waits until every datagram queued so far was written (or dropped).
    pub(crate) fn flush(&self, deadline: Instant) -> bool {
        self.barrier(deadline, false)
    }

    /// Flushes and stops the thread; joins it only if it finished in time.
    pub(crate) fn shutdown(&mut self, deadline: Instant) -> bool {
        let done = self.barrier(deadline, true);
        if done {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        done
    }
}

enum Socket {
    Udp(UdpSocket),
    #[cfg(unix)]
    Datagram(UnixDatagram),
    #[cfg(unix)]
    Stream(UnixStream),
}

/// Why a write failed, and what to do about the socket.
enum WriteError {
    /// The datagram is lost; the socket stays (a full buffer).
    Dropped,
    /// The datagram is lost and the socket must be connected again.
    Reconnect(io::Error),
}

struct Worker {
    address: Address,
    resolve_every: Duration,
    socket: Option<Socket>,
    resolved_at: Option<Instant>,
    /// No connection attempt before this instant (backoff).
    retry_at: Option<Instant>,
    backoff: Duration,
    counts: Arc<Counts>,
    book: Book,
    debug: bool,
    /// Whether a connection failure was logged since the last success.
    logged: bool,
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Task>) {
        while let Ok(task) = inbox.recv() {
            match task {
                Task::Send(datagram) => self.deliver(&datagram),
                Task::Flush(done) => {
                    let _ = done.send(());
                }
                Task::Shutdown(done) => {
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    fn deliver(&mut self, datagram: &Datagram) {
        let result = match self.connected() {
            Some(socket) => write(socket, &datagram.bytes),
            None => Err(WriteError::Dropped),
        };
        match result {
            Ok(()) => {
                self.counts.packets_sent.fetch_add(1, Ordering::Relaxed);
                self.counts.bytes_sent.fetch_add(datagram.bytes.len() as u64, Ordering::Relaxed);
                self.backoff = RECONNECT_MIN;
                self.logged = false;
            }
            Err(error) => {
                self.counts.packets_dropped_writer.fetch_add(1, Ordering::Relaxed);
                self.counts
                    .bytes_dropped_writer
                    .fetch_add(datagram.bytes.len() as u64, Ordering::Relaxed);
                self.counts
                    .messages_dropped_writer
                    .fetch_add(u64::from(datagram.messages), Ordering::Relaxed);
                (self.book)(&datagram.carried);
                if let WriteError::Reconnect(error) = error {
                    let address = self.address.to_string();
                    self.log(format_args!("write to {address} failed: {error}"));
                    self.disconnect();
                }
            }
        }
    }

    fn log(&mut self, message: std::fmt::Arguments<'_>) {
        if self.debug && !self.logged {
            self.logged = true;
            crate::debug::log(format_args!("statsd: {message}"));
        }
    }

    fn disconnect(&mut self) {
        self.socket = None;
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
    }

    /// The socket, connecting (or resolving a UDP host again) when due.
    fn connected(&mut self) -> Option<&Socket> {
        let now = Instant::now();
        let stale = matches!(self.address, Address::Udp { .. })
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
                    let address = self.address.to_string();
                    self.log(format_args!("cannot connect to {address}: {error}"));
                    // A failed re-resolution keeps the socket it had.
                    if self.socket.is_none() {
                        self.disconnect();
                    } else {
                        self.resolved_at = Some(now);
                    }
                }
            }
        }
        self.socket.as_ref()
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
    Ok(Socket::Stream(stream))
}

fn write(socket: &Socket, bytes: &[u8]) -> Result<(), WriteError> {
    let classify = |error: io::Error| match error.kind() {
        io::ErrorKind::WouldBlock => WriteError::Dropped,
        // ENOBUFS: the kernel's buffer is full; keep the socket.
        _ if error.raw_os_error() == Some(ENOBUFS) => WriteError::Dropped,
        _ => WriteError::Reconnect(error),
    };
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
        Socket::Stream(stream) => {
            let length = u32::try_from(bytes.len()).map_err(|_| WriteError::Dropped)?;
            let mut framed = Vec::with_capacity(bytes.len() + 4);
            framed.extend_from_slice(&length.to_le_bytes());
            framed.extend_from_slice(bytes);
            // Any failure, even a timeout part-way, leaves the stream's framing unknown.
            (&*stream).write_all(&framed).map_err(WriteError::Reconnect)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(text: &str) -> Datagram {
        Datagram { bytes: text.as_bytes().to_vec(), messages: 1, carried: Vec::new() }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn udp_datagrams_arrive_whole_and_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = server.local_addr().unwrap().port();
        let address = Address::Udp { host: "localhost".into(), port };
        let mut transport =
            Transport::start(address, 16, Duration::from_secs(30), false, Arc::new(|_| {}))
                .unwrap();
        for text in ["a:1|c", "b:2|c\nc:3|c"] {
            transport.send(datagram(text));
        }
        assert!(transport.flush(soon()));
        let mut buffer = [0u8; 2048];
        for expected in ["a:1|c", "b:2|c\nc:3|c"] {
            let n = server.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..n], expected.as_bytes());
        }
        assert_eq!(transport.counts.packets_sent.load(Ordering::Relaxed), 2);
        assert!(transport.shutdown(soon()));
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_unix_socket_drops_and_recovers_when_it_appears() {
        let dir = std::env::temp_dir().join(format!("tally-uds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsd.sock");
        let _ = std::fs::remove_file(&path);
        let address = Address::UnixDatagram { path: path.clone(), stream_fallback: false };
        let mut transport =
            Transport::start(address, 16, Duration::from_secs(30), false, Arc::new(|_| {}))
                .unwrap();
        transport.send(datagram("lost:1|c"));
        assert!(transport.flush(soon()));
        assert_eq!(transport.counts.packets_dropped_writer.load(Ordering::Relaxed), 1);
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::thread::sleep(RECONNECT_MIN * 2);
        transport.send(datagram("found:1|c"));
        assert!(transport.flush(soon()));
        let mut buffer = [0u8; 64];
        let n = server.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"found:1|c");
        assert!(transport.shutdown(soon()));
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
        let mut transport =
            Transport::start(address, 16, Duration::from_secs(30), false, Arc::new(|_| {}))
                .unwrap();
        transport.send(datagram("s:1|c"));
        let (mut stream, _) = listener.accept().unwrap();
        assert!(transport.flush(soon()));
        let mut framed = [0u8; 9];
        stream.read_exact(&mut framed).unwrap();
        assert_eq!(&framed[..4], &5u32.to_le_bytes());
        assert_eq!(&framed[4..], b"s:1|c");
        assert!(transport.shutdown(soon()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_the_newest_and_counts_it() {
        // A sender thread busy on an unroutable host would also do; a queue of one is enough
        // to see the count, whatever the thread has taken already.
        let address = Address::Udp { host: "127.0.0.1".into(), port: 9 };
        let transport =
            Transport::start(address, 1, Duration::from_secs(30), false, Arc::new(|_| {})).unwrap();
        for _ in 0..1000 {
            transport.send(datagram("x:1|c"));
        }
        let dropped = transport.counts.packets_dropped_queue.load(Ordering::Relaxed);
        assert!(dropped > 0);
        assert!(transport.counts.messages_dropped_queue.load(Ordering::Relaxed) >= dropped);
    }
}
