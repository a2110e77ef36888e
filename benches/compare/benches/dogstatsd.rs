//! The DogStatsD sink beside cadence and metrics-exporter-dogstatsd, in the same run.
//!
//! Not a criterion benchmark: background threads do part of the work, so besides the caller's
//! time this measures the whole process's CPU time (from `/proc/self/stat`, every thread) per
//! event, over runs of a few seconds.
//!
//! 1. **End to end**: one thread emits W1 (`requests`, tags `route` and `status`) for
//!    `SECONDS`; each client sends to a closed UDP port on 127.0.0.1 (the datagrams are built
//!    and sent, then discarded by the kernel); the run ends with a flush (tally) or one more
//!    flush interval (the others).
//! 2. **Per flush**: the time tally's flush takes to drain, encode and hand to the socket
//!    `SERIES` series of one kind (counters, gauges, distributions of 100 values), per series.
//!
//! `cargo bench --manifest-path benches/compare/Cargo.toml --bench dogstatsd [-- SECONDS]`;
//! results in BENCHMARKS.md.

// A benchmark program: it prints its table, and a failed set-up is a failed run.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

#[path = "../../support/mod.rs"]
mod support;

use cadence::prelude::*;
use support::Discard;
use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::statsd::StatsdOptions;
use tracing_tally::Tally;

/// Distinct series in the per-flush measurement.
const SERIES: u64 = 3_000;

/// CPU time of the whole process so far (user + system, every thread).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name and state.
    let total = ticks(11) + ticks(12);
    // Linux reports them in clock ticks of 1/100 s.
    Duration::from_millis(total * 10)
}

/// A UDP port nobody listens on.
fn closed_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

struct Measured {
    events: u64,
    caller: Duration,
    cpu: Duration,
}

fn report(name: &str, m: &Measured) {
    let per = |d: Duration| d.as_nanos() as f64 / m.events as f64;
    println!("{name:<36} {:>12} {:>14.1} {:>16.1}", m.events, per(m.caller), per(m.cpu));
}

/// Runs `emit` as fast as possible for `seconds`, then `settle`; measures both.
fn measure(seconds: f64, mut emit: impl FnMut(), settle: impl FnOnce()) -> Measured {
    let cpu = process_cpu();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let mut events = 0u64;
    while Instant::now() < until {
        for _ in 0..1000 {
            emit();
        }
        events += 1000;
    }
    let caller = start.elapsed();
    settle();
    Measured { events, caller, cpu: process_cpu().saturating_sub(cpu) }
}

fn tally_end_to_end(seconds: f64, port: u16) -> Measured {
    let options =
        StatsdOptions::dogstatsd_at(&format!("127.0.0.1:{port}")).unwrap().origin_detection(false);
    let (layer, guard) = Tally::builder()
        .host(None)
        .rollup_interval(Duration::from_secs(1))
        .flush_interval(Duration::from_secs(1))
        .statsd(options)
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        measure(
            seconds,
            || info!(monotonic_counter.requests = 1u64, route = "/api/users", status = 200u64),
            || {
                guard.flush(Duration::from_secs(5));
            },
        )
    })
}

fn cadence_end_to_end(seconds: f64, port: u16, queued: bool) -> Measured {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = ("127.0.0.1", port);
    let client = if queued {
        let sink = cadence::BufferedUdpMetricSink::from(address, socket).unwrap();
        cadence::StatsdClient::builder("", cadence::QueuingMetricSink::from(sink)).build()
    } else {
        socket.set_nonblocking(true).unwrap();
        cadence::StatsdClient::builder("", cadence::UdpMetricSink::from(address, socket).unwrap())
            .build()
    };
    measure(
        seconds,
        || {
            let _ = black_box(
                client
                    .incr_with_tags("requests")
                    .with_tag("route", "/api/users")
                    .with_tag("status", "200")
                    .try_send(),
            );
        },
        || {
            client.flush().ok();
            std::thread::sleep(Duration::from_millis(200));
        },
    )
}

fn metrics_exporter_end_to_end(seconds: f64, port: u16) -> Measured {
    metrics_exporter_dogstatsd::DogStatsDBuilder::default()
        .with_remote_address(format!("127.0.0.1:{port}"))
        .unwrap()
        .with_flush_interval(Duration::from_secs(1))
        .install()
        .unwrap();
    measure(
        seconds,
        || metrics::counter!("requests", "route" => "/api/users", "status" => "200").increment(1),
        // One more flush interval: the exporter's thread sends what is left.
        || std::thread::sleep(Duration::from_millis(1_100)),
    )
}

/// What one series of the per-flush measurement records.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    /// A distribution of 100 distinct values.
    Distribution,
}

/// Median time of tally's flush for `SERIES` series of one kind, over `runs`, to the DogStatsD
/// sink or (`None`) to a sink that discards the batch: the difference is the sink's share.
fn tally_per_flush(port: Option<u16>, kind: Kind, runs: usize) -> Duration {
    let builder = Tally::builder()
        .manual()
        .host(None)
        .max_series_per_metric(100_000)
        .max_series(100_000)
        .self_metrics(false);
    let builder = match port {
        Some(port) => builder.statsd(
            StatsdOptions::dogstatsd_at(&format!("127.0.0.1:{port}"))
                .unwrap()
                .origin_detection(false),
        ),
        None => builder.sink(Discard),
    };
    let (layer, guard) = builder.build().expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut times = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..runs {
            for i in 0..SERIES {
                match kind {
                    Kind::Counter => {
                        info!(monotonic_counter.requests = 1u64, route = "/api/users", shard = i)
                    }
                    Kind::Gauge => info!(gauge.depth = i, route = "/api/users", shard = i),
                    Kind::Distribution => {
                        for v in 0..100 {
                            info!(histogram.latency = f64::from(v) * 0.37 + 1.0, shard = i);
                        }
                    }
                }
            }
            let start = Instant::now();
            guard.flush(Duration::from_secs(10));
            times.push(start.elapsed());
        }
    });
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the seconds per end-to-end run.
    let seconds: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3.0);
    let port = closed_port();
    println!("end to end, W1 for {seconds} s to a closed UDP port; ns per event");
    println!("{:<36} {:>12} {:>14} {:>16}", "client", "events", "caller ns", "process CPU ns");
    report("tally (aggregated, DogStatsD sink)", &tally_end_to_end(seconds, port));
    report("cadence UdpMetricSink", &cadence_end_to_end(seconds, port, false));
    report("cadence Queuing(BufferedUdp)", &cadence_end_to_end(seconds, port, true));
    report("metrics-exporter-dogstatsd", &metrics_exporter_end_to_end(seconds, port));
    println!();
    println!("per flush: tally's flush of {SERIES} series of one kind (drain, encode, hand to the socket)");
    for (name, kind) in [
        ("counters, 2 tags", Kind::Counter),
        ("gauges, 2 tags", Kind::Gauge),
        ("distributions of 100 values, 1 tag", Kind::Distribution),
    ] {
        let total = tally_per_flush(Some(port), kind, 9);
        let core = tally_per_flush(None, kind, 9);
        let per = |d: Duration| d.as_nanos() as f64 / SERIES as f64;
        println!(
            "{name:<36} {:>8.2} ms {:>8.0} ns per series, of which the sink {:>6.0} ns",
            total.as_secs_f64() * 1e3,
            per(total),
            per(total.saturating_sub(core))
        );
    }
}
