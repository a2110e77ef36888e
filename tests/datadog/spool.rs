//! The durable spool: what the intake could not take waits on disk, and arrives once, after
//! the intake is back or in the next process.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use tracing::info;
use tracing_tally::sink::{datadog::DatadogOptions, SpoolOptions};
use tracing_tally::DropReason;

use crate::shared::{scratch, spool_files, Received, Receiver};
use crate::{options, pipeline, series, KEY, WAIT};

fn hits(round: u64, n: u64) {
    for shard in 0..n {
        info!(monotonic_counter.spooled.hits = 1, shard, round);
    }
}

/// Spool files of the Datadog sink under `dir`.
fn spooled(dir: &Path) -> usize {
    spool_files(dir, "datadog")
}

/// Every accepted series point as `name tags timestamp`; panics on a point delivered twice.
fn delivered_once(received: &[Received]) -> HashSet<String> {
    let mut seen = HashSet::new();
    for series in series(received) {
        let mut tags: Vec<String> =
            series["tags"].as_array().unwrap().iter().map(|t| t.to_string()).collect();
        tags.sort();
        for point in series["points"].as_array().unwrap() {
            let key = format!("{} {tags:?} {}", series["metric"], point["timestamp"]);
            assert!(seen.insert(key.clone()), "delivered twice: {key}");
        }
    }
    seen
}

/// Options for the receiver on `port` (up or not), spooling to `dir`, giving up at once.
fn spool_options(port: u16, dir: &Path) -> DatadogOptions {
    DatadogOptions::new(KEY)
        .unwrap()
        .url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(0)
        .send_errors(false)
        .spool(SpoolOptions::new(dir))
}

#[test]
fn an_outage_is_spooled_and_delivered_once_after_recovery() {
    let dir = scratch("dd-spool-outage");
    let mut receiver = Receiver::start();
    // No retry buffer to speak of: every payload that cannot go is evicted to the spool.
    let options = options(&receiver)
        .max_retries(0)
        .retry_buffer_bytes(1)
        .send_errors(false)
        .spool(SpoolOptions::new(&dir));
    let (dispatch, guard) = pipeline(options);
    receiver.down();

    for round in 0..3 {
        tracing::dispatcher::with_default(&dispatch, || hits(round, 4));
        assert!(!guard.flush(Duration::from_secs(2)), "the intake is down");
    }
    assert!(spooled(&dir) >= 3, "{} files", spooled(&dir));
    let stats = guard.stats();
    assert_eq!(stats.total_dropped(), 0, "spooled, not dropped: {stats:?}");

    receiver.up();
    tracing::dispatcher::with_default(&dispatch, || hits(3, 4));
    assert!(guard.flush(WAIT), "everything delivered");
    let points = delivered_once(&receiver.received());
    assert_eq!(points.len(), 16, "4 rounds of 4 series: {points:?}");
    assert_eq!(spooled(&dir), 0, "delivered files are deleted");
    assert_eq!(guard.stats().total_dropped(), 0);
}

#[test]
fn what_is_spooled_at_shutdown_is_sent_by_the_next_process() {
    let dir = scratch("dd-spool-restart");
    let mut receiver = Receiver::start_down();
    let port = receiver.port;
    let options = || spool_options(port, &dir);

    // The first process: the intake is down until it exits.
    let (dispatch, guard) = pipeline(options());
    tracing::dispatcher::with_default(&dispatch, || hits(0, 5));
    assert!(!guard.flush(Duration::from_secs(2)));
    let stats = guard.stats();
    drop(guard);
    assert_eq!(stats.total_dropped(), 0, "{stats:?}");
    assert!(spooled(&dir) > 0, "kept on disk at shutdown");

    // The next one, with the intake back.
    receiver.up();
    let (_dispatch, guard) = pipeline(options());
    assert!(guard.flush(WAIT));
    let points = delivered_once(&receiver.received());
    assert_eq!(points.len(), 5, "{points:?}");
    assert_eq!(spooled(&dir), 0);
    assert_eq!(guard.stats().dropped(DropReason::SpoolCorrupt), 0);
}

#[test]
fn a_corrupt_spool_file_is_skipped_and_counted_and_the_rest_delivered() {
    let dir = scratch("dd-spool-corrupt");
    let mut receiver = Receiver::start_down();
    let port = receiver.port;
    let options = || spool_options(port, &dir);
    let (dispatch, guard) = pipeline(options());
    tracing::dispatcher::with_default(&dispatch, || hits(0, 3));
    let _ = guard.flush(Duration::from_secs(2));
    drop(guard);
    assert_eq!(spooled(&dir), 1);
    // A file that is not what its name says, older than the real one, and a torn write.
    let sub = dir.join("datadog");
    std::fs::write(sub.join("00000000000000000001-00000001.spool"), b"garbage").unwrap();
    std::fs::write(sub.join(".00000000000000000002-00000002.spool.tmp"), b"TALLYSPL").unwrap();

    receiver.up();
    let (_dispatch, guard) = pipeline(options());
    assert!(guard.flush(WAIT));
    assert_eq!(delivered_once(&receiver.received()).len(), 3);
    assert_eq!(guard.stats().dropped(DropReason::SpoolCorrupt), 1);
    assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0, "all cleaned up");
}
