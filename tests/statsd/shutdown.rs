//! Shutdown with a stuck Agent: a Unix stream socket whose reader accepted the connection and
//! never reads fills up and would block a writer; dropping the guard still returns by the
//! shutdown deadline, and the application never waits.

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use tracing::info;
use tracing_subscriber::prelude::*;
use tracing_tally::sink::StatsdOptions;
use tracing_tally::Tally;

use crate::peers::scratch;

const DEADLINE: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine; the point is "returns", not "fast".
const SLACK: Duration = Duration::from_secs(3);

#[test]
fn guard_drop_returns_by_its_deadline_when_the_agent_never_reads() {
    let path = scratch("shutdown-stuck").join("dsd.socket");
    let listener = UnixListener::bind(&path).unwrap();
    let options = StatsdOptions::dogstatsd_at(&format!("unixstream://{}", path.display()))
        .unwrap()
        .origin_detection(false);
    let (layer, guard) = Tally::builder()
        .host(None)
        .flush_interval(Duration::from_millis(20))
        .shutdown_timeout(DEADLINE)
        .statsd(options)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (_connection, _) = listener.accept().unwrap();
    // Enough distinct series to fill the socket's buffer many times over.
    let tag = "x".repeat(100);
    for round in 0..20 {
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..2_000 {
                info!(monotonic_counter.requests = 1, shard = i, round, tag = tag.as_str());
            }
        });
        std::thread::sleep(Duration::from_millis(25));
    }
    let started = Instant::now();
    let _ = guard.flush(DEADLINE);
    assert!(started.elapsed() < DEADLINE + SLACK, "flush took {:?}", started.elapsed());
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < DEADLINE + SLACK, "drop took {:?}", started.elapsed());
}
