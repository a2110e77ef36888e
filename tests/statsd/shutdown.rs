//! Shutdown with a stuck Agent: a Unix stream socket whose reader accepted the connection and
//! never reads fills up and would block a writer; dropping the guard still returns by the
//! shutdown deadline, and the application never waits.

use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

use tracing::info;
use tracing_tally::sink::statsd::StatsdOptions;
use tracing_tally::Tally;

use crate::deadline::flush_and_drop_return_by_the_deadline;
use crate::peers::scratch;

#[test]
fn guard_drop_returns_by_its_deadline_when_the_agent_never_reads() {
    let path = scratch("shutdown-stuck").join("dsd.socket");
    let listener = UnixListener::bind(&path).unwrap();
    let options = StatsdOptions::dogstatsd_at(&format!("unixstream://{}", path.display()))
        .unwrap()
        .origin_detection(false);
    // The connection is accepted (and kept) once the sink connects; nothing reads from it.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let keep = accepted.clone();
    std::thread::spawn(move || {
        if let Ok((connection, _)) = listener.accept() {
            keep.lock().unwrap().push(connection);
        }
    });
    // Enough distinct series to fill the socket's buffer many times over.
    let tag = "x".repeat(100);
    let _ = flush_and_drop_return_by_the_deadline(Tally::builder().statsd(options), || {
        for round in 0..20 {
            for i in 0..2_000 {
                info!(monotonic_counter.requests = 1, shard = i, round, tag = tag.as_str());
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    });
    drop(accepted);
}
