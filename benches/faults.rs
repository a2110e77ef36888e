//! The hot path while a backend is down (issue 6).
//!
//! W1 (`info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64)`)
//! through tally with each network sink pointed at a backend that is healthy, that refuses
//! connections, or that accepts them and never answers, beside a sink that discards; and W3
//! (`error!` captured in a span) with the Sentry sink likewise. The flush interval is 100 ms,
//! so during the measurement the sink is constantly sending, failing, retrying or backed up.
//! Every backend is local:
//!
//! * Datadog API and Sentry: an HTTP/1.1 server on 127.0.0.1 answering every request at once
//!   (healthy); a port whose listener was closed (refused); a listener that accepts and never
//!   reads or answers (black hole).
//! * DogStatsD: a UDP socket that reads everything (healthy) or a UDP port with nobody bound
//!   (closed); a Unix datagram socket that reads everything (healthy) or a socket path with no
//!   listener (missing).
//!
//! After each case, the CPU time the pipeline's own threads used (flusher, sink and sender
//! threads, from `/proc/self/task`) and its `Stats` (drops by reason) go to stderr.
//!
//! `cargo bench --all-features --bench faults`; results are summarized in BENCHMARKS.md.
//!
//! `FAULTS_CHECK=1 cargo bench --all-features --bench faults` (what `scripts/test.sh` runs, ~15 s)
//! checks instead the promise of RELIABILITY.md that recording never waits for a lock, for I/O
//! or for the flusher, and exits non-zero when it breaks: with each backend down (and with a sink
//! stuck in its export forever), a thread records W1 in batches, which must all complete (a hot
//! path that waited for the backend would never finish: after 30 s the check fails), and the
//! median batch must cost at most 4× the median of the same batches into a discarding sink,
//! recorded in turn with them (so both see the same load of the machine).

// Benchmark set-up: a failure to set up is a failed run; the drop counts are printed.
#![allow(clippy::expect_used, clippy::print_stderr)]

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkGroup, Criterion};
use tracing::{error, info, info_span, Dispatch};
use tracing_subscriber::prelude::*;

use support::Discard;
use tracing_tally::sink::{
    datadog::DatadogOptions, sentry::SentryOptions, statsd::StatsdOptions, Batch, ExportError, Sink,
};
use tracing_tally::{Builder, FlushGuard, Tally};

const API_KEY: &str = "0123456789abcdef0123456789abcdef";

fn base() -> Builder {
    Tally::builder()
        .host(None)
        .rollup_interval(Duration::from_millis(100))
        .flush_interval(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_millis(500))
        .error_rate_limit(u32::MAX, u32::MAX)
        .error_queue(1 << 16)
}

// === backends ===

/// Reads one HTTP/1.1 request (headers, then a `Content-Length` or chunked body); `false` at
/// the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut length = 0usize;
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = vec![0u8; length];
    if !chunked {
        return reader.read_exact(&mut body).is_ok();
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16);
        let size = size.unwrap_or(0);
        let mut chunk = vec![0u8; size + 2];
        if reader.read_exact(&mut chunk).is_err() {
            return false;
        }
        if size == 0 {
            return true;
        }
    }
}

/// A healthy HTTP backend: answers every request at once with `status` and `{}`.
fn http_server(status: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut writer) = stream.try_clone() else { return };
                let mut reader = BufReader::new(stream);
                while read_request(&mut reader) {
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                    );
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A port nobody listens on: connections are refused.
fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A backend that accepts connections and never reads or answers.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A UDP socket that reads and discards everything.
fn udp_server() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        while socket.recv(&mut buffer).is_ok() {}
    });
    port
}

/// A UDP port with nobody bound.
fn closed_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

#[cfg(unix)]
fn socket_path(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("tally-faults-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A Unix datagram socket that reads and discards everything.
#[cfg(unix)]
fn uds_server() -> PathBuf {
    let path = socket_path("healthy");
    let socket = UnixDatagram::bind(&path).expect("bind");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        while socket.recv(&mut buffer).is_ok() {}
    });
    path
}

// === pipelines ===

type Make = Box<dyn Fn() -> Builder>;

fn discard() -> Builder {
    base().sink(Discard)
}

fn datadog(port: u16) -> Builder {
    let options = DatadogOptions::new(API_KEY)
        .expect("key")
        .url(&format!("http://127.0.0.1:{port}"))
        .expect("url");
    base().datadog_options(options)
}

fn sentry(port: u16) -> Builder {
    let options = SentryOptions::new(&format!("http://public@127.0.0.1:{port}/1")).expect("dsn");
    base().sentry_options(options)
}

fn dogstatsd(address: &str) -> Builder {
    base().statsd(StatsdOptions::dogstatsd_at(address).expect("address"))
}

/// The cases, each made once its backend is up.
fn cases(with_statsd: bool) -> Vec<(&'static str, Make)> {
    let mut cases: Vec<(&'static str, Make)> = vec![("discard", Box::new(discard))];
    let (ok, refused, hole) = (http_server("202 Accepted"), refused_port(), black_hole());
    cases.push(("datadog_healthy", Box::new(move || datadog(ok))));
    cases.push(("datadog_refused", Box::new(move || datadog(refused))));
    cases.push(("datadog_black_hole", Box::new(move || datadog(hole))));
    let (ok, refused, hole) = (http_server("200 OK"), refused_port(), black_hole());
    cases.push(("sentry_healthy", Box::new(move || sentry(ok))));
    cases.push(("sentry_refused", Box::new(move || sentry(refused))));
    cases.push(("sentry_black_hole", Box::new(move || sentry(hole))));
    if with_statsd {
        let (ok, closed) = (udp_server(), closed_udp_port());
        cases.push((
            "dogstatsd_udp_healthy",
            Box::new(move || dogstatsd(&format!("127.0.0.1:{ok}"))),
        ));
        cases.push((
            "dogstatsd_udp_closed",
            Box::new(move || dogstatsd(&format!("127.0.0.1:{closed}"))),
        ));
    }
    #[cfg(unix)]
    if with_statsd {
        let (ok, missing) = (uds_server(), socket_path("missing"));
        cases.push((
            "dogstatsd_uds_healthy",
            Box::new(move || dogstatsd(&format!("unixgram://{}", ok.display()))),
        ));
        cases.push((
            "dogstatsd_uds_missing",
            Box::new(move || dogstatsd(&format!("unixgram://{}", missing.display()))),
        ));
    }
    cases
}

/// CPU time, in clock ticks, of this process's threads whose name starts with `tally` (the
/// flusher, sink and sender threads), by thread name, from `/proc/self/task/*/stat`; empty
/// without procfs. Threads of earlier cases still finishing on their own are included.
fn tally_cpu_ticks() -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut by_name: Vec<(String, u64)> = Vec::new();
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // `pid (comm) state ...`: utime and stime are the 12th and 13th fields after `)`.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let Some((_, comm)) = head.split_once('(') else { continue };
        if !comm.starts_with("tally") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
        match by_name.iter_mut().find(|(name, _)| name == comm) {
            Some((_, total)) => *total += ticks,
            None => by_name.push((comm.to_owned(), ticks)),
        }
    }
    by_name.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    by_name
}

fn report(name: &str, guard: &FlushGuard, started: Instant) {
    let stats = guard.stats();
    let drops: Vec<String> = stats.drops().map(|(r, n)| format!("{r}={n}")).collect();
    // Clock ticks are 10 ms on Linux (USER_HZ 100).
    let threads = tally_cpu_ticks();
    let cpu_ms: u64 = threads.iter().map(|(_, t)| t * 10).sum();
    let by_thread: Vec<String> =
        threads.iter().filter(|(_, t)| *t > 0).map(|(n, t)| format!("{n} {} ms", t * 10)).collect();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "faults: {name}: background CPU {:.1}% of a core ({cpu_ms} ms in {elapsed:.1} s: {}), flushes {}, failed exports {}, drops [{}]",
        cpu_ms as f64 / 10.0 / elapsed,
        by_thread.join(", "),
        stats.flushes,
        stats.export_failures,
        drops.join(" ")
    );
}

fn bench(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    make: &Make,
    in_span: bool,
    f: &dyn Fn(),
) {
    let started = Instant::now();
    let (layer, guard) = make().build().expect("build");
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    // Let the sink meet its backend (and fail) before measuring: two flushes have run.
    let ready = Instant::now() + Duration::from_secs(10);
    while guard.stats().flushes < 2 && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(10));
    }
    group.bench_function(name, |b| {
        tracing::dispatcher::with_default(&dispatch, || {
            if in_span {
                let span = info_span!("request", route = "/api/users");
                let _entered = span.enter();
                b.iter(f);
            } else {
                b.iter(f);
            }
        })
    });
    report(&format!("{}/{name}", group_name(in_span)), &guard, started);
    drop(dispatch);
    drop(guard);
}

fn group_name(in_span: bool) -> &'static str {
    if in_span {
        "w3_error_captured"
    } else {
        "w1_counter_2_tags"
    }
}

fn w1_counter() {
    info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64);
}

fn bench_w1(c: &mut Criterion) {
    let mut group = c.benchmark_group(group_name(false));
    for (name, make) in cases(true) {
        bench(&mut group, name, &make, false, &w1_counter);
    }
    group.finish();
}

fn bench_w3(c: &mut Criterion) {
    let mut group = c.benchmark_group(group_name(true));
    let e = std::io::Error::other("connection reset");
    let w3 = || error!(error = %e, "failed");
    for (name, make) in
        cases(false).into_iter().filter(|(n, _)| *n == "discard" || n.starts_with("sentry"))
    {
        bench(&mut group, name, &make, true, &w3);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(4));
    targets = bench_w1, bench_w3
}

fn main() {
    if std::env::var_os("FAULTS_CHECK").is_some() {
        std::process::exit(check());
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

// === the check (`FAULTS_CHECK=1`) ===

/// A sink whose export never returns.
struct Stuck;

impl Sink for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        loop {
            std::thread::park();
        }
    }
}

const CHECK_BATCHES: usize = 400;
const CHECK_BATCH_EVENTS: usize = 2_000;
/// How much slower than into a discarding sink the median batch may be.
const CHECK_FACTOR: f64 = 4.0;
/// How long the batches of one case may take in all before the hot path counts as blocked.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// A pipeline built by `make`, once its sink has met the backend (two flushes have run).
fn ready_pipeline(make: &Make) -> (Dispatch, FlushGuard) {
    let (layer, guard) = make().build().expect("build");
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, w1_counter);
    let ready = Instant::now() + Duration::from_secs(10);
    while guard.stats().flushes < 2 && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(10));
    }
    (dispatch, guard)
}

/// Records W1 in batches on a thread of its own, alternating between a discarding pipeline and
/// the one `make` builds (so that both see the same load of the machine); the median batch
/// duration of each, or `None` if the batches did not all complete within [`CHECK_TIMEOUT`].
fn median_batches(make: &Make) -> Option<(Duration, Duration)> {
    let baseline: Make = Box::new(discard);
    let (base_dispatch, base_guard) = ready_pipeline(&baseline);
    let (dispatch, guard) = ready_pipeline(make);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let batch = |dispatch: &Dispatch| {
            tracing::dispatcher::with_default(dispatch, || {
                let started = Instant::now();
                for _ in 0..CHECK_BATCH_EVENTS {
                    w1_counter();
                }
                started.elapsed()
            })
        };
        let mut base = Vec::with_capacity(CHECK_BATCHES);
        let mut case = Vec::with_capacity(CHECK_BATCHES);
        for _ in 0..CHECK_BATCHES {
            base.push(batch(&base_dispatch));
            case.push(batch(&dispatch));
        }
        let _ = sender.send((base, case));
    });
    let result = receiver.recv_timeout(CHECK_TIMEOUT).ok();
    drop(base_guard);
    // A blocked pipeline's guard is left to a thread of its own (it may never return).
    std::thread::spawn(move || drop(guard));
    let (mut base, mut case) = result?;
    base.sort_unstable();
    case.sort_unstable();
    Some((base[base.len() / 2], case[case.len() / 2]))
}

/// Runs every case beside a discarding baseline; 0 if the hot path never waited, 1 otherwise.
fn check() -> i32 {
    let mut cases = cases(true);
    cases.retain(|(name, _)| *name != "discard");
    cases.push(("stuck_sink", Box::new(|| base().sink(Stuck))));
    let mut failures = 0;
    for (name, make) in &cases {
        let verdict = match median_batches(make) {
            None => {
                failures += 1;
                format!("FAILED: the batches did not complete within {CHECK_TIMEOUT:?} (blocked)")
            }
            Some((base, median)) => {
                let ratio = median.as_secs_f64() / base.as_secs_f64().max(1e-9);
                let per_event = median.as_nanos() as f64 / CHECK_BATCH_EVENTS as f64;
                let base_event = base.as_nanos() as f64 / CHECK_BATCH_EVENTS as f64;
                let line = format!(
                    "{per_event:.0} ns per event, against {base_event:.0} ns into a discarding sink ({ratio:.2}x)"
                );
                if ratio > CHECK_FACTOR {
                    failures += 1;
                    format!("FAILED: {line}, over {CHECK_FACTOR}x")
                } else {
                    line
                }
            }
        };
        eprintln!("faults check: {name}: {verdict}");
    }
    if failures > 0 {
        eprintln!("faults check FAILED: {failures} case(s)");
        1
    } else {
        eprintln!("faults check passed: recording never waited for a backend or a sink");
        0
    }
}
