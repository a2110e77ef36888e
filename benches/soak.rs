//! Soak: load and cardinality through the real layer (issue 6).
//!
//! Several threads emit a counter event and a distribution event, each tagged with one of
//! 1,000,000 user ids, through tally installed as the global default, under the configured
//! series budgets and a short flush interval, into a sink that counts what it receives. Each
//! budget profile runs in a process of its own (so that its peak RSS is its own) and reports:
//!
//! * RSS over time and the peak (`VmHWM`), against the process before the pipeline existed;
//! * live series, and `Stats`' overflowed, evicted and dropped counts;
//! * the time between the batches the sink received, against the flush interval, and the
//!   longest flush (`tally.flush.duration`);
//! * an exact count: counter increments and distribution values emitted, against those
//!   delivered to the sink plus those counted as dropped.
//!
//! ```sh
//! cargo bench --bench soak                           # both profiles, ~20 s each
//! SOAK_SECS=300 SOAK_PROFILES=default cargo bench --bench soak
//! SOAK_CHECK=1 SOAK_SECS=8 cargo bench --bench soak  # the check scripts/test.sh runs
//! ```
//!
//! With `SOAK_CHECK=1` the run is a check of two promises of RELIABILITY.md, and exits non-zero
//! when one breaks: the count is exact (per metric, emitted == delivered + reported lost, no
//! value dropped), and the peak RSS growth stays within what the series limits allow (the
//! per-series costs of BENCHMARKS.md, "What the budget implies": a counter series ~200 bytes
//! plus ~100 per writing thread, a distribution series ~4.5 KiB per writing thread; 25% and
//! 8 MiB of headroom for the allocator and the threads).
//!
//! Knobs (environment): `SOAK_SECS` (20), `SOAK_THREADS` (8), `SOAK_IDS` (1,000,000),
//! `SOAK_FLUSH_MS` (1000; also the roll-up interval), `SOAK_PROFILES` (`default,tight`; also
//! `full`, the default 50,000-series budget filled by two metrics, and `wide`, which admits
//! every id). No timing is asserted: the figures are printed (`SOAK_CHECK` asserts the count and
//! the memory bound, not speed).

// A benchmark binary: it prints its results, and a failed set-up is a failed run.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::info;
use tracing_subscriber::prelude::*;

use tracing_tally::sink::ExportError;
use tracing_tally::sink::{Batch, MetricValue, Sink};
use tracing_tally::{DropReason, Stats, Tally};

/// Memory one series may cost, by BENCHMARKS.md ("What the budget implies").
const COUNTER_ENTRY_BYTES: u64 = 200;
const COUNTER_CELL_BYTES: u64 = 100;
const DISTRIBUTION_CELL_BYTES: u64 = 4608;

/// What the series limits allow this workload (one counter, one distribution) to hold, in KiB.
fn allowed_kib(profile: Profile, threads: u64) -> u64 {
    // Each metric gets its per-metric limit, within the total; plus its overflow series.
    let per_metric = profile.max_series_per_metric.min(profile.max_series / 2) as u64 + 1;
    let counter = per_metric * (COUNTER_ENTRY_BYTES + COUNTER_CELL_BYTES * threads);
    let distribution = per_metric * DISTRIBUTION_CELL_BYTES * threads;
    (counter + distribution) / 1024
}

/// The bound `SOAK_CHECK` holds the peak RSS growth to, in KiB.
fn rss_bound_kib(allowed_kib: u64) -> u64 {
    allowed_kib + allowed_kib / 4 + 8 * 1024
}

/// The series budget of one run.
#[derive(Debug, Clone, Copy)]
struct Profile {
    name: &'static str,
    max_series: usize,
    max_series_per_metric: usize,
    idle_intervals: u32,
    sink_queue: usize,
}

const PROFILES: &[Profile] = &[
    // The builder's defaults.
    Profile {
        name: "default",
        max_series: tracing_tally::defaults::MAX_SERIES,
        max_series_per_metric: tracing_tally::defaults::MAX_SERIES_PER_METRIC,
        idle_intervals: tracing_tally::defaults::IDLE_INTERVALS,
        sink_queue: tracing_tally::defaults::SINK_QUEUE,
    },
    // A tight budget: few series, quick eviction, a short sink queue.
    Profile {
        name: "tight",
        max_series: 1_000,
        max_series_per_metric: 500,
        idle_intervals: 1,
        sink_queue: 2,
    },
    // The default total budget filled: 25,000 series of each metric.
    Profile {
        name: "full",
        max_series: tracing_tally::defaults::MAX_SERIES,
        max_series_per_metric: tracing_tally::defaults::MAX_SERIES / 2,
        idle_intervals: tracing_tally::defaults::IDLE_INTERVALS,
        sink_queue: tracing_tally::defaults::SINK_QUEUE,
    },
    // Every id admitted: what the budget saves.
    Profile {
        name: "wide",
        max_series: 2_000_000,
        max_series_per_metric: 1_000_000,
        idle_intervals: 6,
        sink_queue: 64,
    },
];

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A field of `/proc/self/status`, in KiB (0 where there is no procfs).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// === the counting sink ===

#[derive(Debug, Default)]
struct Counts {
    /// Sum of the `requests` counter over every record (overflow series included).
    increments: i128,
    /// Values of the `latency` distribution over every record.
    values: u64,
    records: u64,
    overflow_records: u64,
    /// When each batch arrived.
    arrivals: Vec<Instant>,
    largest_batch: usize,
    /// The longest flush the pipeline reported (`tally.flush.duration`), in ms.
    longest_flush_ms: f64,
    not_exact: u64,
}

struct Counting(Arc<Mutex<Counts>>);

impl Sink for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let mut counts = self.0.lock().unwrap();
        counts.arrivals.push(Instant::now());
        counts.largest_batch = counts.largest_batch.max(batch.metrics().len());
        for record in batch.metrics() {
            match (record.name(), record.value()) {
                ("requests", MetricValue::Counter(c)) => {
                    match c.exact_integer() {
                        Some(n) => counts.increments += n,
                        None => counts.not_exact += 1,
                    }
                    counts.records += 1;
                    counts.overflow_records += u64::from(record.is_overflow());
                }
                ("latency", MetricValue::Distribution(d)) => {
                    counts.values += d.count;
                    counts.records += 1;
                    counts.overflow_records += u64::from(record.is_overflow());
                }
                ("tally.flush.duration", MetricValue::Distribution(d)) => {
                    counts.longest_flush_ms = counts.longest_flush_ms.max(d.max);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

// === one run (a child process) ===

/// Per-value drop reasons: a value dropped for one of these never reached a cell.
const VALUE_DROPS: &[DropReason] = &[
    DropReason::NonFinite,
    DropReason::NegativeMonotonic,
    DropReason::InvalidType,
    DropReason::Reentrant,
    DropReason::Closed,
];
/// Per-record drop reasons: whole batches a sink did not get.
const RECORD_DROPS: &[DropReason] =
    &[DropReason::SinkQueueFull, DropReason::SinkError, DropReason::SinkPanic];

struct Sample {
    at: Duration,
    rss_kib: u64,
    live: usize,
    overflowed: u64,
    evicted: u64,
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn run(profile: Profile) {
    let secs = knob("SOAK_SECS", 20);
    let threads = knob("SOAK_THREADS", 8).max(1);
    let ids = knob("SOAK_IDS", 1_000_000).max(1);
    let flush = Duration::from_millis(knob("SOAK_FLUSH_MS", 1000).max(10));

    let before_kib = status_kib("VmRSS");
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (layer, guard) = Tally::builder()
        .host(None)
        .sink(Counting(counts.clone()))
        .rollup_interval(flush)
        .flush_interval(flush)
        .shutdown_timeout(Duration::from_secs(60))
        .max_series(profile.max_series)
        .max_series_per_metric(profile.max_series_per_metric)
        .idle_intervals(profile.idle_intervals)
        .sink_queue(profile.sink_queue)
        .build()
        .expect("build");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("global default");

    let stop = AtomicBool::new(false);
    let emitted = AtomicU64::new(0);
    let started = Instant::now();
    let mut samples = Vec::new();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (stop, emitted) = (&stop, &emitted);
            scope.spawn(move || {
                let mut rng =
                    0x9E37_79B9_7F4A_7C15u64 ^ (t + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    for _ in 0..256 {
                        let r = xorshift(&mut rng);
                        let id = r % ids;
                        // 1 to ~100 ms: seven powers of two, as request latencies spread.
                        let latency = 1.0 + ((r >> 32) % 1000) as f64 / 10.0;
                        info!(counter.requests = 1u64, user = id);
                        info!(histogram.latency = latency, user = id);
                    }
                    n += 256;
                }
                emitted.fetch_add(n, Relaxed);
            });
        }
        let deadline = started + Duration::from_secs(secs);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500).min(deadline - Instant::now()));
            let stats = guard.stats();
            samples.push(Sample {
                at: started.elapsed(),
                rss_kib: status_kib("VmRSS"),
                live: stats.live_series,
                overflowed: stats.overflowed,
                evicted: stats.evicted,
            });
        }
        stop.store(true, Relaxed);
    });
    let load_ended = Instant::now();
    let elapsed = started.elapsed();
    let flushed = guard.flush(Duration::from_secs(60));
    let stats: Stats = guard.stats();
    let shut = guard.shutdown(Duration::from_secs(60));
    let peak_kib = status_kib("VmHWM");
    let emitted = emitted.load(Relaxed);

    let counts = counts.lock().unwrap();
    let value_drops: u64 = VALUE_DROPS.iter().map(|&r| stats.dropped(r)).sum();
    let record_drops: u64 = RECORD_DROPS.iter().map(|&r| stats.dropped(r)).sum();
    // Gaps between the scheduled batches (the explicit flush after the load is left out).
    let scheduled: Vec<Instant> =
        counts.arrivals.iter().copied().filter(|&a| a <= load_ended).collect();
    let gaps: Vec<Duration> = scheduled.windows(2).map(|w| w[1] - w[0]).collect();
    let max_gap = gaps.iter().max().copied().unwrap_or_default();
    let mean_gap = if gaps.is_empty() {
        Duration::ZERO
    } else {
        gaps.iter().sum::<Duration>() / gaps.len() as u32
    };
    let delivered = (counts.increments, counts.values);
    // What the pipeline reported lost on the way to the sink (whole batches it did not get),
    // per metric, from the loss ledger.
    let lost = |metric: &str| -> f64 {
        stats
            .metric_losses()
            .iter()
            .filter(|l| l.sink == "counting" && l.metric == metric)
            .map(|l| l.values)
            .sum()
    };
    let (lost_increments, lost_values) = (lost("requests"), lost("latency"));
    // Per metric, every value emitted was delivered or reported lost; none was dropped before
    // reaching a cell (this workload has no invalid value).
    let exact = counts.not_exact == 0
        && value_drops == 0
        && emitted as f64 == delivered.0 as f64 + lost_increments
        && emitted as f64 == delivered.1 as f64 + lost_values;
    let allowed = allowed_kib(profile, threads);

    println!(
        "\n#### profile `{}`: max_series {}, max_series_per_metric {}, idle_intervals {}, sink_queue {}",
        profile.name,
        profile.max_series,
        profile.max_series_per_metric,
        profile.idle_intervals,
        profile.sink_queue
    );
    println!(
        "\n{threads} threads, {ids} ids, flush and roll-up every {flush:?}, {:.1} s of load\n",
        elapsed.as_secs_f64()
    );
    println!("| t (s) | VmRSS MiB | live series | overflowed | evicted |");
    println!("|---|---|---|---|---|");
    let step = (samples.len() / 12).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step == 0 || i + 1 == samples.len() {
            println!(
                "| {:.1} | {:.1} | {} | {} | {} |",
                s.at.as_secs_f64(),
                mib(s.rss_kib),
                s.live,
                s.overflowed,
                s.evicted
            );
        }
    }
    let drops: Vec<String> = stats.drops().map(|(r, n)| format!("{r}: {n}")).collect();
    let result = serde_json::json!({
        "profile": profile.name,
        "max_series": profile.max_series,
        "per_metric": profile.max_series_per_metric,
        "idle": profile.idle_intervals,
        "sink_queue": profile.sink_queue,
        "before_mib": mib(before_kib),
        "peak_mib": mib(peak_kib),
        "growth_mib": mib(peak_kib.saturating_sub(before_kib)),
        "last_rss_mib": mib(samples.last().map_or(0, |s| s.rss_kib)),
        "events_per_s": (emitted * 2) as f64 / elapsed.as_secs_f64(),
        "live": stats.live_series,
        "overflowed": stats.overflowed,
        "evicted": stats.evicted,
        "drops": if drops.is_empty() { "none".to_owned() } else { drops.join(", ") },
        "flushes": stats.flushes,
        "batches": scheduled.len(),
        "mean_gap_ms": mean_gap.as_secs_f64() * 1e3,
        "max_gap_ms": max_gap.as_secs_f64() * 1e3,
        "interval_ms": flush.as_secs_f64() * 1e3,
        "longest_flush_ms": counts.longest_flush_ms,
        "largest_batch": counts.largest_batch,
        "emitted": emitted,
        "increments": delivered.0.to_string(),
        "values": delivered.1,
        "value_drops": value_drops,
        "record_drops": record_drops,
        "overflow_records": counts.overflow_records,
        "exact": exact,
        "lost_increments": lost_increments,
        "lost_values": lost_values,
        "allowed_mib": mib(allowed),
        "rss_bound_mib": mib(rss_bound_kib(allowed)),
        "flushed": flushed && shut,
    });
    println!("RESULT {result}");
}

// === the parent: one child per profile, then the table ===

/// One cell of the summary table, from a profile's result.
type Cell = dyn Fn(&serde_json::Value) -> String;

fn main() {
    if let Ok(name) = std::env::var("SOAK_CHILD") {
        let profile = PROFILES.iter().find(|p| p.name == name).copied().expect("profile");
        run(profile);
        return;
    }
    let wanted = std::env::var("SOAK_PROFILES").unwrap_or_else(|_| "default,tight".to_owned());
    let exe = std::env::current_exe().expect("current exe");
    let mut results = Vec::new();
    let check = std::env::var_os("SOAK_CHECK").is_some();
    for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        eprintln!("soak: profile {name} ...");
        let output = Command::new(&exe).env("SOAK_CHILD", name).output().expect("run child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        for line in stdout.lines() {
            match line.strip_prefix("RESULT ") {
                Some(json) => {
                    results.push(serde_json::from_str::<serde_json::Value>(json).expect("result"))
                }
                None => println!("{line}"),
            }
        }
        if !output.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
            eprintln!("soak: profile {name} failed: {}", output.status);
            std::process::exit(1);
        }
    }
    let rows: &[(&str, &Cell)] = &[
        ("budget (series, per metric, idle intervals, sink queue)", &|r| {
            format!(
                "{} / {} / {} / {}",
                r["max_series"], r["per_metric"], r["idle"], r["sink_queue"]
            )
        }),
        ("events/s (all threads)", &|r| {
            format!("{:.0}", r["events_per_s"].as_f64().unwrap_or(0.0))
        }),
        ("RSS before the pipeline (MiB)", &|r| {
            format!("{:.1}", r["before_mib"].as_f64().unwrap_or(0.0))
        }),
        ("peak RSS, VmHWM (MiB)", &|r| format!("**{:.1}**", r["peak_mib"].as_f64().unwrap_or(0.0))),
        ("peak growth per live series (bytes)", &|r| {
            let growth = r["growth_mib"].as_f64().unwrap_or(0.0) * 1024.0 * 1024.0;
            format!("{:.0}", growth / r["live"].as_f64().unwrap_or(1.0).max(1.0))
        }),
        ("RSS at the end of the load (MiB)", &|r| {
            format!("{:.1}", r["last_rss_mib"].as_f64().unwrap_or(0.0))
        }),
        ("live series at the end", &|r| r["live"].to_string()),
        ("values overflowed", &|r| r["overflowed"].to_string()),
        ("series evicted", &|r| r["evicted"].to_string()),
        ("drops", &|r| r["drops"].as_str().unwrap_or("").to_owned()),
        ("batches received / flushes", &|r| format!("{} / {}", r["batches"], r["flushes"])),
        ("gap between batches, mean / max (ms)", &|r| {
            format!(
                "{:.0} / **{:.0}** (interval {:.0})",
                r["mean_gap_ms"].as_f64().unwrap_or(0.0),
                r["max_gap_ms"].as_f64().unwrap_or(0.0),
                r["interval_ms"].as_f64().unwrap_or(0.0)
            )
        }),
        ("longest flush, `tally.flush.duration` (ms)", &|r| {
            format!("{:.1}", r["longest_flush_ms"].as_f64().unwrap_or(0.0))
        }),
        ("largest batch (records)", &|r| r["largest_batch"].to_string()),
        ("events emitted per metric", &|r| r["emitted"].to_string()),
        ("increments / values delivered", &|r| {
            format!("{} / {}", r["increments"].as_str().unwrap_or(""), r["values"])
        }),
        ("values / records dropped", &|r| format!("{} / {}", r["value_drops"], r["record_drops"])),
        ("memory the limits allow / the check's bound (MiB)", &|r| {
            format!(
                "{:.1} / {:.1}",
                r["allowed_mib"].as_f64().unwrap_or(0.0),
                r["rss_bound_mib"].as_f64().unwrap_or(0.0)
            )
        }),
        ("exact (emitted = delivered + dropped)", &|r| {
            if r["exact"] == true {
                "**yes**".into()
            } else {
                "**NO**".into()
            }
        }),
    ];
    print!("\n| |");
    for r in &results {
        print!(" {} |", r["profile"].as_str().unwrap_or(""));
    }
    print!("\n|---|");
    for _ in &results {
        print!("---|");
    }
    println!();
    for (label, cell) in rows {
        print!("| {label} |");
        for r in &results {
            print!(" {} |", cell(r));
        }
        println!();
    }
    if check {
        let violations: Vec<String> = results.iter().flat_map(violations).collect();
        for v in &violations {
            eprintln!("soak check FAILED: {v}");
        }
        if !violations.is_empty() || results.is_empty() {
            std::process::exit(1);
        }
        eprintln!("soak check passed: exact counts, peak RSS within the series limits");
    }
}

/// What breaks a promise in one profile's result.
fn violations(r: &serde_json::Value) -> Vec<String> {
    let name = r["profile"].as_str().unwrap_or("?");
    let mut out = Vec::new();
    if r["exact"] != true {
        out.push(format!(
            "{name}: not exact: emitted {} per metric; delivered {} increments + {} lost, {} values + {} lost; {} values dropped",
            r["emitted"], r["increments"], r["lost_increments"], r["values"], r["lost_values"], r["value_drops"]
        ));
    }
    if r["flushed"] != true {
        out.push(format!("{name}: the final flush or the shutdown did not complete"));
    }
    let growth = r["growth_mib"].as_f64().unwrap_or(f64::INFINITY);
    let bound = r["rss_bound_mib"].as_f64().unwrap_or(0.0);
    if growth > bound {
        out.push(format!(
            "{name}: peak RSS grew by {growth:.1} MiB, over the bound {bound:.1} MiB"
        ));
    }
    if r["emitted"].as_u64().unwrap_or(0) == 0 {
        out.push(format!("{name}: nothing was emitted"));
    }
    out
}
