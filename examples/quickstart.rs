//! A simulated service: worker threads handle requests for a few seconds while tracing-tally
//! turns their spans and events into metrics and captured errors, then prints the summary.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```
//!
//! Records go to `target/quickstart.jsonl` as JSON lines (set `TALLY_JSONL` to change that,
//! `-` for standard output). `QUICKSTART_SECONDS` sets how long the simulation runs (default 3).

#![allow(clippy::print_stdout)] // an example program prints its results

use std::error::Error;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use tracing::{error, info, info_span, instrument, warn};
use tracing_subscriber::prelude::*;

/// A database error caused by an I/O error: an error chain of two.
#[derive(Debug)]
struct QueryError {
    source: std::io::Error,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query on table `orders` failed")
    }
}

impl Error for QueryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// A tiny deterministic generator, so the example needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[instrument(skip(rng))]
fn query(table: &str, rng: &mut Rng) -> Result<usize, QueryError> {
    thread::sleep(Duration::from_micros(200 + rng.below(1500)));
    if rng.below(200) == 0 {
        let source =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        return Err(QueryError { source });
    }
    Ok(rng.below(50) as usize)
}

#[instrument(skip(rng), fields(route = route))]
fn handle(route: &'static str, user: u64, rng: &mut Rng) -> u16 {
    info!(monotonic_counter.requests = 1, route, "request received");
    let rows = match query("orders", rng) {
        Ok(rows) => rows,
        Err(err) => {
            error!(error = &err as &dyn Error, user, "request failed");
            info!(monotonic_counter.responses = 1, route, status = 500);
            return 500;
        }
    };
    let _render = info_span!("render", rows).entered();
    thread::sleep(Duration::from_micros(100 + 20 * rows as u64));
    info!("distribution.payload@byte" = 200 + 64 * rows as u64, route);
    info!(set.active_users = user, route);
    let status = if rng.below(40) == 0 { 404 } else { 200 };
    if status == 404 {
        warn!(route, user, "not found");
    }
    info!(monotonic_counter.responses = 1, route, status);
    status
}

fn worker(id: u64, until: Instant) -> u64 {
    const ROUTES: [&str; 4] = ["/users", "/orders", "/cart", "/checkout"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id + 1) * 0x1234_5678));
    let mut handled = 0;
    while Instant::now() < until {
        let route = ROUTES[rng.below(ROUTES.len() as u64) as usize];
        let queue_depth = rng.below(20);
        info!(gauge.queue_depth = queue_depth, worker = id);
        handle(route, rng.below(500), &mut rng);
        handled += 1;
    }
    handled
}

fn main() -> Result<(), Box<dyn Error>> {
    let seconds: u64 =
        std::env::var("QUICKSTART_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/quickstart.jsonl");
    let _ = std::fs::remove_file(&path);

    let (tally, guard) = tracing_tally::Tally::builder()
        .service("quickstart")
        .environment("local")
        .release("quickstart@0.1.0")
        .span_tags(["route"])
        .rollup_interval(Duration::from_secs(1))
        .flush_interval(Duration::from_secs(1))
        .jsonl_path(&path)
        .from_env() // TALLY_* variables override the settings above
        .build()?;
    tracing_subscriber::registry().with(tally).init();

    println!("simulating a service on 4 threads for {seconds} s ...");
    let until = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..4).map(|id| thread::spawn(move || worker(id, until))).collect();
    let handled: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();

    let flushed = guard.flush(Duration::from_secs(2));
    println!("handled {handled} requests; flushed: {flushed}");
    print!("{}", guard.summary());
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("\n{} JSON lines in {}; the first three:", text.lines().count(), path.display());
        for line in text.lines().take(3) {
            println!("  {line}");
        }
    }
    Ok(())
}
