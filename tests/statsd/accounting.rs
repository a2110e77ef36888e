//! The books balance under faults: for every metric, what the pipeline produced equals what the
//! DogStatsD receiver read plus what the pipeline reported lost, exactly, over a Unix datagram
//! socket (whose receive queue, 10 datagrams by default on Linux, overflows now and then) and a
//! Unix stream socket, whose receiver goes away and comes back. Distributions whose values
//! repeat are sent with `|@1/n` and split over datagrams: what each datagram carried is booked.

use std::io::Read;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::prelude::*;
use tracing_tally::sink::statsd::StatsdOptions;
use tracing_tally::{DropReason, Tally};

use crate::books::{
    assert_produced_as_emitted, balance, workload, Books, Compare, Ledger, EVENTS_PER_ROUND,
};
use crate::peers::scratch;

const ROUNDS: u64 = 8;

/// A receiver reading messages into `lines` until stopped.
struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Reads datagrams, except while `paused`: the socket's receive queue (10 datagrams by
    /// default on Linux) then fills and the rest of a flush's datagrams are refused.
    fn datagrams(path: &Path, lines: Arc<Mutex<Vec<String>>>, paused: Arc<AtomicBool>) -> Receiver {
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            loop {
                if paused.load(Ordering::Relaxed) && !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                match socket.recv(&mut buffer) {
                    Ok(n) => {
                        let text = String::from_utf8(buffer[..n].to_vec()).unwrap();
                        lines.lock().unwrap().extend(text.lines().map(str::to_owned));
                    }
                    // Stopped: what was sent before is read first.
                    Err(_) if stopping.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
        });
        Receiver { stop, thread: Some(thread) }
    }

    /// Reads length-prefixed frames from one connection at a time. (A receiver that closed a
    /// connection with frames unread would lose them without the sender being told, as over
    /// TCP: no client can count that.)
    fn stream(path: &Path, lines: Arc<Mutex<Vec<String>>>) -> Receiver {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            loop {
                // Stopped: connections already made are read first.
                let Ok((mut stream, _)) = listener.accept() else {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                loop {
                    let mut length = [0u8; 4];
                    match stream.read_exact(&mut length) {
                        Ok(()) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            // Stopped: what was sent before is read first.
                            if stopping.load(Ordering::Relaxed) {
                                break;
                            }
                            continue;
                        }
                        Err(_) => break,
                    }
                    let mut frame = vec![0u8; u32::from_le_bytes(length) as usize];
                    stream.set_read_timeout(None).unwrap();
                    stream.read_exact(&mut frame).unwrap();
                    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    let text = String::from_utf8(frame).unwrap();
                    lines.lock().unwrap().extend(text.lines().map(str::to_owned));
                }
            }
        });
        Receiver { stop, thread: Some(thread) }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// The messages read, booked by metric: a counter's value, a distribution's values, a gauge's
/// point. A sample rate weighs what a line carries, as the Agent reads it: a value sent with
/// `|@0.5` stands for two.
fn delivered(lines: &[String]) -> Books {
    let mut books = Books::default();
    for line in lines {
        let mut parts = line.split('|');
        let (name, values) = parts.next().unwrap().split_once(':').unwrap();
        let kind = parts.next().unwrap();
        let rate: f64 = parts.find_map(|field| field.strip_prefix('@')).map_or(1.0, |rate| {
            let rate: f64 = rate.parse().unwrap();
            assert!(rate > 0.0 && rate <= 1.0, "sample rate {rate} in {line}");
            rate
        });
        let values: Vec<f64> = values.split(':').map(|v| v.parse().unwrap()).collect();
        match kind {
            "c" => books.add(name, 1, values.iter().sum::<f64>() / rate),
            // `|@1/n`: each value stands for n.
            "d" | "h" => books.add(name, 0, values.len() as f64 * (1.0 / rate).round()),
            "g" => books.add(name, 1, values.len() as f64),
            other => panic!("unexpected type {other} in {line}"),
        }
    }
    books
}

/// A distribution of a few values seen many times each: its lines carry `|@1/n`.
fn repeated_values(round: u64) {
    for i in 0..EVENTS_PER_ROUND {
        tracing::info!(distribution.acct.retries = ((i % 4) + 1) as f64 * 10.0, round);
    }
}

/// Runs the rounds; what the pipeline produced and what it reported lost.
///
/// In round 6 the receiver is `paused` while the pipeline flushes (a datagram receiver then
/// takes the first datagrams and refuses the rest: records split over datagrams arrive in part).
fn run(
    address: &str,
    start: &dyn Fn() -> Receiver,
    path: &Path,
    paused: &AtomicBool,
) -> (Books, Books) {
    let ledger = Ledger::default();
    let options = StatsdOptions::dogstatsd_at(address)
        .unwrap()
        .origin_detection(false)
        .telemetry(false)
        .max_packet_size(64);
    let (layer, guard) = Tally::builder()
        .manual()
        .host(None)
        .self_metrics(false)
        .sessions(false)
        .sink(ledger.clone())
        .statsd(options)
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut receiver = Some(start());
    for round in 0..ROUNDS {
        // Rounds 3 and 4: the receiver is gone (its socket file too).
        if round == 3 {
            receiver = None;
            let _ = std::fs::remove_file(path);
        }
        if round == 5 {
            receiver = Some(start());
        }
        tracing::dispatcher::with_default(&dispatch, || {
            repeated_values(round);
            workload(round);
        });
        paused.store(round == 6, Ordering::Relaxed);
        let _ = guard.flush(Duration::from_secs(2));
        paused.store(false, Ordering::Relaxed);
    }
    assert!(guard.flush(Duration::from_secs(5)));
    // Sent means in the socket: the receiver reads all of it before it stops.
    drop(receiver);
    let stats = guard.stats();
    assert_eq!(stats.dropped(DropReason::SinkPanic), 0);
    let lost = Books::lost(stats.metric_losses(), "dogstatsd");
    (ledger.books(), lost)
}

fn check(produced: &Books, lines: &[String], lost: &Books) {
    let all = Compare { points: true, values: true };
    let table = balance(
        produced,
        &delivered(lines),
        lost,
        &[
            ("acct.requests", all),
            ("acct.inflight", all),
            ("acct.latency", Compare { points: false, values: true }),
            ("acct.retries", Compare { points: false, values: true }),
            ("acct.depth", Compare { points: true, values: false }),
        ],
    );
    assert_produced_as_emitted(produced, ROUNDS);
    assert!(lost.get("acct.requests").points > 0, "the faults cost something: {table}");
    let events = (EVENTS_PER_ROUND * ROUNDS) as f64;
    assert_eq!(produced.get("acct.retries").values, events, "{table}");
}

fn socket(name: &str) -> PathBuf {
    scratch(name).join("dsd.socket")
}

#[test]
fn unixgram_every_message_is_read_or_counted_lost() {
    let path = socket("accounting-unixgram");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let paused = Arc::new(AtomicBool::new(false));
    let start = || Receiver::datagrams(&path, lines.clone(), paused.clone());
    let (produced, lost) = run(&format!("unixgram://{}", path.display()), &start, &path, &paused);
    check(&produced, &lines.lock().unwrap(), &lost);
}

#[test]
fn unixstream_every_message_is_read_or_counted_lost() {
    let path = socket("accounting-unixstream");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let start = || Receiver::stream(&path, lines.clone());
    // A stream's buffer holds a round many times over: pausing its reader loses nothing.
    let paused = AtomicBool::new(false);
    let (produced, lost) = run(&format!("unixstream://{}", path.display()), &start, &path, &paused);
    let lines = lines.lock().unwrap();
    check(&produced, &lines, &lost);
    // Values sent with `|@1/n` were read and weighed (over the datagram socket, a round's last
    // datagrams, these among them, are the likeliest to be refused).
    assert!(lines.iter().any(|l| l.starts_with("acct.retries:") && l.contains("|@")));
}
